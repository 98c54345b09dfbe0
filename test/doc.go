// Package test holds MetaStore's black-box tests: each test starts real
// `metastore serve` processes (built once per run by TestMain) on free
// loopback ports and talks to them as users do, with clientv3, etcdctl or
// plain HTTP. Fault tests kill those processes with SIGKILL and restart them
// from the same data directory.
//
// Shared helpers (start a member or a cluster, make a client, wait for a
// condition) live in helpers_test.go only.
package test
