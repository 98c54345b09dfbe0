package auth

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/engine/memory"
)

// apply runs f against s with a fresh batch and commits it into eng.
func apply(t *testing.T, eng engine.Engine, f func(b engine.Batch) error) error {
	t.Helper()
	b := eng.NewBatch()
	defer b.Close()
	err := f(b)
	if cerr := b.Commit(false); cerr != nil {
		t.Fatal(cerr)
	}
	return err
}

func newTestStore(t *testing.T) (*Store, engine.Engine) {
	eng, err := memory.Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return New(Config{BcryptCost: 4}), eng
}

func TestStore_EnableNeedsRoot(t *testing.T) {
	s, eng := newTestStore(t)
	if err := apply(t, eng, s.Enable); !errors.Is(err, ErrRootUserNotExist) {
		t.Fatalf("enable without root: %v", err)
	}
	mustApply(t, eng, func(b engine.Batch) error {
		return s.UserAdd(b, &pb.AuthUserAddRequest{Name: "root", Password: "pw"})
	})
	if err := apply(t, eng, s.Enable); !errors.Is(err, ErrRootRoleNotExist) {
		t.Fatalf("enable without root role: %v", err)
	}
	mustApply(t, eng, func(b engine.Batch) error {
		return s.UserGrantRole(b, &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"})
	})
	mustApply(t, eng, s.Enable)
	if !s.IsEnabled() {
		t.Fatal("not enabled")
	}
	if err := apply(t, eng, func(b engine.Batch) error { return s.UserDelete(b, "root") }); !errors.Is(err, ErrInvalidAuthMgmt) {
		t.Fatalf("deleting root while enabled: %v", err)
	}
	if err := apply(t, eng, func(b engine.Batch) error {
		return s.UserRevokeRole(b, &pb.AuthUserRevokeRoleRequest{Name: "root", Role: "root"})
	}); !errors.Is(err, ErrInvalidAuthMgmt) {
		t.Fatalf("revoking root's root role while enabled: %v", err)
	}
	if err := s.CheckPassword("root", "pw"); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if err := s.CheckPassword("root", "bad"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("wrong password: %v", err)
	}
	// Reload from the engine: the same state.
	s2 := New(Config{BcryptCost: 4})
	if err := s2.Load(eng); err != nil {
		t.Fatal(err)
	}
	if !s2.IsEnabled() || s2.Revision() != s.Revision() || s2.CheckPassword("root", "pw") != nil {
		t.Fatalf("reloaded: enabled %v rev %d (want %d)", s2.IsEnabled(), s2.Revision(), s.Revision())
	}
}

func mustApply(t *testing.T, eng engine.Engine, f func(b engine.Batch) error) {
	t.Helper()
	if err := apply(t, eng, f); err != nil {
		t.Fatal(err)
	}
}

// addRootAndU adds user root with the root role, user u and role r.
func addRootAndU(t *testing.T, s *Store, eng engine.Engine) {
	t.Helper()
	for _, f := range []func(b engine.Batch) error{
		func(b engine.Batch) error { return s.UserAdd(b, &pb.AuthUserAddRequest{Name: "root", Password: "r"}) },
		func(b engine.Batch) error {
			return s.UserGrantRole(b, &pb.AuthUserGrantRoleRequest{User: "root", Role: "root"})
		},
		func(b engine.Batch) error { return s.UserAdd(b, &pb.AuthUserAddRequest{Name: "u", Password: "p"}) },
		func(b engine.Batch) error { return s.RoleAdd(b, "r") },
	} {
		mustApply(t, eng, f)
	}
}

func TestStore_Permissions(t *testing.T) {
	s, eng := newTestStore(t)
	addRootAndU(t, s, eng)
	for _, f := range []func(b engine.Batch) error{
		func(b engine.Batch) error { return s.RoleAdd(b, "r2") },
		func(b engine.Batch) error { // prefix /a/
			return s.RoleGrantPermission(b, &pb.AuthRoleGrantPermissionRequest{Name: "r",
				Perm: &authpb.Permission{PermType: authpb.READWRITE, Key: []byte("/a/"), RangeEnd: []byte("/a0")}})
		},
		func(b engine.Batch) error { // single key k, read only
			return s.RoleGrantPermission(b, &pb.AuthRoleGrantPermissionRequest{Name: "r",
				Perm: &authpb.Permission{PermType: authpb.READ, Key: []byte("k")}})
		},
		func(b engine.Batch) error { // from z on, write only, via a second role
			return s.RoleGrantPermission(b, &pb.AuthRoleGrantPermissionRequest{Name: "r2",
				Perm: &authpb.Permission{PermType: authpb.WRITE, Key: []byte("z"), RangeEnd: []byte{0}}})
		},
		func(b engine.Batch) error {
			return s.UserGrantRole(b, &pb.AuthUserGrantRoleRequest{User: "u", Role: "r"})
		},
		func(b engine.Batch) error {
			return s.UserGrantRole(b, &pb.AuthUserGrantRoleRequest{User: "u", Role: "r2"})
		},
		s.Enable,
	} {
		mustApply(t, eng, f)
	}
	u := &AuthInfo{Username: "u", Revision: s.Revision()}
	root := &AuthInfo{Username: "root", Revision: s.Revision()}
	cases := []struct {
		name     string
		info     *AuthInfo
		write    bool
		key, end string
		want     error
	}{
		{"read in prefix", u, false, "/a/x", "", nil},
		{"write in prefix", u, true, "/a/x", "", nil},
		{"read whole prefix", u, false, "/a/", "/a0", nil},
		{"read past prefix", u, false, "/a/", "/b", ErrPermissionDenied},
		{"read other key", u, false, "/b", "", ErrPermissionDenied},
		{"read single key", u, false, "k", "", nil},
		{"write read-only key", u, true, "k", "", ErrPermissionDenied},
		{"read key range around k", u, false, "k", "l", ErrPermissionDenied},
		{"write from z", u, true, "zz", "\x00", nil},
		{"write z range", u, true, "z", "zzz", nil},
		{"read from z", u, false, "zz", "", ErrPermissionDenied},
		{"root anything", root, true, "", "\x00", nil},
		{"no user", &AuthInfo{}, false, "/a/x", "", ErrUserEmpty},
		{"old revision", &AuthInfo{Username: "u", Revision: 1}, false, "/a/x", "", ErrAuthOldRevision},
		{"unknown user", &AuthInfo{Username: "nobody", Revision: s.Revision()}, false, "/a/x", "", ErrPermissionDenied},
	}
	for _, c := range cases {
		var err error
		if c.write {
			err = s.IsDeleteRangePermitted(c.info, []byte(c.key), []byte(c.end))
		} else {
			err = s.IsRangePermitted(c.info, []byte(c.key), []byte(c.end))
		}
		if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if err := s.IsAdminPermitted(u); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("admin for u: %v", err)
	}
	if err := s.IsAdminPermitted(root); err != nil {
		t.Errorf("admin for root: %v", err)
	}
	// Revoking the prefix takes effect at once (the cache is reset).
	mustApply(t, eng, func(b engine.Batch) error {
		return s.RoleRevokePermission(b, &pb.AuthRoleRevokePermissionRequest{Role: "r", Key: []byte("/a/"), RangeEnd: []byte("/a0")})
	})
	u.Revision = s.Revision()
	if err := s.IsRangePermitted(u, []byte("/a/x"), nil); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("after revoke: %v", err)
	}
	if err := apply(t, eng, func(b engine.Batch) error {
		return s.RoleRevokePermission(b, &pb.AuthRoleRevokePermissionRequest{Role: "r", Key: []byte("/a/"), RangeEnd: []byte("/a0")})
	}); !errors.Is(err, ErrPermissionNotGranted) {
		t.Errorf("revoking twice: %v", err)
	}
	// Disabled: everything is permitted.
	mustApply(t, eng, func(b engine.Batch) error { s.Disable(b); return nil })
	if err := s.IsDeleteRangePermitted(&AuthInfo{}, []byte("x"), nil); err != nil {
		t.Errorf("disabled: %v", err)
	}
}

