package test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Auth as etcd has it, through clientv3 (Username/Password) and unmodified
// etcdctl. Members run with --bcrypt-cost 4 to keep password hashing fast.

var authFlags = memberOpts{extraFlags: []string{"--bcrypt-cost", "4"}}

// newAuthClient is a clientv3 client that authenticates as user.
func newAuthClient(t *testing.T, user, password string, endpoints ...string) (*clientv3.Client, error) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second,
		Username: user, Password: password, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { cli.Close() })
	return cli, nil
}

// addRootAndAppRole creates root (password rootpw, with the root role)
// and the role app with read-write on the prefix /app/.
func addRootAndAppRole(t *testing.T, ctx context.Context, cli *clientv3.Client) {
	t.Helper()
	_, err := cli.UserAdd(ctx, "root", "rootpw")
	require.NoError(t, err)
	_, err = cli.RoleAdd(ctx, "root")
	require.NoError(t, err)
	_, err = cli.UserGrantRole(ctx, "root", "root")
	require.NoError(t, err)
	_, err = cli.RoleAdd(ctx, "app")
	require.NoError(t, err)
	_, err = cli.RoleGrantPermission(ctx, "app", "/app/", clientv3.GetPrefixRangeEnd("/app/"),
		clientv3.PermissionType(clientv3.PermReadWrite))
	require.NoError(t, err)
}

// setupAuth creates root (with the root role) and alice with read-write
// on the prefix /app/, writes /other/x, and enables auth.
func setupAuth(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx := ctxT(t, 20*time.Second)
	addRootAndAppRole(t, ctx, cli)
	_, err := cli.UserAdd(ctx, "alice", "alicepw")
	require.NoError(t, err)
	_, err = cli.UserGrantRole(ctx, "alice", "app")
	require.NoError(t, err)
	_, err = cli.Put(ctx, "/other/x", "secret")
	require.NoError(t, err)
	_, err = cli.AuthEnable(ctx)
	require.NoError(t, err)
}

