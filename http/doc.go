// Package http is MetaStore's HTTP front end, on fasthttp. It serves:
//
//   - etcd's JSON gateway (gateway.go): POST /v3/kv/*, /v3/watch (watch.go),
//     /v3/lease/* (lease.go), /v3/auth/* (auth.go), /v3/cluster/member/*
//     (cluster.go), /v3/maintenance/* (maintenance.go: snapshot streams),
//     /v3/lock/* and /v3/election/* (concurrency.go), encoded as etcd's
//     grpc-gateway does (protojson, proto field names, base64 bytes, int64
//     as strings) with its error bodies {"code":<gRPC code>,"message":
//     "<etcd message>"} and HTTP statuses.
//   - a REST API for plain HTTP clients (rest.go): /v1/kv/{key} with raw
//     values, ETags (mod revisions) and conditional writes.
//   - the operations endpoints (ops.go): /health, /livez, /readyz,
//     /version, /metrics (metrics.go) and, when enabled, /debug/pprof/.
//
// Like the gRPC front end it decodes, validates with etcd's rules
// (mvcc.Check*), calls the server and encodes; it holds no state but
// request counters. It never imports grpc/ (errors go through etcderr, as
// the gRPC side's do). The Lock and Election paths are the exception to
// calling the server: as etcd's gateway, they call the member's own gRPC
// services, over an in-memory connection Serve dials (concurrency.go).
//
// Mux (mux.go) lets gRPC and HTTP share a client port, as etcd does: the
// first bytes of each connection decide (HTTP/2 preface: gRPC).
//
// # Invariants
//
//   - Routing is one map lookup on the path (routes in handler.go); a new
//     endpoint is one line there. /v1/kv/ is matched on the raw path so that
//     a key may hold any bytes.
//   - A client's mistake (bad JSON, bad base64, a bad parameter, a body over
//     the limit, a wrong method or path) is a 4xx, never a 500.
//   - The REST GET and PUT hot paths allocate nothing per request
//     (AllocsPerRun tests in rest_test.go): pooled scratch, hand-written
//     JSON, header and body bytes copied into fasthttp's reused buffers.
//   - Requests passed to the backend borrow fasthttp's buffers; the backend
//     must not keep them after it returns (see KV).
package http
