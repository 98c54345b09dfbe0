package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/metastore/metastore/server"
)

// metastore snapshot save|restore|status: backups as etcdctl/etcdutl take
// and restore them. A backup file is the member's state snapshot stream
// followed by its SHA-256 (server/restore.go); `save` works against any
// member, `restore` writes a fresh data directory from which `serve`
// bootstraps a new cluster holding the backed-up keys, revisions and leases.

func snapshotCommand() *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "save, restore and inspect backups",
		Subcommands: []*cli.Command{{
			Name: "save", Usage: "stream a member's state into FILE", ArgsUsage: "FILE",
			Flags: clientFlags(false), Action: snapshotSave,
		}, {
			Name: "restore", Usage: "write a new member's data directory from FILE", ArgsUsage: "FILE",
			Flags: append([]cli.Flag{
				&cli.StringFlag{Name: "data-dir", Usage: "the data directory to create (default \"<name>.metastore\"); must not exist or be empty"},
			}, newMemberFlags()...),
			Action: snapshotRestore,
		}, {
			Name: "status", Usage: "verify FILE and print its hash, revision, key count and size", ArgsUsage: "FILE",
			Flags:  []cli.Flag{&cli.StringFlag{Name: "write-out", Aliases: []string{"w"}, Value: "table", Usage: "table or json"}},
			Action: snapshotStatus,
		}},
	}
}

func fileArg(c *cli.Context) (string, error) {
	return oneArg(c, "the snapshot file")
}

func snapshotSave(c *cli.Context) error {
	path, err := fileArg(c)
	if err != nil {
		return err
	}
	eps := endpointsFlag(c)
	if len(eps) != 1 {
		return fmt.Errorf("snapshot save: want exactly one endpoint, got %d", len(eps))
	}
	cli, err := newOpsClient(c)
	if err != nil {
		return err
	}
	defer cli.Close()
	part := path + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(part)
	rc, err := cli.Snapshot(c.Context)
	if err != nil {
		f.Close()
		return clientErr(err)
	}
	n, err := io.Copy(f, rc)
	rc.Close()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot save: %v", clientErr(err))
	}
	if err := server.VerifySnapshotFile(part); err != nil {
		return err
	}
	if err := os.Rename(part, path); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "Snapshot saved at %s (%d bytes)\n", path, n)
	return nil
}

func snapshotRestore(c *cli.Context) error {
	path, err := fileArg(c)
	if err != nil {
		return err
	}
	nm, err := newMemberConfig(c, c.String("data-dir"))
	if err != nil {
		return err
	}
	if err := server.RestoreDataDir(nm.cfg, path); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "Restored %s into %s; start the member with: %s\n", path, nm.cfg.DataDir, nm.serveCommand())
	return nil
}

func snapshotStatus(c *cli.Context) error {
	path, err := fileArg(c)
	if err != nil {
		return err
	}
	f := c.String("write-out")
	if f != "table" && f != "json" {
		return fmt.Errorf("--write-out %q: want table or json", f)
	}
	info, err := server.ReadSnapshotInfo(path, "")
	if err != nil {
		return err
	}
	if f == "json" {
		return writeJSON(c.App.Writer, map[string]any{"hash": info.Hash, "revision": info.Revision,
			"compactRevision": info.CompactRev, "totalKey": info.TotalKeys, "totalSize": info.TotalSize})
	}
	writeTable(c.App.Writer, []string{"HASH", "REVISION", "COMPACT REVISION", "TOTAL KEYS", "TOTAL SIZE"},
		[][]string{{strconv.FormatUint(uint64(info.Hash), 16), strconv.FormatInt(info.Revision, 10),
			strconv.FormatInt(info.CompactRev, 10), strconv.FormatInt(info.TotalKeys, 10), strconv.FormatInt(info.TotalSize, 10)}})
	return nil
}
