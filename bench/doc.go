// Package bench is MetaStore's load generator: `metastore bench` runs its
// workloads against any etcd v3 compatible endpoint, MetaStore or real etcd,
// so the two are measured with the same client.
//
// NB: bench imports only the etcd client (go.etcd.io/etcd/client/v3 and the
// API types it exposes) and third-party libraries, never another MetaStore
// package (layering_test.go enforces it). A number measured through a
// shortcut into the server would not compare with etcd.
//
// # Workloads
//
// Every workload is a function of an Options (connections, clients, how
// many operations or for how long, an optional rate, key and value shapes)
// returning a *Result:
//
//	Put, Range, TxnPut, TxnMixed, Mixed   KV service over gRPC
//	Watch, WatchLatency                    Watch service: fan-out and event delay
//	LeaseKeepAlive                         Lease service: keepalive round trips
//	RESTPut, RESTGet                       MetaStore's /v1/kv/{key} REST API
//
// Keys are decimal numbers zero-padded to --key-size bytes ("00000042" for
// key-size 8), so they are printable and safe in a URL path, and the key
// space must fit in key-size digits.
//
// # Measuring
//
// Each client goroutine owns a probe that buffers samples (completion time,
// latency, kind, error kind) and hands them to one collector goroutine in
// batches, so recording costs no lock per operation. The collector keeps one
// HDR histogram per kind (1 µs to 60 s, 3 significant digits) and one per
// second of the run for the latency-over-time plot. Latency is service time:
// with --rate an operation's clock starts when it is sent, not when it was
// scheduled.
//
// Watch latency follows etcd's benchmark: the delay of an event is the time
// from the return of the Put that caused it to the event's arrival at the
// watcher, and zero when the event arrives first. The Put's sequence number
// travels in the first 8 bytes of the value.
//
// Errors are counted by kind (the gRPC code such as "Unavailable", "timeout"
// for a request past --request-timeout, "http-503" for a REST status), and
// the first message of each kind is kept for the report.
package bench
