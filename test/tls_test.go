package test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// testCA issues certificates for the TLS tests, made with crypto/x509.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate (for server and client use, valid for
// 127.0.0.1 and localhost) and its key, in PEM.
func (ca *testCA) issue(t *testing.T, cn string, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// tlsFiles are one party's PEM files on disk.
type tlsFiles struct{ ca, cert, key string }

// writeTLSFiles issues a certificate from ca and writes it, its key and the
// CA to dir/<name>.pem, dir/<name>-key.pem and dir/<name>-ca.pem.
func writeTLSFiles(t *testing.T, dir, name string, ca *testCA, serial int64) tlsFiles {
	t.Helper()
	c, k := ca.issue(t, name, serial)
	f := tlsFiles{ca: filepath.Join(dir, name+"-ca.pem"), cert: filepath.Join(dir, name+".pem"), key: filepath.Join(dir, name+"-key.pem")}
	require.NoError(t, os.WriteFile(f.ca, ca.pem, 0o644))
	require.NoError(t, os.WriteFile(f.cert, c, 0o644))
	require.NoError(t, os.WriteFile(f.key, k, 0o600))
	return f
}

// tlsClientConfig trusts ca and presents f's certificate when f is given.
func tlsClientConfig(t *testing.T, ca *testCA, f *tlsFiles) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if f != nil {
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		require.NoError(t, err)
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

func newTLSClient(t *testing.T, cfg *tls.Config, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, TLS: cfg, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli
}

// startTLSMember starts a single member whose client URL is https with the
// given extra flags, and waits until a client with cfg sees a leader.
func startTLSMember(t *testing.T, cfg *tls.Config, flags ...string) *member {
	t.Helper()
	ports := freePorts(t, 2)
	m := &member{t: t, name: "m1", engine: engineMemory, dataDir: filepath.Join(t.TempDir(), "m1"),
		clientURL: fmt.Sprintf("https://127.0.0.1:%d", ports[0]), peerURL: fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
	m.logPath = m.dataDir + ".log"
	m.args = append([]string{"serve", "--name", m.name, "--data-dir", m.dataDir, "--engine", engineMemory,
		"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", m.name + "=" + m.peerURL, "--unsafe-no-fsync"}, flags...)
	m.start()
	t.Cleanup(func() {
		m.kill()
		if t.Failed() {
			m.dumpLog()
		}
	})
	cli := newTLSClient(t, cfg, m.tlsEndpoint())
	waitFor(t, 20*time.Second, "the TLS member to lead", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := cli.Status(ctx, m.tlsEndpoint())
		return err == nil && st.Leader != 0
	})
	return m
}

func (m *member) tlsEndpoint() string { return strings.TrimPrefix(m.clientURL, "https://") }

// TestTLS_ClientCertAuth: a member with https client URLs and
// --client-cert-auth serves clients with a certificate from its trusted CA
// over gRPC and HTTP, and refuses clients without one, clients with another
// CA's certificate and plaintext clients.
func TestTLS_ClientCertAuth(t *testing.T) {
	dir := t.TempDir()
	ca, other := newTestCA(t, "test CA"), newTestCA(t, "other CA")
	srv := writeTLSFiles(t, dir, "server", ca, 10)
	good := writeTLSFiles(t, dir, "alice", ca, 11)
	bad := writeTLSFiles(t, dir, "mallory", other, 12)

	t.Logf("Step 1: start a member with --cert-file, --key-file, --trusted-ca-file and --client-cert-auth on an https client URL")
	m := startTLSMember(t, tlsClientConfig(t, ca, &good), "--cert-file", srv.cert, "--key-file", srv.key,
		"--trusted-ca-file", srv.ca, "--client-cert-auth")

	t.Logf("Step 2: a clientv3 client with the CA and a client certificate puts and gets over TLS")
	cli := newTLSClient(t, tlsClientConfig(t, ca, &good), m.tlsEndpoint())
	_, err := cli.Put(ctxT(t, 5*time.Second), "tls/k", "v1")
	require.NoError(t, err)
	r, err := cli.Get(ctxT(t, 5*time.Second), "tls/k")
	require.NoError(t, err)
	require.Len(t, r.Kvs, 1)
	require.Equal(t, "v1", string(r.Kvs[0].Value))

	t.Logf("Step 3: the HTTP API answers on the same https port (HTTP/1.1 negotiated by ALPN)")
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsClientConfig(t, ca, &good)}}
	resp, err := hc.Get(m.clientURL + "/health")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, string(body))
	require.Contains(t, string(body), `"health":"true"`)

	t.Logf("Step 4: a client with the CA but no certificate is refused")
	refused := func(cfg *tls.Config, key string) {
		t.Helper()
		c := newTLSClient(t, cfg, m.tlsEndpoint())
		_, err := c.Put(ctxT(t, 3*time.Second), key, "x")
		require.Error(t, err)
		r, err := cli.Get(ctxT(t, 5*time.Second), key)
		require.NoError(t, err)
		require.Empty(t, r.Kvs)
	}
	refused(tlsClientConfig(t, ca, nil), "tls/nocert")

	t.Logf("Step 5: a client whose certificate another CA signed is refused")
	refused(tlsClientConfig(t, ca, &bad), "tls/othercert")

	t.Logf("Step 6: a plaintext gRPC client is refused")
	plain, err := clientv3.New(clientv3.Config{Endpoints: []string{m.tlsEndpoint()}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer plain.Close()
	_, err = plain.Put(ctxT(t, 3*time.Second), "tls/plain", "x")
	require.Error(t, err)

	t.Logf("Step 7: a plaintext HTTP request gets no HTTP answer: the connection is closed in the handshake")
	conn, err := net.Dial("tcp", m.tlsEndpoint())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	got, err := io.ReadAll(conn)
	require.NoError(t, err, "the member closes the connection (not a timeout)")
	require.False(t, bytes.HasPrefix(got, []byte("HTTP/")), "plaintext answered: %q", got)

	t.Logf("Step 8: metastore member list with etcdctl's --cacert/--cert/--key")
	code, out, errOut := runCLI(t, 20*time.Second, "member", "list", "--endpoints", m.tlsEndpoint(),
		"--cacert", srv.ca, "--cert", good.cert, "--key", good.key, "-w", "simple")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, ", started, m1, "+m.peerURL+", "+m.clientURL)

	t.Logf("Step 9: the same command without a client certificate fails")
	code, _, _ = runCLI(t, 20*time.Second, "member", "list", "--endpoints", m.tlsEndpoint(),
		"--cacert", srv.ca, "--dial-timeout", "1s", "--command-timeout", "2s")
	require.NotEqual(t, 0, code)
}

