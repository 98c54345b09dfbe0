package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"
)

// configCommand is `metastore config check FILE`: validate a serve config
// file the way serve would, and print the configuration it yields.
func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "work with serve's YAML config file (--config-file)",
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "validate a config file and print the effective configuration (every key: the file's value or the default)",
			ArgsUsage: "FILE",
			Description: "Checks what `metastore serve --config-file FILE` checks before it starts: known keys,\n" +
				"values of the right type, and the settings' consistency (URLs, --initial-cluster, ...).\n" +
				"METASTORE_* environment variables are ignored: the output is the file over the defaults.",
			Action: configCheckAction,
		}},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return fmt.Errorf("config: unknown subcommand %q (see 'metastore config --help')", c.Args().First())
			}
			return cli.ShowSubcommandHelp(c)
		},
	}
}

func configCheckAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("config check: want one argument, the config file (got %d)", c.NArg())
	}
	path := c.Args().First()
	flags := serveFileFlags()
	_, set, err := loadConfigFile(path, flags)
	if err != nil {
		return err
	}
	// The settings' consistency, with serve's own checks, on a context over
	// the scratch flag set (file values over defaults, no environment).
	sc := cli.NewContext(c.App, set, nil)
	sc.Command = &cli.Command{Name: "serve", Flags: flags}
	if _, err := logConfig(sc); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if _, _, _, err := serveConfig(sc, zap.NewNop()); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	out, err := effectiveConfig(set, flags)
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	_, err = c.App.Writer.Write(out)
	return err
}
