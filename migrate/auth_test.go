package migrate

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/authpb"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/auth"
)

func userValue(t *testing.T, name, password string, roles ...string) []byte {
	t.Helper()
	u := &authpb.User{Name: []byte(name), Roles: roles}
	if password != "" {
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		require.NoError(t, err)
		u.Password = h
	}
	b, err := proto.Marshal(u)
	require.NoError(t, err)
	return b
}

func roleValue(t *testing.T, name string, perms ...*authpb.Permission) []byte {
	t.Helper()
	b, err := proto.Marshal(&authpb.Role{Name: []byte(name), KeyPermission: perms})
	require.NoError(t, err)
	return b
}

// authRecs is etcd's auth state after
//
//	etcdctl role add app; role grant-permission app readwrite /app/ --prefix
//	etcdctl role grant-permission app read /shared
//	etcdctl role add root
//	etcdctl user add root:rootpw; user grant-role root root
//	etcdctl user add alice:alicepw; user grant-role alice app
//	etcdctl user add bob --no-password
//	etcdctl auth enable
func authRecs(t *testing.T) []etcdRec {
	bob, err := proto.Marshal(&authpb.User{Name: []byte("bob"), Options: &authpb.UserAddOptions{NoPassword: true}})
	require.NoError(t, err)
	return []etcdRec{
		{"auth", []byte("authEnabled"), []byte{1}},
		{"auth", []byte("authRevision"), binary.BigEndian.AppendUint64(nil, 11)},
		{"authRoles", []byte("app"), roleValue(t, "app",
			&authpb.Permission{PermType: authpb.Permission_READWRITE, Key: []byte("/app/"), RangeEnd: []byte("/app0")},
			&authpb.Permission{PermType: authpb.Permission_READ, Key: []byte("/shared")})},
		{"authRoles", []byte("root"), roleValue(t, "root")},
		{"authUsers", []byte("root"), userValue(t, "root", "rootpw", "root")},
		{"authUsers", []byte("alice"), userValue(t, "alice", "alicepw", "app")},
		{"authUsers", []byte("bob"), bob},
	}
}

// TestImport_Auth: users, roles and the enabled flag come over through
// auth.Store, with the passwords that logged in on etcd.
func TestImport_Auth(t *testing.T) {
	for _, ec := range testEngines {
		t.Run(ec.name, func(t *testing.T) {
			t.Logf("Step 1: open a file with etcd's auth state...")
			snap, err := OpenEtcdSnapshot(writeEtcdFile(t, etcdBuckets, authRecs(t)))
			require.NoError(t, err)
			defer snap.Close()
			info := snap.Info()
			require.Equal(t, []any{true, 3, 2}, []any{info.AuthEnabled, info.AuthUsers, info.AuthRoles})

			t.Logf("Step 2: import into an empty %s engine...", ec.name)
			e := ec.open(t)
			defer e.Close()
			st, err := snap.Import(e)
			require.NoError(t, err)
			require.Equal(t, []any{true, 3, 2}, []any{st.AuthEnabled, st.AuthUsers, st.AuthRoles})

			t.Logf("Step 3: an auth store loaded from the engine has etcd's users, roles and passwords...")
			a := auth.New(auth.Config{})
			require.NoError(t, a.Load(e))
			require.True(t, a.IsEnabled())
			require.Equal(t, []string{"alice", "bob", "root"}, a.UserList())
			require.Equal(t, []string{"app", "root"}, a.RoleList())
			for name, roles := range map[string][]string{"root": {"root"}, "alice": {"app"}, "bob": nil} {
				u, err := a.UserGet(name)
				require.NoError(t, err)
				require.Equal(t, roles, u.Roles, name)
			}
			r, err := a.RoleGet("app")
			require.NoError(t, err)
			require.Len(t, r.KeyPermission, 2)
			require.Equal(t, []any{authpb.Permission_READWRITE, "/app/", "/app0"},
				[]any{r.KeyPermission[0].PermType, string(r.KeyPermission[0].Key), string(r.KeyPermission[0].RangeEnd)})
			require.Equal(t, []any{authpb.Permission_READ, "/shared", ""},
				[]any{r.KeyPermission[1].PermType, string(r.KeyPermission[1].Key), string(r.KeyPermission[1].RangeEnd)})
			require.NoError(t, a.CheckPassword("alice", "alicepw"))
			require.NoError(t, a.CheckPassword("root", "rootpw"))
			require.ErrorIs(t, a.CheckPassword("alice", "rootpw"), auth.ErrAuthFailed)
			require.ErrorIs(t, a.CheckPassword("bob", ""), auth.ErrAuthFailed, "a no-password user cannot log in with a password")

			t.Logf("Step 4: alice's permissions are the app role's...")
			aliceInfo := &auth.AuthInfo{Username: "alice", Revision: a.Revision()}
			require.NoError(t, a.IsPutPermitted(aliceInfo, []byte("/app/x")))
			require.NoError(t, a.IsRangePermitted(aliceInfo, []byte("/shared"), nil))
			require.ErrorIs(t, a.IsPutPermitted(aliceInfo, []byte("/shared")), auth.ErrPermissionDenied)
			require.ErrorIs(t, a.IsRangePermitted(aliceInfo, []byte("/other"), nil), auth.ErrPermissionDenied)
			require.NoError(t, a.IsAdminPermitted(&auth.AuthInfo{Username: "root", Revision: a.Revision()}))
		})
	}
}