func TestAuth_ClientV3(t *testing.T) {
	m := startMember(t, engineRocksDB, authFlags)
	ep := m.endpoint()
	anon := newClient(t, ep)

	t.Logf("Step 1: enabling auth without a root user is refused")
	_, err := anon.AuthEnable(ctxT(t, 5*time.Second))
	require.ErrorIs(t, err, rpctypes.ErrRootUserNotExist)

	t.Logf("Step 2: root, role app on /app/, alice, then auth enable")
	setupAuth(t, anon)
	st, err := anon.AuthStatus(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.True(t, st.Enabled)

	t.Logf("Step 3: a client without a token is refused")
	_, err = anon.Get(ctxT(t, 5*time.Second), "/app/a")
	require.ErrorIs(t, err, rpctypes.ErrUserEmpty)
	_, err = anon.Put(ctxT(t, 5*time.Second), "/app/a", "v")
	require.ErrorIs(t, err, rpctypes.ErrUserEmpty)

	t.Logf("Step 3b: status, member list and alarms need a user too (etcd 3.7); alice, not root, gets them")
	_, err = anon.Status(ctxT(t, 5*time.Second), ep)
	require.ErrorIs(t, err, rpctypes.ErrUserEmpty)
	_, err = anon.MemberList(ctxT(t, 5*time.Second))
	require.ErrorIs(t, err, rpctypes.ErrUserEmpty)
	_, err = anon.AlarmList(ctxT(t, 5*time.Second))
	require.ErrorIs(t, err, rpctypes.ErrUserEmpty)
	aliceInfo, err := newAuthClient(t, "alice", "alicepw", ep)
	require.NoError(t, err)
	_, err = aliceInfo.Status(ctxT(t, 5*time.Second), ep)
	require.NoError(t, err)
	_, err = aliceInfo.MemberList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	_, err = aliceInfo.AlarmList(ctxT(t, 5*time.Second))
	require.NoError(t, err)

	t.Logf("Step 4: a wrong password is refused")
	_, err = newAuthClient(t, "alice", "wrong", ep)
	require.ErrorIs(t, err, rpctypes.ErrAuthFailed)
	_, err = newAuthClient(t, "nobody", "x", ep)
	require.ErrorIs(t, err, rpctypes.ErrAuthFailed)

	t.Logf("Step 5: alice reads and writes her prefix")
	alice, err := newAuthClient(t, "alice", "alicepw", ep)
	require.NoError(t, err)
	ctx := ctxT(t, 20*time.Second)
	_, err = alice.Put(ctx, "/app/a", "1")
	require.NoError(t, err)
	_, err = alice.Put(ctx, "/app/b", "2")
	require.NoError(t, err)
	resp, err := alice.Get(ctx, "/app/", clientv3.WithPrefix())
	require.NoError(t, err)
	require.Equal(t, 2, len(resp.Kvs))
	require.Equal(t, "1", string(resp.Kvs[0].Value))
	require.Equal(t, "2", string(resp.Kvs[1].Value))
	_, err = alice.Delete(ctx, "/app/b")
	require.NoError(t, err)

	t.Logf("Step 6: alice is denied elsewhere")
	_, err = alice.Get(ctx, "/other/x")
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	_, err = alice.Put(ctx, "/other/y", "v")
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	_, err = alice.Delete(ctx, "/app/", clientv3.WithFromKey()) // past her prefix
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	_, err = alice.Get(ctx, "/app", clientv3.WithPrefix()) // "/app" prefix covers "/app0"...
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)

	t.Logf("Step 7: a txn touching a forbidden key is denied, in a compare or either branch")
	_, err = alice.Txn(ctx).If(clientv3.Compare(clientv3.Value("/other/x"), "=", "secret")).
		Then(clientv3.OpPut("/app/c", "3")).Commit()
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	_, err = alice.Txn(ctx).If(clientv3.Compare(clientv3.Value("/app/a"), "=", "1")).
		Then(clientv3.OpPut("/app/c", "3")).Else(clientv3.OpGet("/other/x")).Commit()
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	tr, err := alice.Txn(ctx).If(clientv3.Compare(clientv3.Value("/app/a"), "=", "1")).
		Then(clientv3.OpPut("/app/c", "3")).Else(clientv3.OpGet("/app/a")).Commit()
	require.NoError(t, err)
	require.True(t, tr.Succeeded)

	t.Logf("Step 8: a watch on a forbidden key is canceled; one on her prefix sees events")
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	denied := alice.Watch(wctx, "/other/x")
	wr, ok := <-denied
	require.True(t, ok, "the denied watch's channel closed without a response")
	require.True(t, wr.Canceled)
	require.ErrorContains(t, wr.Err(), "etcdserver: permission denied")
	allowed := alice.Watch(wctx, "/app/", clientv3.WithPrefix())
	_, err = alice.Put(ctx, "/app/w", "watched")
	require.NoError(t, err)
	wr = <-allowed
	require.NoError(t, wr.Err())
	require.Equal(t, 1, len(wr.Events))
	require.Equal(t, "/app/w", string(wr.Events[0].Kv.Key))

	t.Logf("Step 9: alice cannot manage auth, compact, or defragment")
	_, err = alice.UserAdd(ctx, "mallory", "x")
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	_, err = alice.RoleGrantPermission(ctx, "app", "", "\x00", clientv3.PermissionType(clientv3.PermReadWrite))
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	_, err = alice.AuthDisable(ctx)
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	_, err = alice.Compact(ctx, 2)
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	_, err = alice.Defragment(ctx, ep)
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	ur, err := alice.UserGet(ctx, "alice") // her own user: allowed
	require.NoError(t, err)
	require.Equal(t, []string{"app"}, ur.Roles)

	t.Logf("Step 10: root may do anything; root's root role is protected")
	root, err := newAuthClient(t, "root", "rootpw", ep)
	require.NoError(t, err)
	ctx = ctxT(t, 20*time.Second)
	got, err := root.Get(ctx, "/other/x")
	require.NoError(t, err)
	require.Equal(t, "secret", string(got.Kvs[0].Value))
	_, err = root.UserRevokeRole(ctx, "root", "root")
	require.ErrorIs(t, err, rpctypes.ErrInvalidAuthMgmt)
	_, err = root.UserDelete(ctx, "root")
	require.ErrorIs(t, err, rpctypes.ErrInvalidAuthMgmt)
	_, err = root.UserAdd(ctx, "alice", "x")
	require.ErrorIs(t, err, rpctypes.ErrUserAlreadyExist)
	_, err = root.UserGrantRole(ctx, "alice", "nope")
	require.ErrorIs(t, err, rpctypes.ErrRoleNotFound)
	_, err = root.UserRevokeRole(ctx, "alice", "root")
	require.ErrorIs(t, err, rpctypes.ErrRoleNotGranted)
	_, err = root.RoleRevokePermission(ctx, "app", "/nope", "")
	require.ErrorIs(t, err, rpctypes.ErrPermissionNotGranted)
	users, err := root.UserList(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"alice", "root"}, users.Users)
	rg, err := root.RoleGet(ctx, "app")
	require.NoError(t, err)
	require.Equal(t, 1, len(rg.Perm))
	require.Equal(t, "/app/", string(rg.Perm[0].Key))
	require.Equal(t, "/app0", string(rg.Perm[0].RangeEnd))
	// etcd answers the root role with READWRITE on every key, which it
	// does not store, whatever was granted to the role.
	_, err = root.RoleGrantPermission(ctx, "root", "foo", "", clientv3.PermissionType(clientv3.PermRead))
	require.NoError(t, err)
	rg, err = root.RoleGet(ctx, "root")
	require.NoError(t, err)
	require.Equal(t, 1, len(rg.Perm))
	require.Equal(t, []string{"READWRITE", "", "\x00"},
		[]string{rg.Perm[0].PermType.String(), string(rg.Perm[0].Key), string(rg.Perm[0].RangeEnd)})
	// etcd's rule for a granted range: a key, and an end after it or
	// "\x00"; etcdctl sends "\x00" for "every key".
	for _, r := range [][2]string{{"", ""}, {"", "\x00"}, {"b", "a"}} {
		_, err = root.RoleGrantPermission(ctx, "app", r[0], r[1], clientv3.PermissionType(clientv3.PermRead))
		requireErrIs(t, err, rpctypes.ErrInvalidAuthMgmt, fmt.Sprintf("grant [%q, %q)", r[0], r[1]))
	}

	t.Logf("Step 10b: a user added without a password cannot log in with one (etcd's no password user error)")
	_, err = root.UserAddWithOptions(ctx, "nopw", "", &clientv3.UserAddOptions{NoPassword: true})
	require.NoError(t, err)
	_, err = newAuthClient(t, "nopw", "x", ep)
	require.Equal(t, codes.Unknown, status.Code(err), "%v", err)
	require.Equal(t, "auth: authentication failed, password was given for no password user", status.Convert(err).Message())
	_, err = anon.Authenticate(ctx, "nopw", "") // raw Authenticate, empty password: the same
	require.Equal(t, codes.Unknown, status.Code(err), "%v", err)
	require.Equal(t, "auth: authentication failed, password was given for no password user", status.Convert(err).Message())
	_, err = root.UserDelete(ctx, "nopw")
	require.NoError(t, err)

	roles, err := root.RoleList(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"app", "root"}, roles.Roles)
	_, err = root.RoleAdd(ctx, "tmp")
	require.NoError(t, err)
	_, err = root.UserAdd(ctx, "bob", "old")
	require.NoError(t, err)
	_, err = root.UserGrantRole(ctx, "bob", "tmp")
	require.NoError(t, err)
	_, err = root.RoleDelete(ctx, "tmp") // revoked from bob too
	require.NoError(t, err)
	ur, err = root.UserGet(ctx, "bob")
	require.NoError(t, err)
	require.Equal(t, 0, len(ur.Roles))
	_, err = root.UserChangePassword(ctx, "bob", "new")
	require.NoError(t, err)
	_, err = newAuthClient(t, "bob", "old", ep)
	require.ErrorIs(t, err, rpctypes.ErrAuthFailed)
	_, err = newAuthClient(t, "bob", "new", ep)
	require.NoError(t, err)
	_, err = root.UserDelete(ctx, "bob")
	require.NoError(t, err)

	t.Logf("Step 11: auth state survives a restart")
	require.NoError(t, m.stop())
	m.restart()
	waitFor(t, 30*time.Second, "the member to serve again", func() bool { _, err := m.status(); return err == nil })
	alice2, err := newAuthClient(t, "alice", "alicepw", ep)
	require.NoError(t, err)
	got, err = alice2.Get(ctxT(t, 10*time.Second), "/app/a")
	require.NoError(t, err)
	require.Equal(t, "1", string(got.Kvs[0].Value))
	_, err = alice2.Get(ctxT(t, 10*time.Second), "/other/x")
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	anon2 := newClient(t, ep)
	_, err = anon2.Get(ctxT(t, 10*time.Second), "/app/a")
	require.ErrorIs(t, err, rpctypes.ErrUserEmpty)

	t.Logf("Step 12: auth disable restores open access")
	root2, err := newAuthClient(t, "root", "rootpw", ep)
	require.NoError(t, err)
	_, err = root2.AuthDisable(ctxT(t, 10*time.Second))
	require.NoError(t, err)
	got, err = anon2.Get(ctxT(t, 10*time.Second), "/other/x")
	require.NoError(t, err)
	require.Equal(t, "secret", string(got.Kvs[0].Value))
	_, err = anon2.Put(ctxT(t, 10*time.Second), "/other/y", "open")
	require.NoError(t, err)
	_, err = newAuthClient(t, "alice", "alicepw", ep)
	require.True(t, err == nil || errors.Is(err, rpctypes.ErrAuthNotEnabled), "login after disable: %v", err)
}

