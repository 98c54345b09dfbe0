package version

// NB: these must stay plain string variables (not constants, not computed)
// or the linker's -X flag cannot set them.
var (
	// Version is the release version, e.g. "v0.3.0" or "v0.3.0-4-gabc1234-dirty".
	Version = "v0.0.0-dev"
	// GitCommit is the abbreviated commit hash, suffixed "-dirty" when the
	// work tree had uncommitted changes at build time.
	GitCommit = "unknown"
)

// EtcdAPIVersion is the etcd release whose v3 API MetaStore answers as. It is
// what Maintenance.Status reports as the server version, because clients
// (etcdctl, Kubernetes) read that field to decide which API features exist.
const EtcdAPIVersion = "3.7.3"

// EtcdStorageVersion is what Maintenance.Status reports as the storage
// version: etcd reports its storage schema there as major.minor.0 ("3.7.0"
// from etcd 3.7.3), never the patch release.
const EtcdStorageVersion = "3.7.0"
