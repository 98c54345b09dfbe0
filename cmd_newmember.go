package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/metastore/metastore/server"
)

// The commands that write a new member's data directory from a file
// (`snapshot restore`, `migrate`) take the same cluster flags, as etcdutl's
// restore does, and print the same `serve` command to start the member.
// The data-dir flag stays with each command: restore has a default, migrate
// requires it.

// newMemberFlags are the cluster flags of a new member's data directory.
func newMemberFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "name", Value: "default", Usage: "the member's name"},
		&cli.StringFlag{Name: "engine", Value: server.EngineRocksDB, Usage: "storage engine: rocksdb or memory"},
		&cli.StringFlag{Name: "initial-cluster", Usage: "the new cluster, name=peerURL,... (default: <name>=<initial-advertise-peer-urls>)"},
		&cli.StringFlag{Name: "initial-cluster-token", Value: "etcd-cluster", Usage: "the new cluster's token"},
		&cli.StringFlag{Name: "initial-advertise-peer-urls", Value: "http://localhost:2380", Usage: "this member's peer URLs"},
	}
}

// newMember is a new member's configuration as the flags give it.
type newMember struct {
	cfg            server.Config
	initialCluster string // as given, or the default
	advertisePeer  string
}

// newMemberConfig reads newMemberFlags for a member whose data directory
// is dataDir ("" means the restore default, "<name>.metastore").
func newMemberConfig(c *cli.Context, dataDir string) (newMember, error) {
	name := c.String("name")
	advPeer := c.String("initial-advertise-peer-urls")
	if _, err := parseURLs("initial-advertise-peer-urls", advPeer); err != nil {
		return newMember{}, err
	}
	ic := c.String("initial-cluster")
	if ic == "" {
		ic = name + "=" + advPeer
	}
	cluster, err := parseInitialCluster(ic)
	if err != nil {
		return newMember{}, err
	}
	if _, ok := cluster[name]; !ok {
		return newMember{}, fmt.Errorf("--initial-cluster has no member named %q (--name)", name)
	}
	if dataDir == "" {
		dataDir = name + ".metastore"
	}
	cfg := server.Config{Name: name, DataDir: dataDir, Engine: c.String("engine"), InitialCluster: cluster,
		ClusterToken: c.String("initial-cluster-token"), ClusterState: "new", Logger: zap.NewNop()}
	cfg.RocksDB = defaultRocksDB()
	return newMember{cfg: cfg, initialCluster: ic, advertisePeer: advPeer}, nil
}

// serveCommand is the command that starts the member on its directory.
func (m newMember) serveCommand() string {
	return fmt.Sprintf("metastore serve --name %s --data-dir %s --engine %s --initial-cluster %s "+
		"--initial-cluster-token %s --initial-advertise-peer-urls %s --initial-cluster-state new",
		m.cfg.Name, m.cfg.DataDir, m.cfg.Engine, m.initialCluster, m.cfg.ClusterToken, m.advertisePeer)
}