// TestTLS_CertificateReload: replacing the server certificate files is
// seen by the next connection, without a restart.
func TestTLS_CertificateReload(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "test CA")
	srv := writeTLSFiles(t, dir, "server", ca, 100)
	cfg := tlsClientConfig(t, ca, nil)

	t.Logf("Step 1: start a TLS member; a new connection sees the certificate with serial 100")
	m := startTLSMember(t, cfg, "--cert-file", srv.cert, "--key-file", srv.key)
	serial := func() int64 {
		c, err := tls.Dial("tcp", m.tlsEndpoint(), cfg)
		require.NoError(t, err)
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	require.Equal(t, int64(100), serial())
	cli := newTLSClient(t, cfg, m.tlsEndpoint())
	_, err := cli.Put(ctxT(t, 5*time.Second), "reload/k", "before")
	require.NoError(t, err)

	t.Logf("Step 2: replace the certificate and key files (rename into place) with serial 200")
	c, k := ca.issue(t, "server", 200)
	for path, b := range map[string][]byte{srv.key: k, srv.cert: c} {
		tmp := path + ".new"
		require.NoError(t, os.WriteFile(tmp, b, 0o600))
		require.NoError(t, os.Rename(tmp, path))
	}

	t.Logf("Step 3: a new connection gets serial 200; the member was not restarted")
	waitFor(t, 10*time.Second, "the new certificate", func() bool { return serial() == 200 })
	require.True(t, m.running())
	cli2 := newTLSClient(t, cfg, m.tlsEndpoint())
	r, err := cli2.Get(ctxT(t, 5*time.Second), "reload/k")
	require.NoError(t, err)
	require.Len(t, r.Kvs, 1)
	require.Equal(t, "before", string(r.Kvs[0].Value))
}

