package server

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/metadata"

	"github.com/metastore/metastore/auth"
	"github.com/metastore/metastore/mvcc"
)

// Auth, end to end (etcd's design):
//
//   - Users, roles, permissions and the enabled flag are raft requests
//     (InternalRaftRequest's Auth* fields) applied on every member by the
//     auth.Store into the apply batch's Meta keyspace. Passwords are hashed
//     here, by the proposer, so the log never holds a clear password and
//     the apply path never runs bcrypt.
//   - Authenticate checks the password here (bcrypt), then proposes an
//     InternalAuthenticateRequest carrying the simple token this member
//     chose; every member assigns it at apply, so a client may use the
//     token with any member.
//   - Front ends resolve the request's token (AuthContext) into an
//     auth.AuthInfo in the context, for every client request; a context
//     without one is the server's own (lease expiry, alarms,
//     auto-compaction) and is not checked. Every client request is
//     checked before it is proposed or read (authorize, authorizeRead);
//     a proposal records the user and the auth revision it was checked
//     at in its header, and apply checks it again, as that user, if an
//     auth change was applied meanwhile (recheckAtApply), so a revoked
//     permission cannot slip through between check and apply.
//   - Lease calls that do not go through raft (keep-alive, TimeToLive,
//     Leases) are checked by the member that receives them
//     (authorizeLease), as etcd. A follower that relays a call to the
//     leader (keep-alive, TimeToLive, MemberPromote) sends the caller's
//     token along (forwardAuth), so the leader checks the same user.

// AuthConfig configures authentication (etcd's --auth-token,
// --auth-token-ttl, --bcrypt-cost).
type AuthConfig struct {
	// Token is "simple" (default) or "jwt,pub-key=...,priv-key=...,sign-method=...".
	Token string
	// TokenTTL is the simple token TTL (0: 300 s).
	TokenTTL time.Duration
	// BcryptCost is the password hash cost (0: 10).
	BcryptCost int
}

// loadAuth builds the auth store (once) and loads it from the state: at
// New and after a snapshot restore.
func (s *Server) loadAuth() error {
	if s.auth == nil {
		tp, err := auth.NewTokenProvider(s.cfg.Auth.Token, s.cfg.Auth.TokenTTL)
		if err != nil {
			return err
		}
		s.auth = auth.New(auth.Config{BcryptCost: s.cfg.Auth.BcryptCost, Tokens: tp, Logger: s.lg.Named("auth")})
	}
	return s.auth.Load(s.eng)
}

// AuthContext returns ctx marked as a client request with the user token
// names. No token, or auth disabled, is an anonymous client (refused by
// every check once auth is enabled). An unknown or expired token is
// auth.ErrInvalidAuthToken while auth is enabled (clientv3 then
// re-authenticates).
func (s *Server) AuthContext(ctx context.Context, token string) (context.Context, error) {
	if token == "" || !s.auth.IsEnabled() {
		return s.AnonymousContext(ctx), nil
	}
	info, err := s.auth.InfoFromToken(token)
	if err != nil {
		return nil, err
	}
	return auth.WithInfo(ctx, info), nil
}

// AnonymousContext returns ctx marked as a client request without a token:
// AuthContext(ctx, "") without its error.
func (s *Server) AnonymousContext(ctx context.Context) context.Context {
	return auth.WithInfo(ctx, &auth.AuthInfo{})
}

// AuthContextUser returns ctx marked as a client request running as user
// without a token: etcd's user for a request that carries no token over a
// TLS connection with a verified client certificate (its common name).
func (s *Server) AuthContextUser(ctx context.Context, user string) context.Context {
	if !s.auth.IsEnabled() {
		return auth.WithInfo(ctx, &auth.AuthInfo{})
	}
	return auth.WithInfo(ctx, &auth.AuthInfo{Username: user, Revision: s.auth.Revision()})
}

// AuthorizeAdmin checks that a client request runs as root (Maintenance,
// Cluster changes). The server's own calls pass.
func (s *Server) AuthorizeAdmin(ctx context.Context) error {
	info, client := auth.InfoFromContext(ctx)
	if !client {
		return nil
	}
	return s.auth.IsAdminPermitted(info)
}

