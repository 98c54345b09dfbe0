package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/metastore/metastore/engine/rocksdb"
	"github.com/metastore/metastore/version"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:   "version",
		Usage:  "print the version, git commit, Go and RocksDB versions and platform",
		Before: noArgs,
		Action: func(c *cli.Context) error {
			return writeVersion(c.App.Writer, versionInfo{
				Version:   version.Version,
				GitCommit: version.GitCommit,
				GoVersion: runtime.Version(),
				RocksDB:   rocksdb.Version(),
				OSArch:    runtime.GOOS + "/" + runtime.GOARCH,
			})
		},
	}
}

// versionInfo is everything `metastore version` reports; a struct so the
// output format can be tested without a particular build.
type versionInfo struct {
	Version   string
	GitCommit string
	GoVersion string
	RocksDB   string
	OSArch    string
}

func writeVersion(w io.Writer, v versionInfo) error {
	_, err := fmt.Fprintf(w,
		"metastore version: %s\ngit commit:        %s\ngo version:        %s\nrocksdb version:   %s\nos/arch:           %s\n",
		v.Version, v.GitCommit, v.GoVersion, v.RocksDB, v.OSArch)
	return err
}