// TestTLS_PeerCluster: three members with https peer URLs and
// --peer-client-cert-auth replicate; a member whose peer certificate
// another CA signed cannot join.
func TestTLS_PeerCluster(t *testing.T) {
	dir := t.TempDir()
	ca, other := newTestCA(t, "peer CA"), newTestCA(t, "other CA")
	const n = 3
	ports := freePorts(t, 2*n)
	c := &cluster{t: t, engine: engineMemory}
	var initial []string
	for i := 0; i < n; i++ {
		m := &member{t: t, name: fmt.Sprintf("m%d", i+1), engine: engineMemory,
			dataDir:   filepath.Join(t.TempDir(), fmt.Sprintf("m%d", i+1)),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			peerURL:   fmt.Sprintf("https://127.0.0.1:%d", ports[2*i+1])}
		m.logPath = m.dataDir + ".log"
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	peerArgs := func(m *member, f tlsFiles) []string {
		return []string{"serve", "--name", m.name, "--data-dir", m.dataDir, "--engine", engineMemory,
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster-token", "tls-test", "--unsafe-no-fsync",
			"--peer-cert-file", f.cert, "--peer-key-file", f.key, "--peer-trusted-ca-file", f.ca, "--peer-client-cert-auth"}
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			m.kill()
			if t.Failed() {
				m.dumpLog()
			}
		}
	})

	t.Logf("Step 1: start 3 members with https peer URLs, peer certificates from one CA and --peer-client-cert-auth")
	for i, m := range c.members {
		f := writeTLSFiles(t, dir, m.name, ca, int64(i+1))
		m.args = append(peerArgs(m, f), "--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new")
		m.start()
	}
	c.waitReady(30 * time.Second)

	t.Logf("Step 2: a write on one member is read on every member (serializable reads)")
	cli := newClient(t, c.members[0].endpoint())
	_, err := cli.Put(ctxT(t, 5*time.Second), "peer/k", "replicated")
	require.NoError(t, err)
	for _, m := range c.members {
		mc := newClient(t, m.endpoint())
		waitFor(t, 10*time.Second, m.name+" to have peer/k", func() bool {
			r, err := mc.Get(ctxT(t, 2*time.Second), "peer/k", clientv3.WithSerializable())
			return err == nil && len(r.Kvs) == 1 && string(r.Kvs[0].Value) == "replicated"
		})
	}

	t.Logf("Step 3: add a learner whose peer certificate (and trusted CA) is another CA's, and start it")
	bp := freePorts(t, 2)
	badM := &member{t: t, name: "bad", engine: engineMemory, dataDir: filepath.Join(t.TempDir(), "bad"),
		clientURL: fmt.Sprintf("http://127.0.0.1:%d", bp[0]), peerURL: fmt.Sprintf("https://127.0.0.1:%d", bp[1])}
	badM.logPath = badM.dataDir + ".log"
	add, err := reconfigure(t, func(ctx context.Context) (*clientv3.MemberAddResponse, error) {
		return cli.MemberAddAsLearner(ctx, []string{badM.peerURL})
	})
	require.NoError(t, err)
	bf := writeTLSFiles(t, dir, "bad", other, 99)
	badM.args = append(peerArgs(badM, bf), "--initial-cluster", strings.Join(append(initial, "bad="+badM.peerURL), ","),
		"--initial-cluster-state", "existing", "--member-id", fmt.Sprintf("%x", add.Member.ID))
	c.members = append(c.members, badM)
	badM.start()

	t.Logf("Step 4: writes still work while the bad member tries to connect")
	for i := 0; i < 20; i++ {
		_, err := cli.Put(ctxT(t, 5*time.Second), fmt.Sprintf("peer/after/%02d", i), "x")
		require.NoError(t, err)
	}

	t.Logf("Step 5: the bad member never starts: unnamed in the member list, and it never serves a read")
	badCli := newClient(t, badM.endpoint())
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		ml, err := cli.MemberList(ctxT(t, 5*time.Second))
		require.NoError(t, err)
		require.Len(t, ml.Members, 4)
		for _, mm := range ml.Members {
			if mm.ID == add.Member.ID {
				require.Empty(t, mm.Name, "the bad member published its attributes")
				require.Empty(t, mm.ClientURLs)
			}
		}
		// Its client listener is open (serve opens it before raft starts)
		// but served only once the member published itself: never here.
		_, err = badCli.Get(ctxT(t, 300*time.Millisecond), "peer/k", clientv3.WithSerializable())
		require.Error(t, err, "the bad member serves clients")
	}
	require.True(t, badM.running(), "the bad member keeps trying")
}