func TestSimpleTokens(t *testing.T) {
	tp := NewSimpleTokens(0)
	tp.Enable()
	tok := GenSimpleToken(7)
	if _, err := tp.Assign("u", tok, 1); err != nil {
		t.Fatal(err)
	}
	info, ok := tp.Info(tok, 5)
	if !ok || info.Username != "u" || info.Revision != 5 {
		t.Fatalf("info: %+v %v", info, ok)
	}
	tp.Invalidate("u")
	if _, ok := tp.Info(tok, 5); ok {
		t.Fatal("token valid after invalidate")
	}
	if _, err := NewTokenProvider("bogus", 0); !errors.Is(err, ErrInvalidAuthOpts) {
		t.Fatalf("bogus: %v", err)
	}
}

func TestJWTTokens(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	privPath, pubPath := write("priv.pem", "PRIVATE KEY", privDER), write("pub.pem", "PUBLIC KEY", pubDER)
	tp, err := NewTokenProvider("jwt,pub-key="+pubPath+",priv-key="+privPath+",sign-method=EdDSA,ttl=1m", 0)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tp.Assign("alice", "", 7)
	if err != nil {
		t.Fatal(err)
	}
	info, ok := tp.Info(tok, 9)
	if !ok || info.Username != "alice" || info.Revision != 7 {
		t.Fatalf("info: %+v %v", info, ok)
	}
	if _, ok := tp.Info(tok+"x", 9); ok {
		t.Fatal("a tampered token verified")
	}
	// A member with only the public key verifies but cannot issue.
	vp, err := NewTokenProvider("jwt,pub-key="+pubPath+",sign-method=EdDSA", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := vp.Info(tok, 9); !ok {
		t.Fatal("verify-only member refused a valid token")
	}
	if _, err := vp.Assign("alice", "", 7); !errors.Is(err, ErrInvalidAuthOpts) {
		t.Fatalf("verify-only assign: %v", err)
	}
	if _, err := NewTokenProvider("jwt,sign-method=RS256", 0); !errors.Is(err, ErrInvalidAuthOpts) {
		t.Fatalf("jwt without keys: %v", err)
	}
}

// TestStore_EtcdAnswers: answers etcd gives that the stored state does not
// spell out: the root role's permission and a no-password user's login.
func TestStore_EtcdAnswers(t *testing.T) {
	s, eng := newTestStore(t)
	if _, err := s.RoleGet(RootRole); !errors.Is(err, ErrRoleNotFound) {
		t.Fatalf("root role before it exists: %v", err)
	}
	mustApply(t, eng, func(b engine.Batch) error {
		return s.UserAdd(b, &pb.AuthUserAddRequest{Name: "root", Password: "pw"})
	})
	mustApply(t, eng, func(b engine.Batch) error { return s.RoleAdd(b, RootRole) })
	mustApply(t, eng, func(b engine.Batch) error {
		return s.UserGrantRole(b, &pb.AuthUserGrantRoleRequest{User: "root", Role: RootRole})
	})
	mustApply(t, eng, func(b engine.Batch) error {
		return s.RoleGrantPermission(b, &pb.AuthRoleGrantPermissionRequest{Name: RootRole,
			Perm: &authpb.Permission{PermType: authpb.READ, Key: []byte("foo")}})
	})
	mustApply(t, eng, func(b engine.Batch) error {
		return s.UserAdd(b, &pb.AuthUserAddRequest{Name: "nopw", Options: &authpb.UserAddOptions{NoPassword: true}})
	})
	mustApply(t, eng, s.Enable)

	r, err := s.RoleGet(RootRole)
	if err != nil {
		t.Fatal(err)
	}
	// etcd's rootPerm: READWRITE on ["", "\x00"), not the stored READ on foo.
	if len(r.KeyPermission) != 1 || r.KeyPermission[0].PermType != authpb.READWRITE ||
		string(r.KeyPermission[0].Key) != "" || string(r.KeyPermission[0].RangeEnd) != "\x00" {
		t.Fatalf("root role: %v", r.KeyPermission)
	}
	r.KeyPermission[0].RangeEnd[0] = 'x' // a copy: the next answer is unchanged
	if r2, _ := s.RoleGet(RootRole); string(r2.KeyPermission[0].RangeEnd) != "\x00" {
		t.Fatalf("root role after the caller changed its copy: %v", r2.KeyPermission)
	}

	for _, c := range []struct {
		name, password string
		want           error
	}{
		{"nopw", "x", ErrNoPasswordUser},
		{"nopw", "", ErrNoPasswordUser}, // etcd checks the option before the password
		{"nobody", "x", ErrAuthFailed},
		{"root", "bad", ErrAuthFailed},
		{"root", "pw", nil},
	} {
		err := s.CheckPassword(c.name, c.password)
		if !errors.Is(err, c.want) || (c.want == ErrAuthFailed && errors.Is(err, ErrNoPasswordUser)) {
			t.Errorf("CheckPassword(%q, %q) = %v, want %v", c.name, c.password, err, c.want)
		}
	}
	if got := ErrNoPasswordUser.Error(); got != "auth: authentication failed, password was given for no password user" {
		t.Errorf("message %q", got)
	}
	if !errors.Is(ErrNoPasswordUser, ErrAuthFailed) {
		t.Error("ErrNoPasswordUser is not an ErrAuthFailed")
	}
}

// TestStore_GrantPermissionChecksTheRange: etcd's rules for the range of a
// granted permission (a key is needed; end after key, or "\x00" for every
// key from key on) and its errors, which change nothing.
func TestStore_GrantPermissionChecksTheRange(t *testing.T) {
	s, eng := newTestStore(t)
	mustApply(t, eng, func(b engine.Batch) error { return s.RoleAdd(b, "r") })
	grant := func(key, end string) error {
		p := &authpb.Permission{PermType: authpb.READ, Key: []byte(key)}
		if end != "" {
			p.RangeEnd = []byte(end)
		}
		return apply(t, eng, func(b engine.Batch) error {
			return s.RoleGrantPermission(b, &pb.AuthRoleGrantPermissionRequest{Name: "r", Perm: p})
		})
	}
	t.Logf("Step 1: ranges etcd accepts")
	for _, c := range [][2]string{{"k", ""}, {"a", "b"}, {"z", "\x00"}, {"\x00", "\x00"}} {
		if err := grant(c[0], c[1]); err != nil {
			t.Fatalf("grant [%q, %q): %v", c[0], c[1], err)
		}
	}
	t.Logf("Step 2: ranges etcd refuses with ErrInvalidAuthMgmt")
	for _, c := range [][2]string{{"", ""}, {"", "\x00"}, {"", "b"}, {"b", "a"}, {"b", "b"}} {
		if err := grant(c[0], c[1]); !errors.Is(err, ErrInvalidAuthMgmt) {
			t.Fatalf("grant [%q, %q): got %v, want ErrInvalidAuthMgmt", c[0], c[1], err)
		}
	}
	t.Logf("Step 3: no permission at all is ErrPermissionNotGiven")
	err := apply(t, eng, func(b engine.Batch) error {
		return s.RoleGrantPermission(b, &pb.AuthRoleGrantPermissionRequest{Name: "r"})
	})
	if !errors.Is(err, ErrPermissionNotGiven) {
		t.Fatalf("no permission: got %v, want ErrPermissionNotGiven", err)
	}
	t.Logf("Step 4: the role holds the four accepted permissions only")
	r, err := s.RoleGet("r")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.KeyPermission) != 4 {
		t.Fatalf("role r: %v", r.KeyPermission)
	}
}

