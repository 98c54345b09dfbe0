package test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"go.uber.org/zap"
)

// With --client-cert-auth and auth enabled, a request without a token runs
// as the common name of its verified client certificate (etcd's
// AuthInfoFromTLS): a certificate whose CN is a user gets that user's
// permissions without a password, Lock and Election included.

// startTLSAuthCluster starts n memory members with https client URLs,
// --client-cert-auth and the CA's certificate for each (CN = member name),
// plain peer URLs, and waits until a client with cfg sees one leader
// everywhere. It returns the members and the index of a follower.
func startTLSAuthCluster(t *testing.T, dir string, ca *testCA, cfg *tls.Config, n int) ([]*member, int) {
	t.Helper()
	ms, initial := newTLSMembers(t, n, "http")
	for i, m := range ms {
		f := writeTLSFiles(t, dir, m.name, ca, int64(100+i))
		m.args = []string{"serve", "--name", m.name, "--data-dir", m.dataDir, "--engine", engineMemory,
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", initial, "--initial-cluster-token", "tls-auth",
			"--unsafe-no-fsync", "--bcrypt-cost", "4",
			"--cert-file", f.cert, "--key-file", f.key, "--trusted-ca-file", f.ca, "--client-cert-auth"}
		m.start()
	}
	follower := -1
	waitFor(t, 30*time.Second, "every member to know the same leader", func() bool {
		var leader uint64
		for i, m := range ms {
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.tlsEndpoint()}, DialTimeout: time.Second,
				TLS: cfg, Logger: zap.NewNop()})
			if err != nil {
				return false
			}
			st, err := cli.Status(ctxT(t, time.Second), m.tlsEndpoint())
			cli.Close()
			if err != nil || st.Leader == 0 || (leader != 0 && st.Leader != leader) {
				return false
			}
			leader = st.Leader
			if st.Leader != st.Header.MemberId {
				follower = i
			}
		}
		return follower >= 0
	})
	return ms, follower
}

