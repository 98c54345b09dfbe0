// Package grpc serves etcd's v3 gRPC API over the server package: KV,
// Cluster (member list, add, remove, update, promote: cluster.go),
// Maintenance, the gRPC health service, and
// the remaining etcd services registered so that clients get a clear
// Unimplemented error until they are built. It validates requests with
// etcd's rules before they reach the server and translates errors to
// etcd's gRPC errors (errors.go), so clientv3 and etcdctl see the typed
// errors they expect. It holds no state of its own.
package grpc
