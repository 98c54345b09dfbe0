package auth

import (
	"bytes"
	"context"
	"slices"
	"sync"

	"go.etcd.io/etcd/api/v3/authpb"
)

// AuthInfo names the user a request runs as. Revision is the auth
// revision the request was checked at; Token is the token it came with
// (the server forwards it when it relays a call to the leader).
type AuthInfo struct {
	Username string
	Revision uint64
	Token    string
}

type ctxKey struct{}

// WithInfo marks ctx as a client request running as info (an empty
// Username: a client that sent no token). Front ends call it for every
// client request; a context without it is the server's own (lease expiry,
// alarms), which is never checked.
func WithInfo(ctx context.Context, info *AuthInfo) context.Context {
	return context.WithValue(ctx, ctxKey{}, info)
}

// InfoFromContext returns the client's auth info, and false for the
// server's own requests.
func InfoFromContext(ctx context.Context) (*AuthInfo, bool) {
	info, ok := ctx.Value(ctxKey{}).(*AuthInfo)
	return info, ok
}

// interval is [begin, end) of keys; inf: no upper bound.
type interval struct {
	begin, end []byte
	inf        bool
}

// toInterval reads etcd's range conventions: an empty end is the single
// key, "\x00" is every key from begin on. An end at or below begin (an
// empty range) is checked as the single key.
func toInterval(key, end []byte) interval {
	switch {
	case len(end) == 1 && end[0] == 0:
		return interval{begin: key, inf: true}
	case len(end) == 0 || bytes.Compare(end, key) <= 0:
		return interval{begin: key, end: append(bytes.Clone(key), 0)}
	}
	return interval{begin: key, end: end}
}

// userPerms are a user's permitted ranges, merged and sorted.
type userPerms struct {
	read, write []interval
}

// permCache holds the merged permissions per user; any change resets it.
type permCache struct {
	mu    sync.Mutex
	users map[string]*userPerms
}

func (c *permCache) reset() {
	c.mu.Lock()
	c.users = map[string]*userPerms{}
	c.mu.Unlock()
}

// merge sorts and merges overlapping or touching intervals.
func merge(ivs []interval) []interval {
	slices.SortFunc(ivs, func(a, b interval) int { return bytes.Compare(a.begin, b.begin) })
	out := ivs[:0]
	for _, iv := range ivs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if last.inf || bytes.Compare(iv.begin, last.end) <= 0 {
				switch {
				case last.inf:
				case iv.inf:
					last.inf, last.end = true, nil
				case bytes.Compare(iv.end, last.end) > 0:
					last.end = iv.end
				}
				continue
			}
		}
		out = append(out, iv)
	}
	return out
}

// covered reports whether iv lies inside one of the merged intervals.
func covered(ivs []interval, iv interval) bool {
	// The last interval starting at or before iv.begin.
	i, found := slices.BinarySearchFunc(ivs, iv.begin, func(x interval, k []byte) int { return bytes.Compare(x.begin, k) })
	if !found {
		i--
	}
	if i < 0 {
		return false
	}
	c := ivs[i]
	if c.inf {
		return true
	}
	return !iv.inf && bytes.Compare(iv.end, c.end) <= 0
}

// REQUIRES: s.mu held (read or write).
func (s *Store) userPermsLocked(u *authpb.User) *userPerms {
	c := &s.perms
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.users[string(u.Name)]; p != nil {
		return p
	}
	p := &userPerms{}
	for _, rn := range u.Roles {
		r := s.roles[rn]
		if r == nil {
			continue
		}
		for _, perm := range r.KeyPermission {
			iv := toInterval(perm.Key, perm.RangeEnd)
			switch perm.PermType {
			case authpb.READ:
				p.read = append(p.read, iv)
			case authpb.WRITE:
				p.write = append(p.write, iv)
			case authpb.READWRITE:
				p.read = append(p.read, iv)
				p.write = append(p.write, iv)
			}
		}
	}
	p.read, p.write = merge(p.read), merge(p.write)
	c.users[string(u.Name)] = p
	return p
}

// isOpPermitted is etcd's check: everything is permitted while auth is
// disabled; otherwise the request needs a user, an auth revision that is
// not older than the store's, and the root role or a permission of type
// typ covering [key, end).
func (s *Store) isOpPermitted(info *AuthInfo, key, end []byte, typ authpb.Permission_Type) error {
	if !s.IsEnabled() {
		return nil
	}
	if info == nil || info.Username == "" {
		return ErrUserEmpty
	}
	if info.Revision != 0 && info.Revision < s.Revision() {
		return ErrAuthOldRevision
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[info.Username]
	if u == nil {
		return ErrPermissionDenied
	}
	if slices.Contains(u.Roles, RootRole) {
		return nil
	}
	p := s.userPermsLocked(u)
	ivs := p.read
	if typ == authpb.WRITE {
		ivs = p.write
	}
	if covered(ivs, toInterval(key, end)) {
		return nil
	}
	return ErrPermissionDenied
}

// IsRangePermitted checks read permission on [key, end) (etcd's range
// conventions).
func (s *Store) IsRangePermitted(info *AuthInfo, key, end []byte) error {
	return s.isOpPermitted(info, key, end, authpb.READ)
}

// IsPutPermitted checks write permission on key.
func (s *Store) IsPutPermitted(info *AuthInfo, key []byte) error {
	return s.isOpPermitted(info, key, nil, authpb.WRITE)
}

// IsDeleteRangePermitted checks write permission on [key, end).
func (s *Store) IsDeleteRangePermitted(info *AuthInfo, key, end []byte) error {
	return s.isOpPermitted(info, key, end, authpb.WRITE)
}

// IsAdminPermitted checks that the user holds the root role (always true
// while auth is disabled).
func (s *Store) IsAdminPermitted(info *AuthInfo) error {
	if !s.IsEnabled() {
		return nil
	}
	if info == nil || info.Username == "" {
		return ErrUserEmpty
	}
	s.mu.RLock()
	u := s.users[info.Username]
	s.mu.RUnlock()
	if u == nil {
		return ErrUserNotFound
	}
	if !slices.Contains(u.Roles, RootRole) {
		return ErrPermissionDenied
	}
	return nil
}

// IsAuthenticated checks that a request names an existing user (etcd lets
// any authenticated user grant a lease).
func (s *Store) IsAuthenticated(info *AuthInfo) error {
	if !s.IsEnabled() {
		return nil
	}
	if info == nil || info.Username == "" {
		return ErrUserEmpty
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.users[info.Username] == nil {
		return ErrUserNotFound
	}
	return nil
}

// InfoFromToken resolves a token to the user it names, at the current
// auth revision (a JWT carries its own). ErrInvalidAuthToken when the
// token is unknown, expired or does not verify.
func (s *Store) InfoFromToken(token string) (*AuthInfo, error) {
	info, ok := s.cfg.Tokens.Info(token, s.Revision())
	if !ok {
		return nil, ErrInvalidAuthToken
	}
	info.Token = token
	return info, nil
}

// NeedsSimpleToken reports whether the proposer must choose the token
// (simple tokens) before proposing Authenticate.
func (s *Store) NeedsSimpleToken() bool { return s.cfg.Tokens.NeedsSimpleToken() }
