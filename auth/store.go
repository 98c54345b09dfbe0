package auth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/engine"
)

// Errors, one per etcd API error (etcderr maps them).
var (
	ErrRootUserNotExist     = errors.New("auth: root user does not exist")
	ErrRootRoleNotExist     = errors.New("auth: root user does not have root role")
	ErrUserAlreadyExist     = errors.New("auth: user name already exists")
	ErrUserEmpty            = errors.New("auth: user name is empty")
	ErrUserNotFound         = errors.New("auth: user name not found")
	ErrRoleAlreadyExist     = errors.New("auth: role name already exists")
	ErrRoleNotFound         = errors.New("auth: role name not found")
	ErrRoleEmpty            = errors.New("auth: role name is empty")
	ErrAuthFailed           = errors.New("auth: authentication failed, invalid user ID or password")
	ErrPermissionDenied     = errors.New("auth: permission denied")
	ErrRoleNotGranted       = errors.New("auth: role is not granted to the user")
	ErrPermissionNotGranted = errors.New("auth: permission is not granted to the role")
	ErrPermissionNotGiven   = errors.New("auth: permission not given")
	ErrAuthNotEnabled       = errors.New("auth: authentication is not enabled")
	ErrAuthOldRevision      = errors.New("auth: revision of auth store is old")
	ErrInvalidAuthToken     = errors.New("auth: invalid auth token")
	ErrInvalidAuthMgmt      = errors.New("auth: invalid auth management")
	ErrInvalidAuthOpts      = errors.New("auth: invalid auth options")
	ErrCorruptRecord        = errors.New("auth: corrupt auth record")
	// ErrNoPasswordUser is etcd's answer to Authenticate for a user added
	// with --no-password (such a user logs in only with a client
	// certificate). It is an ErrAuthFailed too (errors.Is).
	ErrNoPasswordUser error = &authFailedError{"auth: authentication failed, password was given for no password user"}
)

// authFailedError is a refused login with its own message.
type authFailedError struct{ msg string }

func (e *authFailedError) Error() string { return e.msg }
func (e *authFailedError) Unwrap() error { return ErrAuthFailed }

// rootPerm is what RoleGet answers for the root role, as etcd (auth/store.go
// rootPerm): READWRITE on every key, whatever the stored record holds (root
// may do anything; the record's own permissions never matter).
func rootPerm() *authpb.Permission {
	return &authpb.Permission{PermType: authpb.READWRITE, Key: []byte{}, RangeEnd: []byte{0}}
}

// RootUser and RootRole are etcd's names: the root role may do anything,
// and auth can only be enabled once the root user holds it.
const (
	RootUser = "root"
	RootRole = "root"
)

// DefaultBcryptCost is etcd's --bcrypt-cost default.
const DefaultBcryptCost = bcrypt.DefaultCost

var (
	keyEnabled  = []byte("auth/enabled")
	keyRevision = []byte("auth/revision")
	userPrefix  = []byte("auth/user/")
	rolePrefix  = []byte("auth/role/")
)

// Config configures a Store.
type Config struct {
	// BcryptCost is the cost of new password hashes (0: DefaultBcryptCost).
	BcryptCost int
	// Tokens issues and resolves tokens (nil: simple tokens with the
	// default TTL).
	Tokens TokenProvider
	Logger *zap.Logger
}

// Store holds the auth state of one member.
type Store struct {
	cfg Config
	lg  *zap.Logger

	// enabled and rev are read on every request; written under mu.
	enabled atomic.Bool
	rev     atomic.Uint64

	// mu guards users, roles and the permission cache. Written only by the
	// apply goroutine (and Load); lock order: mu before the token
	// provider's own lock.
	mu    sync.RWMutex
	users map[string]*authpb.User
	roles map[string]*authpb.Role
	perms permCache // perm.go
}

