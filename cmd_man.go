package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/urfave/cli/v2"
)

// manDescription is the DESCRIPTION of the man page: what the flag lists do
// not say.
const manDescription = `MetaStore speaks the etcd v3 API (gRPC, and etcd's JSON gateway over HTTP on the same port), so etcd clients such as clientv3 and etcdctl work unchanged. Data is replicated with Raft and kept in RocksDB (the default) or in memory.

Every flag of **metastore serve** can also be set as an environment variable named METASTORE_ and the flag name in upper case with dashes as underscores (METASTORE_DATA_DIR for --data-dir), or as a key of a YAML file given with --config-file, named as the flag (data-dir: /var/lib/metastore). A flag wins over the environment, which wins over the file. **metastore config check FILE** validates a file and prints the configuration it yields.

The packaged systemd unit runs **metastore serve --config-file /etc/metastore/metastore.yaml** as the metastore user, with its data in /var/lib/metastore.`

// manCommand is `metastore man`: the man page, generated from the CLI
// definition so it cannot drift from the flags.
func manCommand() *cli.Command {
	return &cli.Command{
		Name:   "man",
		Usage:  "print the metastore(1) man page (roff; pipe to man -l -)",
		Before: noArgs,
		Action: func(c *cli.Context) error {
			return writeMan(c.App.Writer, c.App)
		},
	}
}

func writeMan(w io.Writer, app *cli.App) error {
	doc := *app
	doc.Description = manDescription
	doc.UsageText = "metastore command [command options] [arguments...]"
	md, err := doc.ToMarkdown()
	if err != nil {
		return fmt.Errorf("man: %w", err)
	}
	page := md2man.Render([]byte("% metastore 1\n\n" + escapeAngles(md)))
	_, err = w.Write(page)
	return err
}

// escapeAngles backslash-escapes '<' outside fenced code blocks: usage texts
// such as "<name>.metastore" would otherwise be taken for HTML tags and
// vanish from the page.
func escapeAngles(md string) string {
	lines := strings.Split(md, "\n")
	fenced := false
	for i, l := range lines {
		if strings.HasPrefix(l, "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			lines[i] = strings.ReplaceAll(l, "<", `\<`)
		}
	}
	return strings.Join(lines, "\n")
}
