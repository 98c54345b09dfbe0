package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/migrate"
	"github.com/metastore/metastore/server"
)

// metastore migrate --from-etcd-snapshot FILE --data-dir DIR: writes a new
// member's data directory from an etcd v3 snapshot (etcdctl snapshot save,
// or a stopped member's member/snap/db) with its keys, revisions, history
// since the compaction, leases, users and roles (migrate/). `serve` on the
// directory with the same cluster flags bootstraps a new cluster holding
// the data, as after `snapshot restore`.

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "write a new member's data directory from an etcd snapshot",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "from-etcd-snapshot", Usage: "the etcd v3 snapshot file (etcdctl snapshot save, or member/snap/db of a stopped member)"},
			&cli.StringFlag{Name: "data-dir", Usage: "the data directory to create; must not exist or be empty"},
		}, newMemberFlags()...),
		Before: noArgs,
		Action: migrateAction,
	}
}

func migrateAction(c *cli.Context) error {
	path := c.String("from-etcd-snapshot")
	if path == "" {
		return fmt.Errorf("migrate: --from-etcd-snapshot is required")
	}
	dataDir := c.String("data-dir")
	if dataDir == "" {
		return fmt.Errorf("migrate: --data-dir is required")
	}
	nm, err := newMemberConfig(c, dataDir)
	if err != nil {
		return err
	}
	snap, err := migrate.OpenEtcdSnapshot(path)
	if err != nil {
		return err
	}
	defer snap.Close()
	var st migrate.Stats
	err = server.ImportDataDir(nm.cfg, func(eng engine.Engine) error {
		var err error
		st, err = snap.Import(eng)
		return err
	})
	if err != nil {
		return err
	}
	info := snap.Info()
	hash := "no SHA-256 in the file (a database file), not verified"
	if info.HashVerified {
		hash = "SHA-256 verified"
	}
	w := c.App.Writer
	fmt.Fprintf(w, "Migrated %s into %s: revision %d, compaction revision %d, %d versions (%d deletes), %d leases; %s\n",
		path, dataDir, st.Rev, st.CompactRev, st.Versions, st.Tombstones, st.Leases, hash)
	if st.AuthEnabled || st.AuthUsers > 0 || st.AuthRoles > 0 {
		fmt.Fprintf(w, "Migrated etcd auth: %d users, %d roles, auth enabled: %t (passwords unchanged)\n",
			st.AuthUsers, st.AuthRoles, st.AuthEnabled)
	}
	fmt.Fprintf(w, "Start the member with: %s\n", nm.serveCommand())
	return nil
}