// New returns an empty store (disabled, revision 1). Call Load to read the
// stored state.
func New(cfg Config) *Store {
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = DefaultBcryptCost
	}
	if cfg.Tokens == nil {
		cfg.Tokens = NewSimpleTokens(DefaultTokenTTL)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	s := &Store{cfg: cfg, lg: cfg.Logger, users: map[string]*authpb.User{}, roles: map[string]*authpb.Role{}}
	s.perms.reset()
	s.rev.Store(1)
	return s
}

// Load replaces the state with the records stored in r.
func (s *Store) Load(r engine.Reader) error {
	enabled, rev := false, uint64(1)
	if b, err := r.Get(engine.Meta, keyEnabled); err == nil {
		enabled = len(b) == 1 && b[0] == 1
	} else if !errors.Is(err, engine.ErrNotFound) {
		return err
	}
	if b, err := r.Get(engine.Meta, keyRevision); err == nil {
		if len(b) != 8 {
			return fmt.Errorf("%w: revision of %d bytes", ErrCorruptRecord, len(b))
		}
		rev = binary.BigEndian.Uint64(b)
	} else if !errors.Is(err, engine.ErrNotFound) {
		return err
	}
	users := map[string]*authpb.User{}
	if err := loadRecords(r, userPrefix, func(name string, v []byte) error {
		u := &authpb.User{}
		if err := proto.Unmarshal(v, u); err != nil {
			return err
		}
		users[name] = u
		return nil
	}); err != nil {
		return err
	}
	roles := map[string]*authpb.Role{}
	if err := loadRecords(r, rolePrefix, func(name string, v []byte) error {
		ro := &authpb.Role{}
		if err := proto.Unmarshal(v, ro); err != nil {
			return err
		}
		roles[name] = ro
		return nil
	}); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users, s.roles = users, roles
	s.perms.reset()
	s.rev.Store(rev)
	s.enabled.Store(enabled)
	if enabled {
		s.cfg.Tokens.Enable()
	} else {
		s.cfg.Tokens.Disable()
	}
	return nil
}

func loadRecords(r engine.Reader, prefix []byte, f func(name string, v []byte) error) error {
	upper := append([]byte(nil), prefix...)
	upper[len(upper)-1]++
	it := r.NewIterator(engine.Meta, engine.IterOptions{Lower: prefix, Upper: upper})
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		name := string(it.Key()[len(prefix):])
		if err := f(name, it.Value()); err != nil {
			return fmt.Errorf("%w: %q: %v", ErrCorruptRecord, it.Key(), err)
		}
	}
	return it.Err()
}

// IsEnabled reports whether auth is enabled.
func (s *Store) IsEnabled() bool { return s.enabled.Load() }

// Revision is the auth revision: it grows with every change.
func (s *Store) Revision() uint64 { return s.rev.Load() }

// HashPassword hashes a password with the configured bcrypt cost (the
// proposer's step before UserAdd and UserChangePassword).
func (s *Store) HashPassword(password string) ([]byte, error) {
	return bcrypt.GenerateFromPassword([]byte(password), s.cfg.BcryptCost)
}

// CheckPassword verifies a user's password (the front end's step before
// Authenticate is proposed). Unknown users and wrong passwords are
// ErrAuthFailed; a user added without a password is ErrNoPasswordUser,
// whatever the password given (etcd's CheckPassword).
func (s *Store) CheckPassword(name, password string) error {
	if !s.IsEnabled() {
		return ErrAuthNotEnabled
	}
	s.mu.RLock()
	u := s.users[name]
	s.mu.RUnlock()
	if u != nil && u.Options != nil && u.Options.NoPassword {
		return ErrNoPasswordUser
	}
	if u == nil || len(u.Password) == 0 {
		return ErrAuthFailed
	}
	if bcrypt.CompareHashAndPassword(u.Password, []byte(password)) != nil {
		return ErrAuthFailed
	}
	return nil
}

// --- apply side: called by the apply goroutine only ---