// TestImport_AuthDisabled: users and roles of a file whose auth is off
// come over, and auth stays off.
func TestImport_AuthDisabled(t *testing.T) {
	recs := authRecs(t)
	recs[0].v = []byte{0}
	snap, err := OpenEtcdSnapshot(writeEtcdFile(t, etcdBuckets, recs))
	require.NoError(t, err)
	defer snap.Close()
	e := testEngines[0].open(t)
	defer e.Close()
	_, err = snap.Import(e)
	require.NoError(t, err)
	a := auth.New(auth.Config{})
	require.NoError(t, a.Load(e))
	require.False(t, a.IsEnabled())
	require.Equal(t, []string{"alice", "bob", "root"}, a.UserList())
}

// TestOpenEtcdSnapshot_BadAuth: auth records that would not import are
// refused at open, naming the record.
func TestOpenEtcdSnapshot_BadAuth(t *testing.T) {
	tests := []struct {
		name    string
		recs    []etcdRec
		wantErr string
	}{
		{"enabled flag of 2 bytes", []etcdRec{{"auth", []byte("authEnabled"), []byte{1, 0}}}, `auth "authEnabled" is 0100`},
		{"short revision", []etcdRec{{"auth", []byte("authRevision"), []byte{1}}}, `auth "authRevision" has 1 bytes`},
		{"user not a protobuf", []etcdRec{{"authUsers", []byte("root"), []byte("x")}}, `user "root": not an authpb.User`},
		{"user under another name", []etcdRec{{"authUsers", []byte("root"), userValue(t, "alice", "pw")}}, `user record "root" holds user "alice"`},
		{"role not a protobuf", []etcdRec{{"authRoles", []byte("app"), []byte{0xff}}}, `role "app": not an authpb.Role`},
		{"role under another name", []etcdRec{{"authRoles", []byte("app"), roleValue(t, "ops")}}, `role record "app" holds role "ops"`},
		{"unknown role granted", []etcdRec{{"authUsers", []byte("alice"), userValue(t, "alice", "pw", "ghost")}},
			`user "alice" has role "ghost", which the file does not hold`},
		{"enabled without root", []etcdRec{{"auth", []byte("authEnabled"), []byte{1}},
			{"authUsers", []byte("root"), userValue(t, "root", "pw")}}, "auth is enabled but there is no root user with the root role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := OpenEtcdSnapshot(writeEtcdFile(t, etcdBuckets, tt.recs))
			if s != nil {
				s.Close()
			}
			require.ErrorIs(t, err, ErrBadSnapshot)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}

	t.Run("root without a root role record is fine, as in etcd", func(t *testing.T) {
		s, err := OpenEtcdSnapshot(writeEtcdFile(t, etcdBuckets, []etcdRec{{"auth", []byte("authEnabled"), []byte{1}},
			{"authUsers", []byte("root"), userValue(t, "root", "pw", "root")}}))
		require.NoError(t, err)
		defer s.Close()
		e := testEngines[0].open(t)
		defer e.Close()
		_, err = s.Import(e)
		require.NoError(t, err)
		a := auth.New(auth.Config{})
		require.NoError(t, a.Load(e))
		require.True(t, a.IsEnabled())
		require.Equal(t, []string{"root"}, a.UserList())
		require.Empty(t, a.RoleList())
	})
}
