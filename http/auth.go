package http

import (
	"bytes"
	"context"

	"github.com/valyala/fasthttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// Auth over HTTP, as etcd's gateway: the /v3/auth/* paths (routes in
// handler.go) call the server's Auth service, and every /v3 and /v1
// request carries the token /v3/auth/authenticate returned in its
// Authorization header (raw, as etcd's gateway takes it, or "Bearer
// <token>"). The server checks each request as it checks gRPC ones.

// AuthGate resolves a request's token into its context; *server.Server
// implements it. A KV that does not is not checked (tests' fakes).
type AuthGate interface {
	AuthEnabled() bool
	AuthContext(ctx context.Context, token string) (context.Context, error)
	// AnonymousContext marks ctx as the request of a client that sent no
	// token, which every check refuses once auth is enabled.
	AnonymousContext(ctx context.Context) context.Context
}

// AuthAPI is the Auth service; *server.Server implements it.
type AuthAPI interface {
	AuthEnable(context.Context, *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error)
	AuthDisable(context.Context, *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error)
	AuthStatus(context.Context, *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error)
	Authenticate(context.Context, *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error)
	UserAdd(context.Context, *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error)
	UserGet(context.Context, *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error)
	UserList(context.Context, *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error)
	UserDelete(context.Context, *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error)
	UserChangePassword(context.Context, *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error)
	UserGrantRole(context.Context, *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error)
	UserRevokeRole(context.Context, *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error)
	RoleAdd(context.Context, *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error)
	RoleGet(context.Context, *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error)
	RoleList(context.Context, *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error)
	RoleDelete(context.Context, *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error)
	RoleGrantPermission(context.Context, *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error)
	RoleRevokePermission(context.Context, *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error)
}

// requestContext is the context a request calls the server with: the
// handler's, marked with the caller's auth info. On a bad token it writes
// the error and returns false.
//
// Every request is marked as a client's, with auth disabled too: the
// server checks a write again when it applies it after an auth change, and
// an unmarked context is the server's own request, which it never checks.
// A write sent just before auth was enabled would then have been applied
// unchecked. NB: with auth disabled and no token the mark is made once
// (h.anon), so the request allocates nothing (the REST handlers'
// allocation guards).
func (h *Handler) requestContext(ctx *fasthttp.RequestCtx) (context.Context, bool) {
	g, ok := h.kv.(AuthGate)
	if !ok {
		return h.ctx, true
	}
	tok := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	if len(tok) == 0 && !g.AuthEnabled() {
		return h.anon, true
	}
	tok = bytes.TrimPrefix(tok, []byte("Bearer "))
	c, err := g.AuthContext(h.ctx, string(tok))
	if err != nil {
		writeError(ctx, toAPIError(err))
		return nil, false
	}
	return c, true
}

// authRoute serves one /v3/auth/* path with call.
func authRoute[T any, P interface {
	*T
	proto.Message
}, R proto.Message](call func(AuthAPI, context.Context, P) (R, error)) func(*Handler, *fasthttp.RequestCtx) {
	return func(h *Handler, ctx *fasthttp.RequestCtx) {
		a, ok := h.kv.(AuthAPI)
		if !ok {
			writeError(ctx, errNotFound)
			return
		}
		gateway(h, ctx, nil, func(c context.Context, r P) (R, error) { return call(a, c, r) })
	}
}
