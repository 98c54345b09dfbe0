package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"golang.org/x/sys/unix"
)

// etcd's serve flags beyond the core ones (cmd_etcdflags.go), each shown
// doing what it does in etcd.

// pingsDrawGoAway opens an HTTP/2 connection to a member's client port
// as a gRPC client would, keeps one Watch call open (keep-alive rules
// differ without a stream), sends n pings every interval, and reports
// whether the member answered with a GOAWAY saying too_many_pings. (A
// clientv3 client cannot show it: gRPC raises its ping interval to 10 s.)
func pingsDrawGoAway(t *testing.T, endpoint string, n int, every time.Duration) bool {
	t.Helper()
	conn, err := net.DialTimeout("tcp", endpoint, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte(http2.ClientPreface))
	require.NoError(t, err)
	fr := http2.NewFramer(conn, conn)
	require.NoError(t, fr.WriteSettings())
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/etcdserverpb.Watch/Watch"},
		{":authority", endpoint}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		require.NoError(t, enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}))
	}
	require.NoError(t, fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}))

	goaway := make(chan string, 1)
	go func() { // the reader: settings acked, a GOAWAY reported
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = fr.WriteSettingsAck()
				}
			case *http2.GoAwayFrame:
				goaway <- string(f.DebugData())
				return
			}
		}
	}()
	for i := 0; i < n; i++ {
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			break
		}
		time.Sleep(every)
	}
	select {
	case d := <-goaway:
		return strings.Contains(d, "too_many_pings")
	case <-time.After(2 * time.Second):
		return false
	}
}

// TestEtcdFlags_GRPCKeepAliveMinTime: a client pinging every 100 ms is told
// too_many_pings by a member at etcd's default minimum (5 s), and kept by
// one started with --grpc-keepalive-min-time 50ms.
func TestEtcdFlags_GRPCKeepAliveMinTime(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: one member at the default, one with --grpc-keepalive-min-time 50ms")
	def := startMember(t, engineMemory)
	lax := startMember(t, engineMemory, memberOpts{extraFlags: []string{"--grpc-keepalive-min-time", "50ms"}})

	t.Logf("Step 2: ping each 6 times, 100 ms apart, with a call open")
	defAway := pingsDrawGoAway(t, def.endpoint(), 6, 100*time.Millisecond)
	laxAway := pingsDrawGoAway(t, lax.endpoint(), 6, 100*time.Millisecond)

	t.Logf("Step 3: the default member sent GOAWAY too_many_pings, the other did not")
	require.True(t, defAway)
	require.False(t, laxAway)
}

