// Command metastore is the MetaStore server and its tools: an etcd v3
// compatible, Raft-replicated metadata store with a RocksDB or memory engine.
//
// This file only wires the CLI together. Each subcommand lives in its own
// cmd_<name>.go file as a function returning one *cli.Command, registered in
// commands below; the work itself belongs in the packages under the module
// (server/, bench/, ...), never here.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run executes the CLI and returns the process exit code. Every failure (an
// unknown flag, a bad argument, a command's error) is reported as a single
// line on stderr with exit code 1; cli never calls os.Exit itself.
func run(args []string, stdout, stderr io.Writer) int {
	if err := newApp(stdout, stderr).Run(args); err != nil {
		fmt.Fprintf(stderr, "metastore: %v\n", err)
		return 1
	}
	return 0
}

// commands lists the subcommands in the order `metastore help` shows them.
// To add one, write cmd_<name>.go with a func returning *cli.Command and add
// it here.
//
// NB: avoid cli's Required flags: a missing required flag makes cli print the
// whole help text. Check flags in the Action and return a one-line error.
func commands() []*cli.Command {
	return []*cli.Command{
		serveCommand(),
		versionCommand(),
		benchCommand(),
		configCommand(),
		completionCommand(),
		manCommand(),
		snapshotCommand(),   // cmd_snapshot.go
		migrateCommand(),    // cmd_migrate.go
		memberCommand(),     // cmd_member.go
		endpointCommand(),   // cmd_endpoint.go
		defragCommand(),     // cmd_ops.go
		alarmCommand(),      // cmd_ops.go
		moveLeaderCommand(), // cmd_ops.go
	}
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "metastore",
		Usage: "etcd v3 compatible, Raft-replicated metadata store",
		// `metastore version` is the one place the version is printed.
		HideVersion:          true,
		EnableBashCompletion: false,
		Writer:               stdout,
		ErrWriter:            stderr,
		Commands:             commands(),
		// With no subcommand, show help; with an unknown one, fail. Without
		// this Action cli treats `metastore nosuch` as a help lookup.
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return fmt.Errorf("unknown command %q (see 'metastore help')", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		OnUsageError: usageError,
		// Errors are printed once, by run; cli must not exit the process.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	for _, cmd := range app.Commands {
		setUsageError(cmd)
	}
	return app
}

// usageError turns a flag parsing failure into a one-line error instead of
// cli's default "Incorrect Usage" plus the full help text.
func usageError(c *cli.Context, err error, isSubcommand bool) error {
	if isSubcommand && c.Command != nil {
		return fmt.Errorf("%s: %w (see 'metastore %s --help')", c.Command.Name, err, c.Command.Name)
	}
	return fmt.Errorf("%w (see 'metastore --help')", err)
}

func setUsageError(cmd *cli.Command) {
	if cmd.OnUsageError == nil {
		cmd.OnUsageError = usageError
	}
	for _, sub := range cmd.Subcommands {
		setUsageError(sub)
	}
}

// noArgs is a cli.BeforeFunc for commands that take no positional arguments.
func noArgs(c *cli.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("%s: unexpected argument %q", c.Command.Name, c.Args().First())
	}
	return nil
}