// AuthorizeUser fails with etcd's "user name is empty" when auth is on and
// the caller is no user (no token, no certificate's name): Status,
// MemberList and Alarm need a user, any user, as in etcd 3.7.
func (s *Server) AuthorizeUser(ctx context.Context) error {
	info, client := auth.InfoFromContext(ctx)
	if !client || !s.auth.IsEnabled() {
		return nil
	}
	if info == nil || info.Username == "" {
		return auth.ErrUserEmpty
	}
	return nil
}

// AuthorizeRange checks read permission on [key, end) (watch creation).
func (s *Server) AuthorizeRange(ctx context.Context, key, end []byte) error {
	info, client := auth.InfoFromContext(ctx)
	if !client {
		return nil
	}
	return s.auth.IsRangePermitted(info, key, end)
}

// authorize checks a client proposal and records in its header the user
// and the auth revision it was checked at (see applyAuth). The revision is
// read before the check, so any change applied after the check is seen.
func (s *Server) authorize(ctx context.Context, r *pb.InternalRaftRequest) error {
	info, client := auth.InfoFromContext(ctx)
	if !client {
		return nil
	}
	rev := s.auth.Revision()
	if err := s.checkRequest(info, r); err != nil {
		return err
	}
	r.Header.Username = info.Username
	r.Header.AuthRevision = rev
	return nil
}

// authorizeRead checks a client read (Range, read-only Txn).
func (s *Server) authorizeRead(ctx context.Context, r *pb.InternalRaftRequest) error {
	info, client := auth.InfoFromContext(ctx)
	if !client {
		return nil
	}
	return s.checkRequest(info, r)
}

// checkRequest is etcd's per-request permission check.
func (s *Server) checkRequest(info *auth.AuthInfo, r *pb.InternalRaftRequest) error {
	as := s.auth
	if !as.IsEnabled() {
		return nil
	}
	switch {
	case r.Range != nil:
		return as.IsRangePermitted(info, r.Range.Key, r.Range.RangeEnd)
	case r.Put != nil:
		return s.checkPut(info, r.Put)
	case r.DeleteRange != nil:
		return s.checkDeleteRange(info, r.DeleteRange)
	case r.Txn != nil:
		return s.checkTxn(info, r.Txn)
	case r.LeaseGrant != nil:
		return as.IsAuthenticated(info)
	case r.LeaseRevoke != nil:
		return s.checkLeaseRevoke(info, r.LeaseRevoke.ID)
	case r.Authenticate != nil:
		return nil
	}
	// Compaction, auth management, alarms, downgrade, lease checkpoints.
	return as.IsAdminPermitted(info)
}

func (s *Server) checkPut(info *auth.AuthInfo, r *pb.PutRequest) error {
	if err := s.auth.IsPutPermitted(info, r.Key); err != nil {
		return err
	}
	// etcd: a lease already attached to a key the user may not write
	// cannot be attached to another key (the user could not revoke it).
	if r.Lease != 0 {
		if err := s.checkLeaseKeys(info, r.Lease, true); err != nil {
			return err
		}
	}
	if r.PrevKv {
		return s.auth.IsRangePermitted(info, r.Key, nil)
	}
	return nil
}

func (s *Server) checkDeleteRange(info *auth.AuthInfo, r *pb.DeleteRangeRequest) error {
	if err := s.auth.IsDeleteRangePermitted(info, r.Key, r.RangeEnd); err != nil {
		return err
	}
	if r.PrevKv {
		return s.auth.IsRangePermitted(info, r.Key, r.RangeEnd)
	}
	return nil
}

