package migrate

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/auth"
	"github.com/metastore/metastore/engine"
)

// etcd's auth state (server/storage/schema/auth*.go):
//
//	bucket "auth":      "authEnabled" -> 1 byte (0 or 1)
//	                    "authRevision" -> bigEndian uint64
//	bucket "authUsers": name -> authpb.User{Name, Password (bcrypt hash), Roles (sorted), Options}
//	bucket "authRoles": name -> authpb.Role{Name, KeyPermission (sorted by key, range end)}
//
// The records are replayed through auth.Store's own apply methods into the
// engine's batch, so the result is exactly what MetaStore writes when a
// client adds the same users and roles: the bcrypt hashes are kept as they
// are (a user logs in with the same password), then the enabled flag. Only
// the auth revision is not kept: it restarts at 1 and counts the replayed
// changes, which nothing outside the member sees (tokens of the old
// cluster are not valid on the new one anyway).

// etcdAuth is the auth state of an etcd file.
type etcdAuth struct {
	enabled  bool
	revision uint64
	users    []*authpb.User // in name order
	roles    []*authpb.Role // in name order
}

var authRevisionKey = []byte("authRevision")

// readAuth decodes the auth buckets of tx (absent buckets: no auth state)
// and checks that the records hang together, so that a file that opens
// imports: every user's roles exist (root may be granted without a root
// role record, as in etcd), and auth is only enabled with a root user that
// holds the root role.
func readAuth(tx *bolt.Tx) (etcdAuth, error) {
	var a etcdAuth
	if b := tx.Bucket(bucketAuth); b != nil {
		if v := b.Get(authEnabledKey); v != nil {
			if len(v) != 1 || v[0] > 1 {
				return a, fmt.Errorf("%w: auth %q is %x, want one byte 0 or 1", ErrBadSnapshot, authEnabledKey, v)
			}
			a.enabled = v[0] == 1
		}
		if v := b.Get(authRevisionKey); v != nil {
			if len(v) != 8 {
				return a, fmt.Errorf("%w: auth %q has %d bytes, want 8", ErrBadSnapshot, authRevisionKey, len(v))
			}
			a.revision = binary.BigEndian.Uint64(v)
		}
	}
	err := forEachRecord(tx.Bucket(bucketAuthUsers), func(k, v []byte) error {
		u := &authpb.User{}
		if err := proto.Unmarshal(v, u); err != nil {
			return fmt.Errorf("%w: user %q: not an authpb.User: %v", ErrBadSnapshot, k, err)
		}
		if len(k) == 0 || !bytes.Equal(u.Name, k) {
			return fmt.Errorf("%w: user record %q holds user %q", ErrBadSnapshot, k, u.Name)
		}
		a.users = append(a.users, u)
		return nil
	})
	if err != nil {
		return a, err
	}
	err = forEachRecord(tx.Bucket(bucketAuthRoles), func(k, v []byte) error {
		r := &authpb.Role{}
		if err := proto.Unmarshal(v, r); err != nil {
			return fmt.Errorf("%w: role %q: not an authpb.Role: %v", ErrBadSnapshot, k, err)
		}
		if len(k) == 0 || !bytes.Equal(r.Name, k) {
			return fmt.Errorf("%w: role record %q holds role %q", ErrBadSnapshot, k, r.Name)
		}
		a.roles = append(a.roles, r)
		return nil
	})
	if err != nil {
		return a, err
	}
	roles := map[string]bool{auth.RootRole: true}
	for _, r := range a.roles {
		roles[string(r.Name)] = true
	}
	rootOK := false
	for _, u := range a.users {
		for _, r := range u.Roles {
			if !roles[r] {
				return a, fmt.Errorf("%w: user %q has role %q, which the file does not hold", ErrBadSnapshot, u.Name, r)
			}
		}
		if string(u.Name) == auth.RootUser && slices.Contains(u.Roles, auth.RootRole) {
			rootOK = true
		}
	}
	if a.enabled && !rootOK {
		return a, fmt.Errorf("%w: auth is enabled but there is no root user with the root role", ErrBadSnapshot)
	}
	return a, nil
}

func forEachRecord(b *bolt.Bucket, fn func(k, v []byte) error) error {
	if b == nil {
		return nil
	}
	return b.ForEach(fn)
}

// importAuth replays a into eng's Meta keyspace through an auth.Store, in
// one batch: roles with their permissions, users with their password
// hashes and roles, then the enabled flag.
func importAuth(eng engine.Engine, a etcdAuth) error {
	if !a.enabled && len(a.users) == 0 && len(a.roles) == 0 {
		return nil
	}
	st := auth.New(auth.Config{})
	if err := st.Load(eng); err != nil {
		return err
	}
	b := eng.NewBatch()
	defer b.Close()
	fail := func(what string, name []byte, err error) error {
		return fmt.Errorf("%w: importing %s %q: %w", ErrBadSnapshot, what, name, err)
	}
	for _, r := range a.roles {
		if err := st.RoleAdd(b, string(r.Name)); err != nil {
			return fail("role", r.Name, err)
		}
		for _, p := range r.KeyPermission {
			req := &pb.AuthRoleGrantPermissionRequest{Name: string(r.Name), Perm: p}
			if err := st.RoleGrantPermission(b, req); err != nil {
				return fail("role", r.Name, err)
			}
		}
	}
	for _, u := range a.users {
		req := &pb.AuthUserAddRequest{Name: string(u.Name), HashedPassword: string(u.Password)}
		// NB: a user without a password hash cannot log in with one, in
		// etcd as here; UserAdd would hash the empty password instead, so
		// such a user comes over as etcd's --no-password user.
		if len(u.Password) == 0 || (u.Options != nil && u.Options.NoPassword) {
			req.Options = &authpb.UserAddOptions{NoPassword: true}
		}
		if err := st.UserAdd(b, req); err != nil {
			return fail("user", u.Name, err)
		}
		for _, r := range u.Roles {
			if err := st.UserGrantRole(b, &pb.AuthUserGrantRoleRequest{User: string(u.Name), Role: r}); err != nil {
				return fail("user", u.Name, err)
			}
		}
	}
	if a.enabled {
		if err := st.Enable(b); err != nil {
			return fmt.Errorf("%w: enabling auth: %w", ErrBadSnapshot, err)
		}
	}
	return b.Commit(false)
}