// newTLSMembers prepares n memory members (not started) with https client
// URLs and peerScheme peer URLs on free ports, killed (their logs dumped
// on failure) when the test ends; initial is their --initial-cluster.
func newTLSMembers(t *testing.T, n int, peerScheme string) (ms []*member, initial string) {
	t.Helper()
	ports := freePorts(t, 2*n)
	var peers []string
	for i := 0; i < n; i++ {
		m := &member{t: t, name: fmt.Sprintf("m%d", i+1), engine: engineMemory,
			dataDir:   filepath.Join(t.TempDir(), fmt.Sprintf("m%d", i+1)),
			clientURL: fmt.Sprintf("https://127.0.0.1:%d", ports[2*i]),
			peerURL:   fmt.Sprintf("%s://127.0.0.1:%d", peerScheme, ports[2*i+1])}
		m.logPath = m.dataDir + ".log"
		ms = append(ms, m)
		peers = append(peers, m.name+"="+m.peerURL)
	}
	t.Cleanup(func() {
		for _, m := range ms {
			m.kill()
			if t.Failed() {
				m.dumpLog()
			}
		}
	})
	return ms, strings.Join(peers, ",")
}

// TestTLS_ClusterForwarding: three members with TLS on both sides and
// certificate authentication on both; a follower forwards lease requests
// to the leader's https client URL with its own certificate.
func TestTLS_ClusterForwarding(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "cluster CA")
	const n = 3
	ms, initial := newTLSMembers(t, n, "https")

	t.Logf("Step 1: start 3 members, https client and peer URLs, --client-cert-auth and --peer-client-cert-auth")
	for i, m := range ms {
		f := writeTLSFiles(t, dir, m.name, ca, int64(i+1))
		m.args = []string{"serve", "--name", m.name, "--data-dir", m.dataDir, "--engine", engineMemory,
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", initial, "--initial-cluster-token", "tls-fwd", "--unsafe-no-fsync",
			"--cert-file", f.cert, "--key-file", f.key, "--trusted-ca-file", f.ca, "--client-cert-auth",
			"--peer-cert-file", f.cert, "--peer-key-file", f.key, "--peer-trusted-ca-file", f.ca, "--peer-client-cert-auth"}
		m.start()
	}
	alice := writeTLSFiles(t, dir, "alice", ca, 50)
	cfg := tlsClientConfig(t, ca, &alice)
	clis := make([]*clientv3.Client, n)
	for i, m := range ms {
		clis[i] = newTLSClient(t, cfg, m.tlsEndpoint())
	}
	var follower int
	waitFor(t, 30*time.Second, "every member to know the same leader", func() bool {
		var leader uint64
		for i, m := range ms {
			st, err := clis[i].Status(ctxT(t, time.Second), m.tlsEndpoint())
			if err != nil || st.Leader == 0 || (leader != 0 && st.Leader != leader) {
				return false
			}
			leader = st.Leader
			if st.Leader != st.Header.MemberId {
				follower = i
			}
		}
		return true
	})

	t.Logf("Step 2: on follower %s: grant a lease, keep it alive and ask its TTL (forwarded to the leader over TLS)", ms[follower].name)
	fc := clis[follower]
	g, err := fc.Grant(ctxT(t, 5*time.Second), 30)
	require.NoError(t, err)
	ka, err := fc.KeepAliveOnce(ctxT(t, 5*time.Second), g.ID)
	require.NoError(t, err)
	require.Equal(t, int64(30), ka.TTL)
	ttl, err := fc.TimeToLive(ctxT(t, 5*time.Second), g.ID)
	require.NoError(t, err)
	require.Equal(t, int64(30), ttl.GrantedTTL)
	require.Greater(t, ttl.TTL, int64(25))

	t.Logf("Step 3: a key with the lease, put on the follower, is read on every member")
	_, err = fc.Put(ctxT(t, 5*time.Second), "fwd/k", "v", clientv3.WithLease(g.ID))
	require.NoError(t, err)
	for i, m := range ms {
		waitFor(t, 10*time.Second, m.name+" to have fwd/k", func() bool {
			r, err := clis[i].Get(ctxT(t, 2*time.Second), "fwd/k", clientv3.WithSerializable())
			return err == nil && len(r.Kvs) == 1 && r.Kvs[0].Lease == int64(g.ID)
		})
	}
}