// checkTxn checks the compares' keys for read and every op of both
// branches, whichever runs, as etcd does.
func (s *Server) checkTxn(info *auth.AuthInfo, r *pb.TxnRequest) error {
	for _, c := range r.Compare {
		if err := s.auth.IsRangePermitted(info, c.Key, c.RangeEnd); err != nil {
			return err
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			var err error
			switch v := op.GetRequest().(type) {
			case *pb.RequestOp_RequestRange:
				err = s.auth.IsRangePermitted(info, v.RequestRange.Key, v.RequestRange.RangeEnd)
			case *pb.RequestOp_RequestPut:
				err = s.checkPut(info, v.RequestPut)
			case *pb.RequestOp_RequestDeleteRange:
				err = s.checkDeleteRange(info, v.RequestDeleteRange)
			case *pb.RequestOp_RequestTxn:
				err = s.checkTxn(info, v.RequestTxn)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// checkLeaseRevoke: an existing user, and root or write permission on
// every key attached to the lease (etcd).
func (s *Server) checkLeaseRevoke(info *auth.AuthInfo, id int64) error {
	if err := s.auth.IsAuthenticated(info); err != nil {
		return err
	}
	return s.checkLeaseKeys(info, id, true)
}

// checkLeaseKeys checks write (or read) permission on every key attached
// to lease id; root passes. An unknown lease has no keys: its error, if
// any, is the lease call's own (lease not found).
func (s *Server) checkLeaseKeys(info *auth.AuthInfo, id int64, write bool) error {
	if s.auth.IsAdminPermitted(info) == nil {
		return nil
	}
	keys, err := s.leases.lessor.Keys(id)
	if err != nil {
		return nil
	}
	for _, k := range keys {
		if write {
			err = s.auth.IsPutPermitted(info, k)
		} else {
			err = s.auth.IsRangePermitted(info, k, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// recheckAtApply is the apply side of the check (etcd's authApplierV3).
// It runs on every member at the request's log position, against
// replicated state only, so every member decides alike:
//
//   - the server's own requests (AuthRevision 0) and everything while
//     auth is disabled pass;
//   - if the auth revision moved since the proposer checked the request,
//     the check runs again, as the user in the header, against the auth
//     state now: a permission revoked (or auth enabled) meanwhile denies
//     the request with the check's own error. NB: etcd refuses every such
//     request with ErrAuthOldRevision and leaves the retry to clientv3;
//     checking again gives the same final answer without the round trip,
//     and clients that do not retry (the JSON gateway, curl) are not
//     refused for an unrelated auth change;
//   - a request whose check reads lease attachments (LeaseRevoke, a Put
//     with a lease, a Txn with one) is checked again always: attaching a
//     key to a lease does not move the auth revision.
func (s *Server) recheckAtApply(r *pb.InternalRaftRequest) error {
	h := r.Header
	if h == nil || h.AuthRevision == 0 || !s.auth.IsEnabled() {
		return nil
	}
	if h.AuthRevision == s.auth.Revision() && !readsLeases(r) {
		return nil
	}
	return s.checkRequest(&auth.AuthInfo{Username: h.Username}, r)
}

// readsLeases: the request's check looks at a lease's attached keys.
func readsLeases(r *pb.InternalRaftRequest) bool {
	switch {
	case r.LeaseRevoke != nil:
		return true
	case r.Put != nil:
		return r.Put.Lease != 0
	case r.Txn != nil:
		return txnHasLease(r.Txn)
	}
	return false
}

func txnHasLease(t *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			if p := op.GetRequestPut(); p != nil && p.Lease != 0 {
				return true
			}
			if sub := op.GetRequestTxn(); sub != nil && txnHasLease(sub) {
				return true
			}
		}
	}
	return false
}

// authorizeLease is etcd's check of the lease calls that do not go through
// raft (checkLeaseRenew, checkLeaseTimeToLive, checkLeaseLeases): a user
// is required, and unless it is root, permission on every key attached to
// each lease in ids (write for a keep-alive, read for TimeToLive with
// keys and for Leases). It returns the auth revision the check ran at;
// authMoved tells the caller, after answering, whether auth changed
// meanwhile. The server's own calls pass.
func (s *Server) authorizeLease(ctx context.Context, ids []int64, write bool) (uint64, error) {
	info, client := auth.InfoFromContext(ctx)
	if !client || !s.auth.IsEnabled() {
		return 0, nil
	}
	rev := s.auth.Revision()
	if err := s.auth.IsAuthenticated(info); err != nil {
		return 0, err
	}
	for _, id := range ids {
		if err := s.checkLeaseKeys(info, id, write); err != nil {
			return 0, err
		}
	}
	return rev, nil
}

// authMoved is ErrAuthOldRevision if auth changed since a check at rev
// (0: nothing was checked), as etcd answers then (clientv3 retries).
func (s *Server) authMoved(rev uint64) error {
	if rev != 0 && s.auth.IsEnabled() && s.auth.Revision() != rev {
		return auth.ErrAuthOldRevision
	}
	return nil
}

// forwardAuth returns the outgoing context for a call this member relays
// to the leader's client URL on behalf of ctx's caller, who was checked
// here already. The leader checks the call again, so it must name the
// same user: the caller's token goes along in the metadata clientv3 uses.
// A caller that has no token (a verified client certificate names it)
// gets one minted for it (mintToken): the leader would otherwise take the
// call as this member's own certificate. The server's own calls and calls
// while auth is disabled carry nothing.
func (s *Server) forwardAuth(ctx context.Context) (context.Context, error) {
	info, client := auth.InfoFromContext(ctx)
	if !client || !s.auth.IsEnabled() || info.Username == "" {
		return ctx, nil
	}
	tok := info.Token
	if tok == "" {
		var err error
		if tok, err = s.mintToken(info.Username); err != nil {
			return nil, err
		}
	}
	return metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, tok), nil
}

// mintedTokenLife bounds how long a minted token is reused: well inside
// the default token TTLs (300 s simple, 5 min JWT); a token the leader no
// longer knows (a shorter TTL, a new leader that never saw it used) is
// dropped and minted again (dropMinted).
const mintedTokenLife = time.Minute

// mintedTokens caches the tokens minted for certificate users.
type mintedTokens struct {
	mu     sync.Mutex
	tokens map[string]mintedToken
}

type mintedToken struct {
	token string
	at    time.Time
}

// mintToken returns a token for user, minted by proposing the same
// InternalAuthenticateRequest that Authenticate proposes after checking a
// password: the user was already authenticated here by its certificate,
// as etcd does for a request without a token on a client-cert-auth port.
func (s *Server) mintToken(user string) (string, error) {
	m := &s.leases.minted
	m.mu.Lock()
	if t, ok := m.tokens[user]; ok && time.Since(t.at) < mintedTokenLife {
		m.mu.Unlock()
		return t.token, nil
	}
	m.mu.Unlock()
	req := &pb.InternalAuthenticateRequest{Name: user}
	if s.auth.NeedsSimpleToken() {
		req.SimpleToken = auth.GenSimpleToken(s.ids.id())
	}
	// A context without auth info: the server's own proposal.
	resp, err := s.propose(context.Background(), &pb.InternalRaftRequest{Authenticate: req})
	if err != nil {
		return "", err
	}
	tok := resp.(*pb.AuthenticateResponse).Token
	m.mu.Lock()
	if m.tokens == nil {
		m.tokens = map[string]mintedToken{}
	}
	m.tokens[user] = mintedToken{token: tok, at: time.Now()}
	m.mu.Unlock()
	return tok, nil
}

// dropMinted forgets the token minted for ctx's caller after the leader
// refused it as invalid or old, and reports whether there was one (the caller
// then retries with a new one). A caller's own token is not dropped: its
// client re-authenticates, as with any invalid token.
func (s *Server) dropMinted(ctx context.Context, err error) bool {
	info, client := auth.InfoFromContext(ctx)
	if !client || info.Token != "" || info.Username == "" {
		return false
	}
	// A JWT carries the auth revision it was issued at: any auth change
	// makes the leader refuse it as old.
	if !errors.Is(err, rpctypes.ErrGRPCInvalidAuthToken) && !errors.Is(err, rpctypes.ErrGRPCAuthOldRevision) {
		return false
	}
	m := &s.leases.minted
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.tokens[info.Username]
	delete(m.tokens, info.Username)
	return ok
}

// applyAuth is the apply path's auth gate: a client request is checked
// again when auth changed since it was checked (recheckAtApply); auth
// requests are applied here; the rest goes on to applyOps.
func (s *Server) applyAuth(a *mvcc.Apply, r *pb.InternalRaftRequest) (any, error) {
	if err := s.recheckAtApply(r); err != nil {
		return nil, err
	}
	as, b := s.auth, a.Batch()
	hdr := &pb.ResponseHeader{Revision: a.Rev()}
	switch {
	case r.AuthEnable != nil:
		return &pb.AuthEnableResponse{Header: hdr}, as.Enable(b)
	case r.AuthDisable != nil:
		as.Disable(b)
		return &pb.AuthDisableResponse{Header: hdr}, nil
	case r.Authenticate != nil:
		tok, err := as.Authenticate(r.Authenticate.Name, r.Authenticate.SimpleToken)
		return &pb.AuthenticateResponse{Header: hdr, Token: tok}, err
	case r.AuthUserAdd != nil:
		return &pb.AuthUserAddResponse{Header: hdr}, as.UserAdd(b, r.AuthUserAdd)
	case r.AuthUserDelete != nil:
		return &pb.AuthUserDeleteResponse{Header: hdr}, as.UserDelete(b, r.AuthUserDelete.Name)
	case r.AuthUserChangePassword != nil:
		return &pb.AuthUserChangePasswordResponse{Header: hdr}, as.UserChangePassword(b, r.AuthUserChangePassword)
	case r.AuthUserGrantRole != nil:
		return &pb.AuthUserGrantRoleResponse{Header: hdr}, as.UserGrantRole(b, r.AuthUserGrantRole)
	case r.AuthUserRevokeRole != nil:
		return &pb.AuthUserRevokeRoleResponse{Header: hdr}, as.UserRevokeRole(b, r.AuthUserRevokeRole)
	case r.AuthRoleAdd != nil:
		return &pb.AuthRoleAddResponse{Header: hdr}, as.RoleAdd(b, r.AuthRoleAdd.Name)
	case r.AuthRoleDelete != nil:
		return &pb.AuthRoleDeleteResponse{Header: hdr}, as.RoleDelete(b, r.AuthRoleDelete.Role)
	case r.AuthRoleGrantPermission != nil:
		return &pb.AuthRoleGrantPermissionResponse{Header: hdr}, as.RoleGrantPermission(b, r.AuthRoleGrantPermission)
	case r.AuthRoleRevokePermission != nil:
		return &pb.AuthRoleRevokePermissionResponse{Header: hdr}, as.RoleRevokePermission(b, r.AuthRoleRevokePermission)
	}
	return s.applyOps(a, r) // alarm.go
}

// --- the Auth service ---

// proposeAuth proposes an auth request and fills the reply's header.
func proposeAuth[R interface{ GetHeader() *pb.ResponseHeader }](s *Server, ctx context.Context, r *pb.InternalRaftRequest) (R, error) {
	var zero R
	resp, err := s.propose(ctx, r)
	if err != nil {
		return zero, err
	}
	out := resp.(R)
	s.fillHeader(out.GetHeader())
	return out, nil
}

func (s *Server) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return proposeAuth[*pb.AuthEnableResponse](s, ctx, &pb.InternalRaftRequest{AuthEnable: r})
}

func (s *Server) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	return proposeAuth[*pb.AuthDisableResponse](s, ctx, &pb.InternalRaftRequest{AuthDisable: r})
}

// AuthStatus answers at a linearizable point, without raft.
func (s *Server) AuthStatus(ctx context.Context, _ *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	if err := s.linearizableBarrier(ctx); err != nil {
		return nil, err
	}
	return &pb.AuthStatusResponse{Header: s.LeaseHeader(), Enabled: s.auth.IsEnabled(),
		AuthRevision: s.auth.Revision()}, nil
}

// Authenticate checks the password (bcrypt, here, not at apply), then
// proposes the token assignment.
func (s *Server) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	if err := s.auth.CheckPassword(r.Name, r.Password); err != nil {
		return nil, err
	}
	req := &pb.InternalAuthenticateRequest{Name: r.Name}
	if s.auth.NeedsSimpleToken() {
		req.SimpleToken = auth.GenSimpleToken(s.ids.id())
	}
	return proposeAuth[*pb.AuthenticateResponse](s, ctx, &pb.InternalRaftRequest{Authenticate: req})
}

func (s *Server) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	if r.Name == "" {
		return nil, auth.ErrUserEmpty
	}
	req := &pb.AuthUserAddRequest{Name: r.Name, Options: r.Options}
	if r.Options == nil || !r.Options.NoPassword {
		h, err := s.auth.HashPassword(r.Password)
		if err != nil {
			return nil, err
		}
		req.HashedPassword = string(h)
	}
	return proposeAuth[*pb.AuthUserAddResponse](s, ctx, &pb.InternalRaftRequest{AuthUserAdd: req})
}

func (s *Server) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return proposeAuth[*pb.AuthUserDeleteResponse](s, ctx, &pb.InternalRaftRequest{AuthUserDelete: r})
}