// TestAuth_Etcdctl runs the commands docs/security.md shows, with
// unmodified etcdctl.
func TestAuth_Etcdctl(t *testing.T) {
	etcdctlBin(t)
	m := startMember(t, engineRocksDB, authFlags)
	eps := []string{m.endpoint()}

	t.Logf("Step 1: users, roles, permissions")
	require.Equal(t, "User root created\n", ctlOK(t, eps, "user", "add", "root:rootpw"))
	require.Equal(t, "Role root created\n", ctlOK(t, eps, "role", "add", "root"))
	require.Equal(t, "Role root is granted to user root\n", ctlOK(t, eps, "user", "grant-role", "root", "root"))
	require.Equal(t, "Role app created\n", ctlOK(t, eps, "role", "add", "app"))
	require.Equal(t, "Role app updated\n", ctlOK(t, eps, "role", "grant-permission", "app", "--prefix=true", "readwrite", "/app/"))
	require.Equal(t, "User alice created\n", ctlOK(t, eps, "user", "add", "alice:alicepw"))
	require.Equal(t, "Role app is granted to user alice\n", ctlOK(t, eps, "user", "grant-role", "alice", "app"))
	require.Equal(t, "Role app\nKV Read:\n\t[/app/, /app0) (prefix /app/)\nKV Write:\n\t[/app/, /app0) (prefix /app/)\n",
		ctlOK(t, eps, "role", "get", "app"))
	require.Equal(t, "User nopw created\n", ctlOK(t, eps, "user", "add", "nopw", "--no-password"))

	t.Logf("Step 2: auth enable")
	require.Equal(t, "Authentication Enabled\n", ctlOK(t, eps, "auth", "enable"))
	ctlFails(t, eps, "etcdserver: user name is empty", "get", "/app/a")

	t.Logf("Step 3: alice writes and reads her prefix, is denied elsewhere")
	require.Equal(t, "OK\n", ctlOK(t, eps, "--user", "alice:alicepw", "put", "/app/a", "1"))
	require.Equal(t, "/app/a\n1\n", ctlOK(t, eps, "--user", "alice:alicepw", "get", "/app/a"))
	ctlFails(t, eps, "etcdserver: permission denied", "--user", "alice:alicepw", "put", "/other/x", "1")
	ctlFails(t, eps, "etcdserver: permission denied", "--user", "alice:alicepw", "user", "add", "bob:pw")
	ctlFails(t, eps, "etcdserver: authentication failed, invalid user ID or password", "--user", "alice:wrong", "get", "/app/a")
	ctlFails(t, eps, "rpc error: code = Unknown desc = auth: authentication failed, password was given for no password user",
		"--user", "nopw:x", "get", "/app/a")

	t.Logf("Step 4: root lists users; auth disable")
	require.Equal(t, "alice\nnopw\nroot\n", ctlOK(t, eps, "--user", "root:rootpw", "user", "list"))
	// etcd 3.7.3's output: the root role's READWRITE on every key.
	require.Equal(t, "Role root\nKV Read:\n\t[, <open ended>\nKV Write:\n\t[, <open ended>\n",
		ctlOK(t, eps, "--user", "root:rootpw", "role", "get", "root"))
	require.Contains(t, ctlOK(t, eps, "--user", "root:rootpw", "-w", "json", "role", "get", "root"),
		`"perm":[{"permType":2,"range_end":"AA=="}]}`)
	require.Equal(t, "Authentication Disabled\n", ctlOK(t, eps, "--user", "root:rootpw", "auth", "disable"))
	out := ctlOK(t, eps, "get", "/app/a")
	require.True(t, strings.HasSuffix(out, "1\n"), "get after disable: %q", out)
}

