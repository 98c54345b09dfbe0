// Package version holds the release version and source commit the binary was
// built from. Both are plain strings stamped at link time by the Makefile:
//
//	go build -ldflags "-X github.com/metastore/metastore/version.Version=v1.2.3 \
//	    -X github.com/metastore/metastore/version.GitCommit=abc123"
//
// An unstamped build (plain `go build`, `go test`) reports the defaults below.
// The package imports nothing from the project, so any layer may use it (for
// example for `/version` or the maintenance Status reply).
package version