// REQUIRES: s.mu held for writing.
func (s *Store) bumpLocked(b engine.Batch) {
	rev := s.rev.Add(1)
	b.Put(engine.Meta, keyRevision, binary.BigEndian.AppendUint64(nil, rev))
	s.perms.reset()
}

// REQUIRES: s.mu held for writing.
func (s *Store) putUserLocked(b engine.Batch, u *authpb.User) {
	v, err := proto.Marshal(u)
	if err != nil {
		panic("auth: marshalling a user: " + err.Error())
	}
	s.users[string(u.Name)] = u
	b.Put(engine.Meta, append(append([]byte(nil), userPrefix...), u.Name...), v)
}

// REQUIRES: s.mu held for writing.
func (s *Store) putRoleLocked(b engine.Batch, r *authpb.Role) {
	v, err := proto.Marshal(r)
	if err != nil {
		panic("auth: marshalling a role: " + err.Error())
	}
	s.roles[string(r.Name)] = r
	b.Put(engine.Meta, append(append([]byte(nil), rolePrefix...), r.Name...), v)
}

// Enable enables auth: the root user must exist and hold the root role.
// Enabling an enabled store changes nothing.
func (s *Store) Enable(b engine.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled.Load() {
		return nil
	}
	u := s.users[RootUser]
	if u == nil {
		return ErrRootUserNotExist
	}
	if !slices.Contains(u.Roles, RootRole) {
		return ErrRootRoleNotExist
	}
	b.Put(engine.Meta, keyEnabled, []byte{1})
	s.bumpLocked(b)
	s.enabled.Store(true)
	s.cfg.Tokens.Enable()
	s.lg.Info("authentication enabled", zap.Uint64("revision", s.rev.Load()))
	return nil
}

// Disable disables auth and drops every token.
func (s *Store) Disable(b engine.Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.enabled.Load() {
		return
	}
	b.Put(engine.Meta, keyEnabled, []byte{0})
	s.bumpLocked(b)
	s.enabled.Store(false)
	s.cfg.Tokens.Disable()
	s.lg.Info("authentication disabled", zap.Uint64("revision", s.rev.Load()))
}

// Authenticate assigns a token to a user whose password the proposer
// checked. simpleToken is the proposer's token for simple tokens.
func (s *Store) Authenticate(name, simpleToken string) (string, error) {
	if !s.IsEnabled() {
		return "", ErrAuthNotEnabled
	}
	s.mu.RLock()
	u := s.users[name]
	s.mu.RUnlock()
	if u == nil {
		return "", ErrAuthFailed
	}
	return s.cfg.Tokens.Assign(name, simpleToken, s.Revision())
}