// gwPost posts a JSON body to the gateway with an optional token and
// returns the status and body.
func gwPost(t *testing.T, base, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestAuth_HTTPGateway drives auth through etcd's JSON gateway: the
// /v3/auth/* paths and the Authorization header, on /v3 and /v1.
// TestAuth_RESTWritesRacingAuthEnable: REST puts without a token, sent
// while auth is being enabled, are either applied before AuthEnable or
// refused: none is applied after it. A put checked before the enable and
// applied after it is checked again at apply, as etcd does; before the
// REST front end marked its requests as a client's, the server took such a
// put for its own and applied it unchecked.
func TestAuth_RESTWritesRacingAuthEnable(t *testing.T) {
	m := startMember(t, engineRocksDB, authFlags)
	cli := newClient(t, m.endpoint())

	t.Logf("Step 1: root exists; auth is still disabled")
	addRootAndAppRole(t, ctxT(t, 20*time.Second), cli)

	t.Logf("Step 2: 8 writers put keys over REST without a token (at most 3,000 each)")
	type applied struct{ key, rev string }
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ok      []applied
		refused int
		started atomic.Int64
	)
	stop := make(chan struct{})
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3000 {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("race/%d-%d", w, i)
				req, err := http.NewRequest("PUT", m.clientURL+"/v1/kv/"+key, strings.NewReader("v"))
				if err != nil {
					t.Errorf("request: %v", err)
					return
				}
				resp, err := httpClient.Do(req)
				if err != nil {
					t.Errorf("put %s: %v", key, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				started.Add(1)
				mu.Lock()
				if resp.StatusCode == http.StatusOK {
					ok = append(ok, applied{key, resp.Header.Get("X-Revision")})
				} else {
					refused++
				}
				mu.Unlock()
			}
		}()
	}

	t.Logf("Step 3: once 200 puts are done, auth is enabled while they go on")
	require.Eventually(t, func() bool { return started.Load() >= 200 }, 30*time.Second, 5*time.Millisecond)
	en, err := cli.AuthEnable(ctxT(t, 10*time.Second))
	require.NoError(t, err)
	enableRev := en.Header.Revision
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return refused >= 50
	}, 30*time.Second, 5*time.Millisecond, "puts without a token go on being accepted after AuthEnable")
	close(stop)
	wg.Wait()

	t.Logf("Step 4: every accepted put was applied at or before AuthEnable's revision %d", enableRev)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d puts accepted, %d refused", len(ok), refused)
	for _, a := range ok {
		rev, err := strconv.ParseInt(a.rev, 10, 64)
		require.NoError(t, err, "X-Revision of %s: %q", a.key, a.rev)
		require.LessOrEqual(t, rev, enableRev, "put %s applied at revision %d, after AuthEnable", a.key, rev)
	}
}

