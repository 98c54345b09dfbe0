// Package grpc serves etcd's v3 gRPC API over the server package: KV
// (including RangeStream), Watch, Lease, Cluster (member list, add, remove,
// update, promote: cluster.go), Maintenance, Auth, Lock and Election (over
// an in-process clientv3 on a bufconn listener, as etcd builds them on its
// own client: lock.go) and the gRPC health service. It validates requests
// with etcd's rules before they reach the server and translates errors to
// etcd's gRPC errors (errors.go, via etcderr), so clientv3 and etcdctl see
// the typed errors they expect. It holds no state of its own.
package grpc