func TestAuth_TLSCommonName(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "auth CA")
	rootF := writeTLSFiles(t, dir, "root", ca, 1)
	aliceF := writeTLSFiles(t, dir, "alice", ca, 2)
	nobodyF := writeTLSFiles(t, dir, "nobody", ca, 3)
	rootCfg := tlsClientConfig(t, ca, &rootF)

	t.Logf("Step 1: 3 members with https client URLs and --client-cert-auth")
	ms, fi := startTLSAuthCluster(t, dir, ca, rootCfg, 3)
	fol := ms[fi]
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.tlsEndpoint())
	}

	t.Logf("Step 2: with the certificate whose CN is root: root (with a password), alice (no password), role app on /app/, auth enable")
	root := newTLSClient(t, rootCfg, eps...)
	ctx := ctxT(t, 60*time.Second)
	addRootAndAppRole(t, ctx, root)
	_, err := root.UserAddWithOptions(ctx, "alice", "", &clientv3.UserAddOptions{NoPassword: true})
	require.NoError(t, err)
	_, err = root.UserGrantRole(ctx, "alice", "app")
	require.NoError(t, err)
	_, err = root.Put(ctx, "/other/x", "secret")
	require.NoError(t, err)
	_, err = root.AuthEnable(ctx)
	require.NoError(t, err)

	t.Logf("Step 3: the root certificate acts as root without a password, on every member")
	for _, m := range ms {
		cli := newTLSClient(t, rootCfg, m.tlsEndpoint())
		waitFor(t, 10*time.Second, m.name+" to apply auth enable", func() bool {
			st, err := cli.AuthStatus(ctxT(t, 2*time.Second))
			return err == nil && st.Enabled
		})
		got, err := cli.Get(ctx, "/other/x")
		require.NoError(t, err, m.name)
		require.Equal(t, "secret", string(got.Kvs[0].Value))
		users, err := cli.UserList(ctx)
		require.NoError(t, err, m.name)
		require.Equal(t, []string{"alice", "root"}, users.Users)
	}

	t.Logf("Step 4: the alice certificate has alice's permissions: her prefix, nothing else, no administration")
	alice := newTLSClient(t, tlsClientConfig(t, ca, &aliceF), fol.tlsEndpoint())
	_, err = alice.Put(ctx, "/app/a", "1")
	require.NoError(t, err)
	got, err := alice.Get(ctx, "/app/a")
	require.NoError(t, err)
	require.Equal(t, "1", string(got.Kvs[0].Value))
	_, err = alice.Get(ctx, "/other/x")
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	_, err = alice.Put(ctx, "/other/y", "v")
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	_, err = alice.UserAdd(ctx, "mallory", "x")
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)

	t.Logf("Step 5: a certificate whose CN is no user is denied")
	nobody := newTLSClient(t, tlsClientConfig(t, ca, &nobodyF), fol.tlsEndpoint())
	_, err = nobody.Put(ctx, "/app/n", "x")
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)

	t.Logf("Step 6: alice's lease through follower %s: keep-alive and TimeToLive are forwarded to the leader as alice", fol.name)
	g, err := alice.Grant(ctx, 60)
	require.NoError(t, err)
	_, err = alice.Put(ctx, "/app/l", "leased", clientv3.WithLease(g.ID))
	require.NoError(t, err)
	for i := 0; i < 3; i++ { // the token minted for alice is reused
		ka, err := alice.KeepAliveOnce(ctx, g.ID)
		require.NoError(t, err)
		require.Equal(t, int64(60), ka.TTL)
	}
	ttl, err := alice.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys())
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("/app/l")}, ttl.Keys)
	rg, err := root.Grant(ctx, 60)
	require.NoError(t, err)
	_, err = root.Put(ctx, "/other/s", "s", clientv3.WithLease(rg.ID))
	require.NoError(t, err)
	_, err = alice.KeepAliveOnce(ctx, rg.ID)
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)

	t.Logf("Step 7: the root certificate's promotion through follower %s reaches the leader's decision as root", fol.name)
	rootF1 := newTLSClient(t, rootCfg, fol.tlsEndpoint())
	add, err := reconfigure(t, func(ctx context.Context) (*clientv3.MemberAddResponse, error) {
		return rootF1.MemberAddAsLearner(ctx, []string{"http://127.0.0.1:1"})
	})
	require.NoError(t, err)
	_, err = rootF1.MemberPromote(ctx, add.Member.ID)
	require.ErrorIs(t, err, rpctypes.ErrMemberLearnerNotReady)
	_, err = alice.MemberPromote(ctx, add.Member.ID)
	require.ErrorIs(t, err, rpctypes.ErrPermissionDenied)
	_, err = rootF1.MemberRemove(ctx, add.Member.ID)
	require.NoError(t, err)

	t.Logf("Step 8: a token takes precedence over the certificate: the alice certificate logged in as root acts as root")
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{fol.tlsEndpoint()}, DialTimeout: 5 * time.Second,
		TLS: tlsClientConfig(t, ca, &aliceF), Username: "root", Password: "rootpw", Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	got, err = cli.Get(ctx, "/other/x")
	require.NoError(t, err)
	require.Equal(t, "secret", string(got.Kvs[0].Value))

	t.Logf("Step 9: Lock and Election run as the alice certificate: her prefix works, another is refused")
	lc := v3lockpb.NewLockClient(alice.ActiveConnection())
	lk, err := lc.Lock(ctx, &v3lockpb.LockRequest{Name: []byte("/app/lk"), Lease: int64(g.ID)})
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("/app/lk/%x", int64(g.ID)), string(lk.Key))
	_, err = lc.Unlock(ctx, &v3lockpb.UnlockRequest{Key: lk.Key})
	require.NoError(t, err)
	_, err = lc.Lock(ctx, &v3lockpb.LockRequest{Name: []byte("/other/lk"), Lease: int64(g.ID)})
	require.ErrorContains(t, err, rpctypes.ErrPermissionDenied.Error())
	ec := epb.NewElectionClient(alice.ActiveConnection())
	camp, err := ec.Campaign(ctx, &epb.CampaignRequest{Name: []byte("/app/el"), Lease: int64(g.ID), Value: []byte("alice")})
	require.NoError(t, err)
	ld, err := ec.Leader(ctx, &epb.LeaderRequest{Name: []byte("/app/el")})
	require.NoError(t, err)
	require.Equal(t, "alice", string(ld.Kv.Value))
	_, err = ec.Resign(ctx, &epb.ResignRequest{Leader: camp.Leader})
	require.NoError(t, err)
	_, err = ec.Campaign(ctx, &epb.CampaignRequest{Name: []byte("/other/el"), Lease: int64(g.ID), Value: []byte("alice")})
	require.ErrorContains(t, err, rpctypes.ErrPermissionDenied.Error())

	t.Logf("Step 10: the JSON gateway refuses a request with a named certificate, as etcd, rather than run it as another user")
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsClientConfig(t, ca, &aliceF)}}
	resp, err := hc.Post(fol.clientURL+"/v3/kv/range", "application/json", strings.NewReader(`{"key":"L2FwcC94"}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(body))
	require.Equal(t, "CommonName of client sending a request against gateway will be ignored and not used as expected\n", string(body))
	resp, err = hc.Get(fol.clientURL + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "paths outside /v3/ are not concerned")
}