func TestAuth_HTTPGateway(t *testing.T) {
	m := startMember(t, engineRocksDB, authFlags)
	base := m.clientURL

	t.Logf("Step 1: users, roles and auth enable over /v3/auth/*")
	for _, c := range []struct{ path, body string }{
		{"/v3/auth/user/add", `{"name":"root","password":"rootpw"}`},
		{"/v3/auth/role/add", `{"name":"root"}`},
		{"/v3/auth/user/grant", `{"user":"root","role":"root"}`},
		{"/v3/auth/role/add", `{"name":"app"}`},
		{"/v3/auth/role/grant", `{"name":"app","perm":{"permType":"READWRITE","key":"` + b64("/app/") + `","range_end":"` + b64("/app0") + `"}}`},
		{"/v3/auth/user/add", `{"name":"alice","password":"alicepw"}`},
		{"/v3/auth/user/grant", `{"user":"alice","role":"app"}`},
		{"/v3/auth/user/add", `{"name":"nopw","options":{"no_password":true}}`},
		{"/v3/kv/put", `{"key":"` + b64("/other/x") + `","value":"` + b64("secret") + `"}`},
		{"/v3/auth/enable", `{}`},
	} {
		code, body := gwPost(t, base, c.path, "", c.body)
		require.Equal(t, 200, code, "%s: %s", c.path, body)
	}
	code, body := gwPost(t, base, "/v3/auth/status", "", `{}`)
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"enabled":true`)

	t.Logf("Step 2: authenticate; a wrong password is refused")
	code, body = gwPost(t, base, "/v3/auth/authenticate", "", `{"name":"alice","password":"wrong"}`)
	require.Equal(t, 400, code, body)
	require.Contains(t, body, "etcdserver: authentication failed, invalid user ID or password")
	code, body = gwPost(t, base, "/v3/auth/authenticate", "", `{"name":"nopw","password":"x"}`)
	require.Equal(t, 500, code, body) // etcd 3.7.3: code 2 (Unknown), HTTP 500
	require.Equal(t, `{"code":2,"message":"auth: authentication failed, password was given for no password user"}`, compactJSON(t, body))
	code, body = gwPost(t, base, "/v3/auth/authenticate", "", `{"name":"alice","password":"alicepw"}`)
	require.Equal(t, 200, code, body)
	var auth struct{ Token string }
	require.NoError(t, json.Unmarshal([]byte(body), &auth))
	require.NotEmpty(t, auth.Token)

	t.Logf("Step 3: alice writes and reads her prefix with the Authorization header")
	code, body = gwPost(t, base, "/v3/kv/put", auth.Token, `{"key":"`+b64("/app/a")+`","value":"`+b64("1")+`"}`)
	require.Equal(t, 200, code, body)
	code, body = gwPost(t, base, "/v3/kv/range", auth.Token, `{"key":"`+b64("/app/a")+`"}`)
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"value":"`+b64("1")+`"`)

	t.Logf("Step 4: denied elsewhere, without a token, with a bad token, and on REST")
	code, body = gwPost(t, base, "/v3/kv/range", auth.Token, `{"key":"`+b64("/other/x")+`"}`)
	require.Equal(t, 403, code, body)
	require.Contains(t, body, "etcdserver: permission denied")
	code, body = gwPost(t, base, "/v3/kv/range", "", `{"key":"`+b64("/app/a")+`"}`)
	require.Equal(t, 400, code, body)
	require.Contains(t, body, "etcdserver: user name is empty")
	code, body = gwPost(t, base, "/v3/kv/range", "bogus.1", `{"key":"`+b64("/app/a")+`"}`)
	require.Equal(t, 401, code, body)
	require.Contains(t, body, "etcdserver: invalid auth token")
	code, body = gwPost(t, base, "/v3/auth/user/add", auth.Token, `{"name":"mallory","password":"x"}`)
	require.Equal(t, 403, code, body)
	resp, err := http.Get(base + "/v1/kv/other/x")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 400, resp.StatusCode) // no token: user name is empty
	req, err := http.NewRequest(http.MethodGet, base+"/v1/kv//app/a", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+auth.Token)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	val, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, string(val))
	require.Equal(t, "1", string(val))

	t.Logf("Step 5: root disables auth; open access again")
	code, body = gwPost(t, base, "/v3/auth/authenticate", "", `{"name":"root","password":"rootpw"}`)
	require.Equal(t, 200, code, body)
	var rootAuth struct{ Token string }
	require.NoError(t, json.Unmarshal([]byte(body), &rootAuth))
	code, body = gwPost(t, base, "/v3/auth/role/get", rootAuth.Token, `{"role":"root"}`)
	require.Equal(t, 200, code, body)
	require.Contains(t, compactJSON(t, body), `"perm":[{"permType":"READWRITE","range_end":"AA=="}]`) // as etcd 3.7.3
	code, body = gwPost(t, base, "/v3/auth/disable", rootAuth.Token, `{}`)
	require.Equal(t, 200, code, body)
	code, body = gwPost(t, base, "/v3/kv/range", "", `{"key":"`+b64("/other/x")+`"}`)
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"value":"`+b64("secret")+`"`)
}

// compactJSON removes insignificant spaces (etcd's gateway writes ", ").
func compactJSON(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, json.Compact(&b, []byte(s)), s)
	return b.String()
}