func (s *Server) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	h, err := s.auth.HashPassword(r.Password)
	if err != nil {
		return nil, err
	}
	req := &pb.AuthUserChangePasswordRequest{Name: r.Name, HashedPassword: string(h)}
	return proposeAuth[*pb.AuthUserChangePasswordResponse](s, ctx, &pb.InternalRaftRequest{AuthUserChangePassword: req})
}

func (s *Server) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return proposeAuth[*pb.AuthUserGrantRoleResponse](s, ctx, &pb.InternalRaftRequest{AuthUserGrantRole: r})
}

func (s *Server) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return proposeAuth[*pb.AuthUserRevokeRoleResponse](s, ctx, &pb.InternalRaftRequest{AuthUserRevokeRole: r})
}

func (s *Server) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return proposeAuth[*pb.AuthRoleAddResponse](s, ctx, &pb.InternalRaftRequest{AuthRoleAdd: r})
}

func (s *Server) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return proposeAuth[*pb.AuthRoleDeleteResponse](s, ctx, &pb.InternalRaftRequest{AuthRoleDelete: r})
}

func (s *Server) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return proposeAuth[*pb.AuthRoleGrantPermissionResponse](s, ctx, &pb.InternalRaftRequest{AuthRoleGrantPermission: r})
}

func (s *Server) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return proposeAuth[*pb.AuthRoleRevokePermissionResponse](s, ctx, &pb.InternalRaftRequest{AuthRoleRevokePermission: r})
}

