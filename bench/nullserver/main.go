// Command nullserver answers the etcd v3 KV calls at once and stores nothing.
// It measures the ceiling of a client on this machine: what etcd's benchmark
// tool or etcdctl check perf reach when the server costs only gRPC's own
// work. scripts/bench-ceiling.sh runs it; it is never a real store (every
// Range answers no keys).
//
//	nullserver --listen 127.0.0.1:23790
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
)

// kv answers every call with a fresh revision and no keys.
type kv struct {
	pb.UnimplementedKVServer
	rev atomic.Int64
}

func (k *kv) header(write bool) *pb.ResponseHeader {
	rev := k.rev.Load()
	if write {
		rev = k.rev.Add(1)
	}
	return &pb.ResponseHeader{ClusterId: 1, MemberId: 1, Revision: rev, RaftTerm: 1}
}

func (k *kv) Put(context.Context, *pb.PutRequest) (*pb.PutResponse, error) {
	return &pb.PutResponse{Header: k.header(true)}, nil
}

func (k *kv) Range(context.Context, *pb.RangeRequest) (*pb.RangeResponse, error) {
	return &pb.RangeResponse{Header: k.header(false)}, nil
}

func (k *kv) DeleteRange(context.Context, *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	return &pb.DeleteRangeResponse{Header: k.header(true)}, nil
}

func (k *kv) Txn(_ context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	resp := &pb.TxnResponse{Header: k.header(true), Succeeded: len(r.GetCompare()) == 0}
	ops := r.GetFailure()
	if resp.Succeeded {
		ops = r.GetSuccess()
	}
	for _, op := range ops {
		switch op.GetRequest().(type) {
		case *pb.RequestOp_RequestPut:
			resp.Responses = append(resp.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: &pb.PutResponse{Header: resp.Header}}})
		case *pb.RequestOp_RequestRange:
			resp.Responses = append(resp.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: &pb.RangeResponse{Header: resp.Header}}})
		case *pb.RequestOp_RequestDeleteRange:
			resp.Responses = append(resp.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: &pb.DeleteRangeResponse{Header: resp.Header}}})
		default:
			return nil, fmt.Errorf("nullserver: nested txn not supported")
		}
	}
	return resp, nil
}

func (k *kv) Compact(context.Context, *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	return &pb.CompactionResponse{Header: k.header(false)}, nil
}

// maintenance answers Status, which clients use to find the leader.
type maintenance struct {
	pb.UnimplementedMaintenanceServer
	kv *kv
}

func (m maintenance) Status(context.Context, *pb.StatusRequest) (*pb.StatusResponse, error) {
	h := m.kv.header(false)
	return &pb.StatusResponse{Header: h, Version: "3.7.3", Leader: 1, RaftTerm: 1}, nil
}

// newServer returns a gRPC server with the null KV and Maintenance services.
func newServer() *grpc.Server {
	s := grpc.NewServer()
	k := &kv{}
	pb.RegisterKVServer(s, k)
	pb.RegisterMaintenanceServer(s, maintenance{kv: k})
	return s
}

func main() {
	listen := flag.String("listen", "127.0.0.1:23790", "address to serve gRPC on")
	flag.Parse()
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nullserver:", err)
		os.Exit(1)
	}
	s := newServer()
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		s.Stop()
	}()
	if err := s.Serve(l); err != nil {
		fmt.Fprintln(os.Stderr, "nullserver:", err)
		os.Exit(1)
	}
}
