package http

import (
	"context"
	"errors"

	"github.com/valyala/fasthttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/lease"
	"github.com/metastore/metastore/server"
)

// etcd's gateway paths of the Lease service (routes in handler.go):
//
//	/v3/lease/grant                                 LeaseGrantRequest
//	/v3/lease/revoke, /v3/kv/lease/revoke           LeaseRevokeRequest
//	/v3/lease/timetolive, /v3/kv/lease/timetolive   LeaseTimeToLiveRequest
//	/v3/lease/leases, /v3/kv/lease/leases           LeaseLeasesRequest
//	/v3/lease/keepalive                             LeaseKeepAliveRequest...
//
// Answers are the gRPC service's (grpc/lease.go), encoded as the rest of
// the gateway: an unknown lease is NotFound for a revoke (HTTP 404,
// "etcdserver: requested lease not found"), TTL -1 for TimeToLive and TTL
// 0 (absent in JSON) for a keep-alive, as etcd answers over gRPC.

// LeaseAPI is the Lease service; *server.Server implements it. Unknown
// leases are lease.ErrNotFound.
type LeaseAPI interface {
	LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error)
	LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error)
	LeaseRenew(ctx context.Context, id int64) (*pb.LeaseKeepAliveResponse, error)
	LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error)
	LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error)
	// LeaseHeader is a filled header for answers made here (unknown leases).
	LeaseHeader() *pb.ResponseHeader
}

var _ LeaseAPI = (*server.Server)(nil)

// leaseRoute serves one unary /v3/lease/* path with call.
func leaseRoute[T any, P interface {
	*T
	proto.Message
}, R proto.Message](call func(LeaseAPI, context.Context, P) (R, error)) func(*Handler, *fasthttp.RequestCtx) {
	return func(h *Handler, ctx *fasthttp.RequestCtx) {
		l, ok := h.kv.(LeaseAPI)
		if !ok {
			writeError(ctx, errNotFound)
			return
		}
		gateway(h, ctx, nil, func(c context.Context, r P) (R, error) { return call(l, c, r) })
	}
}

// leaseTimeToLive answers an unknown lease with TTL -1 rather than an
// error, as etcd does.
func leaseTimeToLive(l LeaseAPI, ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	resp, err := l.LeaseTimeToLive(ctx, r)
	if errors.Is(err, lease.ErrNotFound) {
		return &pb.LeaseTimeToLiveResponse{Header: l.LeaseHeader(), ID: r.ID, TTL: -1}, nil
	}
	return resp, err
}

// gwLeaseKeepAlive is etcd's gateway keep-alive: the body holds one or
// more LeaseKeepAliveRequest JSON objects, each renewed in order and
// answered with one {"result":<LeaseKeepAliveResponse>} line; the answer
// ends with the body (grpc-gateway closes the gRPC stream's send side at
// the end of the body, and the service then ends the stream). An unknown
// or expired lease gets TTL 0. Any other error ends the answer with
// grpc-gateway's {"error":{"code":N,"message":"..."}} line, with the
// error's HTTP status if it is the first line.
//
// NB: the whole body has arrived before the handler runs (fasthttp), so
// the answer is built at once rather than streamed; the bytes are the
// same. A malformed body is a 400 before any renewal (etcd's gateway logs
// it and answers the requests decoded before it).
func (h *Handler) gwLeaseKeepAlive(ctx *fasthttp.RequestCtx) {
	l, ok := h.kv.(LeaseAPI)
	if !ok {
		writeError(ctx, errNotFound)
		return
	}
	reqs, cctx, ok := gwStreamRequests[pb.LeaseKeepAliveRequest](h, ctx)
	if !ok {
		return
	}
	b := getBuf()
	defer putBuf(b)
	buf := (*b)[:0]
	status := fasthttp.StatusOK
	for i, req := range reqs {
		var err error
		if buf, err = appendRenewal(buf, cctx, l, req); err == nil {
			continue
		}
		e := toAPIError(err)
		if i == 0 {
			status = e.status
		}
		buf = appendErrorChunk(buf, e)
		break
	}
	*b = buf
	ctx.SetStatusCode(status)
	ctx.SetContentType(contentJSON)
	ctx.SetBody(buf)
}

// appendRenewal renews req's lease and appends the answer line,
// {"result":<LeaseKeepAliveResponse>} (TTL 0 for an unknown or expired
// lease); on another error it appends nothing and returns the error.
func appendRenewal(buf []byte, cctx context.Context, l LeaseAPI, req *pb.LeaseKeepAliveRequest) ([]byte, error) {
	resp, err := l.LeaseRenew(cctx, req.ID)
	if errors.Is(err, lease.ErrNotFound) {
		resp, err = &pb.LeaseKeepAliveResponse{Header: l.LeaseHeader(), ID: req.ID}, nil
	}
	if err != nil {
		return buf, err
	}
	n := len(buf)
	buf = append(buf, `{"result":`...)
	out, err := gwMarshal.MarshalAppend(buf, resp)
	if err != nil {
		return buf[:n], err
	}
	return append(out, "}\n"...), nil
}