// TestEtcdFlags_PreVoteAndListenerFlags: --pre-vote=false elects without a
// pre-vote round; --listen-client-http-urls serves the HTTP API;
// --enable-grpc-gateway=false turns /v3/ off (REST stays);
// --socket-reuse-port lets another socket bind the client port.
func TestEtcdFlags_PreVoteAndListenerFlags(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: start a member with the flags")
	httpPort := freePorts(t, 1)[0]
	httpURL := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	m := startMember(t, engineMemory, memberOpts{extraFlags: []string{"--pre-vote=false",
		"--listen-client-http-urls", httpURL, "--enable-grpc-gateway=false", "--socket-reuse-port", "--socket-reuse-address"}})

	t.Logf("Step 2: its election had no pre-vote round")
	log, err := os.ReadFile(m.logPath)
	require.NoError(t, err)
	require.Contains(t, string(log), "became candidate")
	require.NotContains(t, string(log), "pre-candidate")

	t.Logf("Step 3: the HTTP-only URL serves; /v3/ is not found, REST works")
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(httpURL + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	resp, err = hc.Post(m.clientURL+"/v3/kv/range", "application/json", strings.NewReader(`{"key":"YQ=="}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 404, resp.StatusCode)
	req, _ := http.NewRequest("PUT", m.clientURL+"/v1/kv/a", strings.NewReader("1"))
	resp, err = hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	t.Logf("Step 4: a socket with SO_REUSEPORT binds the member's client port")
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) }); err != nil {
			return err
		}
		return serr
	}}
	l, err := lc.Listen(context.Background(), "tcp", m.endpoint())
	require.NoError(t, err)
	require.NoError(t, l.Close())
}

// TestEtcdFlags_TLSMinVersion: with --tls-min-version TLS1.3 a TLS 1.2
// client fails the handshake and a TLS 1.3 one is served.
func TestEtcdFlags_TLSMinVersion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t, "test CA")
	srv := writeTLSFiles(t, dir, "server", ca, 10)

	t.Logf("Step 1: start an https member with --tls-min-version TLS1.3")
	cfg := tlsClientConfig(t, ca, nil)
	m := startTLSMember(t, cfg, "--cert-file", srv.cert, "--key-file", srv.key, "--tls-min-version", "TLS1.3")

	t.Logf("Step 2: a client limited to TLS 1.2, then a TLS 1.3 one")
	old := cfg.Clone()
	old.MaxVersion = tls.VersionTLS12
	_, errOld := tls.Dial("tcp", m.tlsEndpoint(), old)
	conn, errNew := tls.Dial("tcp", m.tlsEndpoint(), cfg)

	t.Logf("Step 3: the first is refused, the second served over TLS 1.3")
	require.Error(t, errOld)
	require.NoError(t, errNew)
	require.Equal(t, uint16(tls.VersionTLS13), conn.ConnectionState().Version)
	conn.Close()
}

// TestEtcdFlags_MaxLearners: with --max-learners 2 a member takes a second
// learner, and refuses a third with etcd's error; with the default the
// second is refused (TestCluster_Membership, step 5). Runs against etcd
// too (METASTORE_TEST_ETCD_BIN).
func TestEtcdFlags_MaxLearners(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: one member with --max-learners 2")
	c := startAPICluster(t, engineMemory, 1, "--max-learners", "2")
	cli := newClient(t, c.members[0].endpoint())
	ports := freePorts(t, 3)

	t.Logf("Step 2: add three learners")
	var errs []error
	for _, p := range ports {
		_, err := cli.MemberAddAsLearner(ctxT(t, 5*time.Second), []string{fmt.Sprintf("http://127.0.0.1:%d", p)})
		errs = append(errs, err)
	}

	t.Logf("Step 3: two are members, the third is refused")
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.ErrorIs(t, errs[2], rpctypes.ErrTooManyLearners)
	ml, err := cli.MemberList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Len(t, ml.Members, 3)
}

// TestEtcdFlags_ClientCRL: with --client-crl-file a client whose
// certificate the list revokes is refused; another is served.
func TestEtcdFlags_ClientCRL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t, "test CA")
	srv := writeTLSFiles(t, dir, "server", ca, 10)
	good := writeTLSFiles(t, dir, "alice", ca, 11)
	bad := writeTLSFiles(t, dir, "mallory", ca, 12)

	t.Logf("Step 1: a CRL revoking serial 12; a member with --client-cert-auth and --client-crl-file")
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now(),
		NextUpdate:                time.Now().Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(12), RevocationTime: time.Now()}}}, ca.cert, ca.key)
	require.NoError(t, err)
	crl := dir + "/revoked.crl"
	require.NoError(t, os.WriteFile(crl, der, 0o644)) // DER, as etcd takes it too
	m := startTLSMember(t, tlsClientConfig(t, ca, &good), "--cert-file", srv.cert, "--key-file", srv.key,
		"--trusted-ca-file", srv.ca, "--client-cert-auth", "--client-crl-file", crl)

	t.Logf("Step 2: a request with each certificate over HTTPS")
	get := func(f *tlsFiles) error {
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsClientConfig(t, ca, f)}}
		resp, err := hc.Get(m.clientURL + "/health")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	errGood, errBad := get(&good), get(&bad)

	t.Logf("Step 3: alice is served, mallory's revoked certificate is refused")
	require.NoError(t, errGood)
	require.Error(t, errBad)
}

// TestEtcdFlags_Metrics: --metrics extensive adds etcd's gRPC latency
// histograms to /metrics; the default (basic) does not export them.
func TestEtcdFlags_Metrics(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: one member with --metrics extensive, one with the default")
	ext := startMember(t, engineMemory, memberOpts{extraFlags: []string{"--metrics", "extensive"}})
	basic := startMember(t, engineMemory)

	t.Logf("Step 2: a Range on each, then their /metrics")
	metrics := func(m *member) string {
		_, err := newClient(t, m.endpoint()).Get(ctxT(t, 5*time.Second), "k")
		require.NoError(t, err)
		resp, err := http.Get(m.clientURL + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	extOut, basicOut := metrics(ext), metrics(basic)

	t.Logf("Step 3: the histogram of Range is in the extensive member's metrics only")
	const series = `grpc_server_handling_seconds_count{grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} `
	require.Contains(t, extOut, series)
	require.NotContains(t, basicOut, "grpc_server_handling_seconds")
	require.Contains(t, basicOut, `grpc_server_handled_total{grpc_code="OK",grpc_method="Range"`)
}
