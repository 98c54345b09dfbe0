package http

import (
	"bytes"
	"context"

	"github.com/valyala/fasthttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/mvcc"
)

// etcd's JSON gateway: POST /v3/<service>/<method> with the request message
// as JSON, answered with the response message as JSON. The encoding is the
// one etcd's grpc-gateway uses: protojson with proto field names
// (snake_case) on output, either name accepted on input, bytes as base64,
// 64-bit integers as strings, enums by name, zero fields omitted, unknown
// input fields ignored.
var (
	gwMarshal   = protojson.MarshalOptions{UseProtoNames: true}
	gwUnmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}
)

// gateway decodes the request body into a new P, validates it with check
// (when set), calls the server and encodes the reply or the error.
func gateway[T any, P interface {
	*T
	proto.Message
}, R proto.Message](h *Handler, ctx *fasthttp.RequestCtx, check func(P) error, call func(context.Context, P) (R, error)) {
	req := P(new(T))
	if !decodeRequest(ctx, req) {
		return
	}
	if check != nil {
		if err := check(req); err != nil {
			writeError(ctx, toAPIError(err))
			return
		}
	}
	cctx, ok := h.requestContext(ctx) // auth.go
	if !ok {
		return
	}
	resp, err := call(cctx, req)
	if err != nil {
		writeError(ctx, toAPIError(err))
		return
	}
	writeProto(ctx, resp)
}

// decodeRequest decodes the request body into req; on a malformed body it
// writes the 400 and returns false. grpc-gateway treats an empty body as an
// empty request.
func decodeRequest(ctx *fasthttp.RequestCtx, req proto.Message) bool {
	if body := ctx.PostBody(); len(bytes.TrimSpace(body)) > 0 {
		if err := gwUnmarshal.Unmarshal(body, req); err != nil {
			writeError(ctx, badRequest(err.Error()))
			return false
		}
	}
	return true
}

func writeProto(ctx *fasthttp.RequestCtx, m proto.Message) {
	b := getBuf()
	buf, err := gwMarshal.MarshalAppend((*b)[:0], m)
	if err != nil {
		putBuf(b)
		writeError(ctx, toAPIError(err))
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(contentJSON)
	ctx.SetBody(buf)
	*b = buf
	putBuf(b)
}

func (h *Handler) gwRange(ctx *fasthttp.RequestCtx) {
	gateway(h, ctx, mvcc.CheckRange, h.kv.Range)
}

func (h *Handler) gwPut(ctx *fasthttp.RequestCtx) {
	gateway(h, ctx, h.checkPut, h.kv.Put)
}

func (h *Handler) gwDeleteRange(ctx *fasthttp.RequestCtx) {
	gateway(h, ctx, mvcc.CheckDeleteRange, h.kv.DeleteRange)
}

func (h *Handler) gwTxn(ctx *fasthttp.RequestCtx) {
	gateway(h, ctx, h.checkTxn, h.kv.Txn)
}

func (h *Handler) gwCompact(ctx *fasthttp.RequestCtx) {
	gateway(h, ctx, nil, h.kv.Compact)
}

func (h *Handler) gwMemberList(ctx *fasthttp.RequestCtx) {
	gateway(h, ctx, nil, userOnly(h, h.mt.MemberList))
}

func (h *Handler) gwStatus(ctx *fasthttp.RequestCtx) {
	gateway(h, ctx, nil, userOnly(h, h.mt.Status))
}

func (h *Handler) gwAlarm(ctx *fasthttp.RequestCtx) {
	gateway(h, ctx, nil, userOnly(h, h.mt.Alarm))
}

// userAuthorizer is the check that the caller is a user once auth is on;
// *server.Server implements it. A KV that does not (tests' fakes) is not
// checked.
type userAuthorizer interface {
	AuthorizeUser(ctx context.Context) error
}

// userOnly wraps call with the user check, as the gRPC interceptor gates
// the same RPCs (grpc/auth.go, userMethods).
func userOnly[P, R any](h *Handler, call func(context.Context, P) (R, error)) func(context.Context, P) (R, error) {
	if a, ok := h.kv.(userAuthorizer); ok {
		return gatedBy(a.AuthorizeUser, call)
	}
	return call
}

// checkPut and checkTxn are etcd's checks, as the gRPC front end runs them.
func (h *Handler) checkPut(r *pb.PutRequest) error {
	if err := mvcc.CheckPut(r); err != nil {
		return err
	}
	return mvcc.CheckSize(r, h.cfg.MaxRequestBytes)
}

func (h *Handler) checkTxn(r *pb.TxnRequest) error {
	if err := mvcc.CheckTxn(r, h.cfg.MaxTxnOps); err != nil {
		return err
	}
	return mvcc.CheckTxnSize(r, h.cfg.MaxRequestBytes)
}