// Grants on one key with other range ends follow etcd's auth store: only
// the first permission on the key is updated in place, so the same grants
// leave the same permissions (and the same rights) as in etcd.
func TestStore_GrantPermissionKeepsEtcdsOrder(t *testing.T) {
	s, eng := newTestStore(t)
	addRootAndU(t, s, eng)
	mustApply(t, eng, func(b engine.Batch) error {
		return s.UserGrantRole(b, &pb.AuthUserGrantRoleRequest{User: "u", Role: "r"})
	})
	grant := func(typ authpb.Permission_Type, key, end string) {
		t.Helper()
		mustApply(t, eng, func(b engine.Batch) error {
			return s.RoleGrantPermission(b, &pb.AuthRoleGrantPermissionRequest{Name: "r",
				Perm: &authpb.Permission{PermType: typ, Key: []byte(key), RangeEnd: []byte(end)}})
		})
	}
	perms := func() []string {
		t.Helper()
		r, err := s.RoleGet("r")
		require.NoError(t, err)
		var out []string
		for _, p := range r.KeyPermission {
			out = append(out, fmt.Sprintf("%s[%s,%s)", p.PermType, p.Key, p.RangeEnd))
		}
		return out
	}
	canRead := func(key string) error {
		return s.IsRangePermitted(&AuthInfo{Username: "u", Revision: s.Revision()}, []byte(key), nil)
	}

	t.Logf("Step 1: read [a,a0), read [a,b), then write [a,b): the third is added, not written over the second")
	grant(authpb.READ, "a", "a0")
	grant(authpb.READ, "a", "b")
	grant(authpb.WRITE, "a", "b")
	require.Equal(t, []string{"READ[a,a0)", "READ[a,b)", "WRITE[a,b)"}, perms())

	t.Logf("Step 2: with auth on, u still reads a1 (etcd answers it too)")
	mustApply(t, eng, s.Enable)
	require.NoError(t, canRead("a1"))

	t.Logf("Step 3: the first permission on the key is updated in place; a new range end on it goes after the others")
	grant(authpb.READWRITE, "a", "a0")
	grant(authpb.READ, "a", "c")
	require.Equal(t, []string{"READWRITE[a,a0)", "READ[a,b)", "WRITE[a,b)", "READ[a,c)"}, perms())

	t.Logf("Step 4: revoking [a,b) removes both permissions on it; a second revoke is refused")
	mustApply(t, eng, func(b engine.Batch) error {
		return s.RoleRevokePermission(b, &pb.AuthRoleRevokePermissionRequest{Role: "r", Key: []byte("a"), RangeEnd: []byte("b")})
	})
	require.Equal(t, []string{"READWRITE[a,a0)", "READ[a,c)"}, perms())
	err := apply(t, eng, func(b engine.Batch) error {
		return s.RoleRevokePermission(b, &pb.AuthRoleRevokePermissionRequest{Role: "r", Key: []byte("a"), RangeEnd: []byte("b")})
	})
	require.ErrorIs(t, err, ErrPermissionNotGranted)
}
