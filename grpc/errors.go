package grpc

import "github.com/metastore/metastore/etcderr"

// toGRPC translates an error from the server into etcd's gRPC error (the
// table is in etcderr, shared with the HTTP front end).
func toGRPC(err error) error { return etcderr.FromError(err) }