// authRead runs a read of the auth state at a linearizable point, for
// root, or for a user allowed by self (its own user or role).
func (s *Server) authRead(ctx context.Context, self func(user string) bool) error {
	if info, client := auth.InfoFromContext(ctx); client && s.auth.IsEnabled() {
		if info.Username == "" || !self(info.Username) {
			if err := s.auth.IsAdminPermitted(info); err != nil {
				return err
			}
		}
	}
	return s.linearizableBarrier(ctx)
}

func never(string) bool { return false }

// UserGet: root, or the user itself (etcd).
func (s *Server) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	if err := s.authRead(ctx, func(u string) bool { return u == r.Name }); err != nil {
		return nil, err
	}
	u, err := s.auth.UserGet(r.Name)
	if err != nil {
		return nil, err
	}
	return &pb.AuthUserGetResponse{Header: s.LeaseHeader(), Roles: u.Roles}, nil
}

func (s *Server) UserList(ctx context.Context, _ *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	if err := s.authRead(ctx, never); err != nil {
		return nil, err
	}
	return &pb.AuthUserListResponse{Header: s.LeaseHeader(), Users: s.auth.UserList()}, nil
}

// RoleGet: root, or a user holding the role (etcd).
func (s *Server) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	if err := s.authRead(ctx, func(user string) bool {
		u, err := s.auth.UserGet(user)
		return err == nil && slices.Contains(u.Roles, r.Role)
	}); err != nil {
		return nil, err
	}
	ro, err := s.auth.RoleGet(r.Role)
	if err != nil {
		return nil, err
	}
	return &pb.AuthRoleGetResponse{Header: s.LeaseHeader(), Perm: ro.KeyPermission}, nil
}

func (s *Server) RoleList(ctx context.Context, _ *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	if err := s.authRead(ctx, never); err != nil {
		return nil, err
	}
	return &pb.AuthRoleListResponse{Header: s.LeaseHeader(), Roles: s.auth.RoleList()}, nil
}

// AuthEnabled reports whether auth is enabled (front ends skip token
// handling while it is not).
func (s *Server) AuthEnabled() bool { return s.auth.IsEnabled() }