// TestTLS_AutoTLS: --auto-tls and --peer-auto-tls generate self-signed
// certificates into the data directory; a client that skips verification
// is served, one that verifies is refused.
func TestTLS_AutoTLS(t *testing.T) {
	ports := freePorts(t, 2)
	m := &member{t: t, name: "m1", engine: engineMemory, dataDir: filepath.Join(t.TempDir(), "m1"),
		clientURL: fmt.Sprintf("https://127.0.0.1:%d", ports[0]), peerURL: fmt.Sprintf("https://127.0.0.1:%d", ports[1])}
	m.logPath = m.dataDir + ".log"
	m.args = []string{"serve", "--name", m.name, "--data-dir", m.dataDir, "--engine", engineMemory,
		"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", m.name + "=" + m.peerURL, "--unsafe-no-fsync", "--auto-tls", "--peer-auto-tls"}
	t.Logf("Step 1: start a member with --auto-tls and --peer-auto-tls on https URLs")
	m.start()
	t.Cleanup(func() {
		m.kill()
		if t.Failed() {
			m.dumpLog()
		}
	})
	skip := &tls.Config{InsecureSkipVerify: true}
	cli := newTLSClient(t, skip, m.tlsEndpoint())
	waitFor(t, 20*time.Second, "the member to lead", func() bool {
		st, err := cli.Status(ctxT(t, time.Second), m.tlsEndpoint())
		return err == nil && st.Leader != 0
	})

	t.Logf("Step 2: the certificates are in <data-dir>/fixtures/{client,peer}")
	for _, side := range []string{"client", "peer"} {
		for _, f := range []string{"cert.pem", "key.pem"} {
			_, err := os.Stat(filepath.Join(m.dataDir, "fixtures", side, f))
			require.NoError(t, err)
		}
	}

	t.Logf("Step 3: put with verification skipped; the CLI with --insecure-skip-tls-verify")
	_, err := cli.Put(ctxT(t, 5*time.Second), "auto/k", "v")
	require.NoError(t, err)
	code, out, errOut := runCLI(t, 20*time.Second, "endpoint", "health", "--endpoints", m.clientURL, "--insecure-skip-tls-verify", "-w", "json")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"health":true`)

	t.Logf("Step 4: a client that verifies the certificate (system roots) is refused")
	code, _, _ = runCLI(t, 20*time.Second, "endpoint", "health", "--endpoints", m.clientURL,
		"--dial-timeout", "1s", "--command-timeout", "2s")
	require.NotEqual(t, 0, code)
}

// TestTLS_SecurityGuide runs docs/security.md's single-member TLS commands
// as written, with certificates made here, and ports replaced by free ones.
func TestTLS_SecurityGuide(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "guide CA")
	srv := writeTLSFiles(t, dir, "server", ca, 1)
	cl := writeTLSFiles(t, dir, "client", ca, 2)
	for from, to := range map[string]string{srv.ca: "ca.pem", srv.cert: "server.pem", srv.key: "server-key.pem",
		cl.cert: "client.pem", cl.key: "client-key.pem"} {
		require.NoError(t, os.Rename(from, filepath.Join(dir, to)))
	}
	ports := freePorts(t, 2)
	replacer := strings.NewReplacer("127.0.0.1:2379", fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"127.0.0.1:2380", fmt.Sprintf("127.0.0.1:%d", ports[1]))
	cmds := securityGuideCommands(t, "### A single member with TLS")
	require.NotEmpty(t, cmds)
	var m *member
	for i, line := range cmds {
		line = replacer.Replace(line)
		args := strings.Fields(line)
		for j, a := range args { // the guide's relative paths live in dir
			if strings.HasSuffix(a, ".pem") || strings.HasSuffix(a, ".metastore") {
				args[j] = filepath.Join(dir, a)
			}
		}
		t.Logf("Step %d: %s", i+1, line)
		switch {
		case args[0] == "metastore" && args[1] == "serve":
			m = &member{t: t, name: "guide", engine: engineRocksDB, dataDir: filepath.Join(dir, "m1.metastore"),
				clientURL: fmt.Sprintf("https://127.0.0.1:%d", ports[0])}
			m.logPath = filepath.Join(dir, "m1.log")
			m.args = args[1:]
			m.start()
			t.Cleanup(func() {
				m.kill()
				if t.Failed() {
					m.dumpLog()
				}
			})
			cfg := tlsClientConfig(t, ca, &cl)
			c := newTLSClient(t, cfg, m.tlsEndpoint())
			waitFor(t, 20*time.Second, "the guide's member to lead", func() bool {
				st, err := c.Status(ctxT(t, time.Second), m.tlsEndpoint())
				return err == nil && st.Leader != 0
			})
		case args[0] == "metastore":
			cmd := exec.Command(binPath, args[1:]...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			t.Logf("%s", out)
		case args[0] == "curl":
			if _, err := exec.LookPath("curl"); err != nil {
				t.Logf("no curl: skipped")
				continue
			}
			cmd := exec.Command("curl", append([]string{"-sS", "--max-time", "5"}, args[1:]...)...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Contains(t, string(out), `"health":"true"`)
		default:
			t.Fatalf("unexpected command %q", line)
		}
	}
}

// securityGuideCommands are the ```sh lines under heading in
// docs/security.md (up to the next heading of any level), continuation
// lines joined.
func securityGuideCommands(t *testing.T, heading string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "security.md"))
	require.NoError(t, err)
	doc := string(b)
	i := strings.Index(doc, "\n"+heading+"\n")
	require.GreaterOrEqual(t, i, 0, "heading %q", heading)
	doc = doc[i+len(heading)+2:]
	if j := strings.Index(doc, "\n#"); j >= 0 {
		doc = doc[:j]
	}
	var cmds []string
	in, cur := false, ""
	for _, line := range strings.Split(doc, "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in && strings.TrimSpace(line) != "" && !strings.HasPrefix(strings.TrimSpace(line), "#"):
			cur += strings.TrimSuffix(strings.TrimSpace(line), "\\")
			if strings.HasSuffix(strings.TrimSpace(line), "\\") {
				cur += " "
				continue
			}
			cmds = append(cmds, cur)
			cur = ""
		}
	}
	return cmds
}