// UserAdd adds a user. The proposer hashed the password (HashedPassword);
// a request with only a clear password is hashed here.
func (s *Store) UserAdd(b engine.Batch, r *pb.AuthUserAddRequest) error {
	if r.Name == "" {
		return ErrUserEmpty
	}
	noPassword := r.Options != nil && r.Options.NoPassword
	hash := []byte(r.HashedPassword)
	if !noPassword && len(hash) == 0 {
		h, err := s.HashPassword(r.Password)
		if err != nil {
			return err
		}
		hash = h
	}
	if noPassword {
		hash = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[r.Name] != nil {
		return ErrUserAlreadyExist
	}
	u := &authpb.User{Name: []byte(r.Name), Password: hash}
	if r.Options != nil {
		u.Options = &authpb.UserAddOptions{NoPassword: r.Options.NoPassword}
	}
	s.putUserLocked(b, u)
	s.bumpLocked(b)
	return nil
}

// UserDelete deletes a user and drops its tokens. The root user cannot be
// deleted while auth is enabled.
func (s *Store) UserDelete(b engine.Batch, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled.Load() && name == RootUser {
		return ErrInvalidAuthMgmt
	}
	if s.users[name] == nil {
		return ErrUserNotFound
	}
	delete(s.users, name)
	b.Delete(engine.Meta, append(append([]byte(nil), userPrefix...), name...))
	s.bumpLocked(b)
	s.cfg.Tokens.Invalidate(name)
	return nil
}

// UserChangePassword sets a user's password hash and drops its tokens.
func (s *Store) UserChangePassword(b engine.Batch, r *pb.AuthUserChangePasswordRequest) error {
	hash := []byte(r.HashedPassword)
	if len(hash) == 0 {
		h, err := s.HashPassword(r.Password)
		if err != nil {
			return err
		}
		hash = h
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.users[r.Name]
	if old == nil {
		return ErrUserNotFound
	}
	u := proto.Clone(old).(*authpb.User)
	u.Password = hash
	s.putUserLocked(b, u)
	s.bumpLocked(b)
	s.cfg.Tokens.Invalidate(r.Name)
	return nil
}

// UserGrantRole grants a role (which must exist, unless it is root) to a
// user. Granting a role the user holds changes nothing, as in etcd.
func (s *Store) UserGrantRole(b engine.Batch, r *pb.AuthUserGrantRoleRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.users[r.User]
	if old == nil {
		return ErrUserNotFound
	}
	if r.Role != RootRole && s.roles[r.Role] == nil {
		return ErrRoleNotFound
	}
	i, found := slices.BinarySearch(old.Roles, r.Role)
	if found {
		return nil
	}
	u := proto.Clone(old).(*authpb.User)
	u.Roles = slices.Insert(u.Roles, i, r.Role)
	s.putUserLocked(b, u)
	s.bumpLocked(b)
	return nil
}

// UserRevokeRole revokes a role from a user. Root's root role cannot be
// revoked while auth is enabled.
func (s *Store) UserRevokeRole(b engine.Batch, r *pb.AuthUserRevokeRoleRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled.Load() && r.Name == RootUser && r.Role == RootRole {
		return ErrInvalidAuthMgmt
	}
	old := s.users[r.Name]
	if old == nil {
		return ErrUserNotFound
	}
	i := slices.Index(old.Roles, r.Role)
	if i < 0 {
		return ErrRoleNotGranted
	}
	u := proto.Clone(old).(*authpb.User)
	u.Roles = slices.Delete(u.Roles, i, i+1)
	s.putUserLocked(b, u)
	s.bumpLocked(b)
	return nil
}

// RoleAdd adds a role without permissions.
func (s *Store) RoleAdd(b engine.Batch, name string) error {
	if name == "" {
		return ErrRoleEmpty
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.roles[name] != nil {
		return ErrRoleAlreadyExist
	}
	s.putRoleLocked(b, &authpb.Role{Name: []byte(name)})
	s.bumpLocked(b)
	return nil
}

// RoleDelete deletes a role and revokes it from every user. The root role
// cannot be deleted while auth is enabled.
func (s *Store) RoleDelete(b engine.Batch, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled.Load() && name == RootRole {
		return ErrInvalidAuthMgmt
	}
	if s.roles[name] == nil {
		return ErrRoleNotFound
	}
	delete(s.roles, name)
	b.Delete(engine.Meta, append(append([]byte(nil), rolePrefix...), name...))
	for _, old := range s.users {
		if i := slices.Index(old.Roles, name); i >= 0 {
			u := proto.Clone(old).(*authpb.User)
			u.Roles = slices.Delete(u.Roles, i, i+1)
			s.putUserLocked(b, u)
		}
	}
	s.bumpLocked(b)
	return nil
}

// RoleGrantPermission adds a permission to a role, or changes the type of
// the role's permission on the same range.
func (s *Store) RoleGrantPermission(b engine.Batch, r *pb.AuthRoleGrantPermissionRequest) error {
	if r.Perm == nil {
		return ErrPermissionNotGiven
	}
	if !validPermRange(r.Perm.Key, r.Perm.RangeEnd) {
		return ErrInvalidAuthMgmt
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.roles[r.Name]
	if old == nil {
		return ErrRoleNotFound
	}
	ro := proto.Clone(old).(*authpb.Role)
	p := &authpb.Permission{PermType: r.Perm.PermType, Key: bytes.Clone(r.Perm.Key), RangeEnd: bytes.Clone(r.Perm.RangeEnd)}
	// As etcd's auth store, so that the same grants leave the same
	// permissions: they are kept sorted by key alone, and a grant changes
	// the type of the first permission on its key only when that one has
	// the same range end; otherwise it adds a permission, even when a later
	// one on the key has that range end (then both stay, and a revoke of
	// the range removes both).
	i, _ := slices.BinarySearchFunc(ro.KeyPermission, p.Key, func(e *authpb.Permission, k []byte) int { return bytes.Compare(e.Key, k) })
	if i < len(ro.KeyPermission) && bytes.Equal(ro.KeyPermission[i].Key, p.Key) && bytes.Equal(ro.KeyPermission[i].RangeEnd, p.RangeEnd) {
		ro.KeyPermission[i].PermType = p.PermType
	} else {
		ro.KeyPermission = append(ro.KeyPermission, p)
		sort.Sort(permsByKey(ro.KeyPermission))
	}
	s.putRoleLocked(b, ro)
	s.bumpLocked(b)
	return nil
}

// validPermRange is etcd's rule for a granted range: a key is needed (etcdctl
// sends "\x00" for "every key"); then a single key, [key, end) with key
// before end, or everything from key on (end "\x00").
func validPermRange(key, end []byte) bool {
	switch {
	case len(key) == 0:
		return false
	case len(end) == 0, bytes.Compare(key, end) < 0:
		return true
	}
	return len(end) == 1 && end[0] == 0
}

// RoleRevokePermission removes a role's permissions on exactly [key, end)
// (there can be several: RoleGrantPermission).
func (s *Store) RoleRevokePermission(b engine.Batch, r *pb.AuthRoleRevokePermissionRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.roles[r.Role]
	if old == nil {
		return ErrRoleNotFound
	}
	ro := proto.Clone(old).(*authpb.Role)
	ro.KeyPermission = slices.DeleteFunc(ro.KeyPermission, func(p *authpb.Permission) bool {
		return bytes.Equal(p.Key, r.Key) && bytes.Equal(p.RangeEnd, r.RangeEnd)
	})
	if len(ro.KeyPermission) == len(old.KeyPermission) {
		return ErrPermissionNotGranted
	}
	s.putRoleLocked(b, ro)
	s.bumpLocked(b)
	return nil
}

// permsByKey orders a role's permissions by key alone, with sort.Sort, as
// etcd does: permissions on the same key keep the order sort.Sort leaves.
type permsByKey []*authpb.Permission

func (p permsByKey) Len() int           { return len(p) }
func (p permsByKey) Less(i, j int) bool { return bytes.Compare(p[i].Key, p[j].Key) < 0 }
func (p permsByKey) Swap(i, j int)      { p[i], p[j] = p[j], p[i] }

// --- reads ---

// UserGet returns a copy of a user (roles sorted; no password).
func (s *Store) UserGet(name string) (*authpb.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[name]
	if u == nil {
		return nil, ErrUserNotFound
	}
	return &authpb.User{Name: u.Name, Roles: slices.Clone(u.Roles)}, nil
}

// UserList returns the user names, sorted.
func (s *Store) UserList() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.users))
	for n := range s.users {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// RoleGet returns a copy of a role's permissions. The root role, when it
// exists, answers etcd's rootPerm alone instead of its stored permissions.
func (s *Store) RoleGet(name string) (*authpb.Role, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.roles[name]
	if r == nil {
		return nil, ErrRoleNotFound
	}
	if name == RootRole {
		return &authpb.Role{Name: []byte(RootRole), KeyPermission: []*authpb.Permission{rootPerm()}}, nil
	}
	return proto.Clone(r).(*authpb.Role), nil
}

// RoleList returns the role names, sorted.
func (s *Store) RoleList() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.roles))
	for n := range s.roles {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
