package grpc

import (
	"context"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/metastore/metastore/mvcc"
)

// AuthBackend is what the Auth service needs from the server.
type AuthBackend interface {
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

// AuthGate is what the interceptors need: resolving a request's token into
// its context, and the admin check for Maintenance and Cluster changes.
type AuthGate interface {
	AuthContext(ctx context.Context, token string) (context.Context, error)
	// AuthContextUser marks a request that has no token but a verified
	// client certificate as its common name's (etcd's AuthInfoFromTLS).
	AuthContextUser(ctx context.Context, user string) context.Context
	AuthorizeAdmin(ctx context.Context) error
	AuthorizeUser(ctx context.Context) error
	// AuthEnabled reports whether auth is on.
	AuthEnabled() bool
}

// rangeAuthorizer is the watch creation check (read permission).
type rangeAuthorizer interface {
	AuthorizeRange(ctx context.Context, key, end []byte) error
}

type authServer struct {
	pb.UnimplementedAuthServer
	b AuthBackend
}

// NewAuthServer returns etcd's Auth service over b.
func NewAuthServer(b AuthBackend) pb.AuthServer { return &authServer{b: b} }

func wrap[R any](resp R, err error) (R, error) {
	if err != nil {
		var zero R
		return zero, toGRPC(err)
	}
	return resp, nil
}

func (a *authServer) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return wrap(a.b.AuthEnable(ctx, r))
}

func (a *authServer) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	return wrap(a.b.AuthDisable(ctx, r))
}

func (a *authServer) AuthStatus(ctx context.Context, r *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	return wrap(a.b.AuthStatus(ctx, r))
}

func (a *authServer) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	return wrap(a.b.Authenticate(ctx, r))
}

func (a *authServer) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	return wrap(a.b.UserAdd(ctx, r))
}

func (a *authServer) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	return wrap(a.b.UserGet(ctx, r))
}

func (a *authServer) UserList(ctx context.Context, r *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	return wrap(a.b.UserList(ctx, r))
}

func (a *authServer) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return wrap(a.b.UserDelete(ctx, r))
}

func (a *authServer) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	return wrap(a.b.UserChangePassword(ctx, r))
}

func (a *authServer) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return wrap(a.b.UserGrantRole(ctx, r))
}

func (a *authServer) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return wrap(a.b.UserRevokeRole(ctx, r))
}

func (a *authServer) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return wrap(a.b.RoleAdd(ctx, r))
}

func (a *authServer) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	return wrap(a.b.RoleGet(ctx, r))
}

func (a *authServer) RoleList(ctx context.Context, r *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	return wrap(a.b.RoleList(ctx, r))
}

func (a *authServer) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return wrap(a.b.RoleDelete(ctx, r))
}

func (a *authServer) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return wrap(a.b.RoleGrantPermission(ctx, r))
}

func (a *authServer) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return wrap(a.b.RoleRevokePermission(ctx, r))
}

// adminMethods need the root role once auth is enabled (etcd's
// authMaintenanceServer and membership checks); userMethods need a user,
// any user (etcd 3.7 answers "user name is empty" to a caller without
// one); alarm changes are checked again as proposals.
var adminMethods = map[string]bool{
	"/etcdserverpb.Maintenance/Defragment": true,
	"/etcdserverpb.Maintenance/Snapshot":   true,
	"/etcdserverpb.Maintenance/Hash":       true,
	"/etcdserverpb.Maintenance/HashKV":     true,
	"/etcdserverpb.Maintenance/MoveLeader": true,
	"/etcdserverpb.Maintenance/Downgrade":  true,
	"/etcdserverpb.Cluster/MemberAdd":      true,
	"/etcdserverpb.Cluster/MemberRemove":   true,
	"/etcdserverpb.Cluster/MemberUpdate":   true,
	"/etcdserverpb.Cluster/MemberPromote":  true,
}

var userMethods = map[string]bool{
	"/etcdserverpb.Maintenance/Status": true,
	"/etcdserverpb.Maintenance/Alarm":  true,
	"/etcdserverpb.Cluster/MemberList": true,
}

// tokenFrom reads the token clientv3 sends (metadata "token") or an
// "authorization" header (raw, or "Bearer <token>"). It reads the two keys
// with ValueFromIncomingContext, which does not copy the whole metadata
// map as FromIncomingContext does (that copy was 8% of a small range's CPU).
func tokenFrom(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, rpctypes.TokenFieldNameGRPC); len(v) > 0 {
		return v[0]
	}
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		return strings.TrimPrefix(v[0], "Bearer ")
	}
	return ""
}

// authorize marks ctx with the caller's auth info and runs the admin check
// for admin methods.
func authorize(g AuthGate, ctx context.Context, method string) (context.Context, error) {
	// With auth off the token and the certificate are not looked at (as in
	// etcd): AuthContext ignores the token then anyway.
	tok, user, byCert := "", "", false
	if g.AuthEnabled() {
		tok = tokenFrom(ctx)
		user, byCert = certUser(ctx)
	}
	if byCert && tok == "" {
		ctx = g.AuthContextUser(ctx, user)
	} else {
		var err error
		if ctx, err = g.AuthContext(ctx, tok); err != nil {
			return nil, toGRPC(err)
		}
	}
	if adminMethods[method] {
		if err := g.AuthorizeAdmin(ctx); err != nil {
			return nil, toGRPC(err)
		}
	}
	if userMethods[method] {
		if err := g.AuthorizeUser(ctx); err != nil {
			return nil, toGRPC(err)
		}
	}
	return ctx, nil
}

// AuthUnaryInterceptor puts every unary call's auth info into its context.
func AuthUnaryInterceptor(g AuthGate) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := authorize(g, ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// AuthStreamInterceptor does the same for streams (Watch, LeaseKeepAlive,
// Snapshot).
func AuthStreamInterceptor(g AuthGate) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := authorize(g, ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &authStream{ServerStream: ss, ctx: ctx})
	}
}

type authStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *authStream) Context() context.Context { return s.ctx }

// authorizeWatch refuses a watch on a range the user may not read, as
// etcd does: created and canceled at once, reason "permission denied".
func (s *watchServer) authorizeWatch(ctx context.Context, ws *mvcc.WatchStream, c *pb.WatchCreateRequest) bool {
	a, ok := s.b.(rangeAuthorizer)
	if !ok {
		return true
	}
	key := c.Key
	if len(key) == 0 {
		key = []byte{0}
	}
	if err := a.AuthorizeRange(ctx, key, c.RangeEnd); err != nil {
		ws.Reject(toGRPC(err).Error())
		return false
	}
	return true
}
