package test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hostRequest sends a gateway range to base naming host in its Host header
// and returns the status and body.
func hostRequest(t *testing.T, hc *http.Client, base, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/v3/kv/range", strings.NewReader(`{"key":"YQ=="}`))
	require.NoError(t, err)
	req.Host = host
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// TestHostWhitelist_RefusesOtherHostsOverPlainHTTP: with --host-whitelist a
// member answers a plain-HTTP request that names another host with etcd's
// 421 (its DNS-rebinding guard), serves the listed hosts, and keeps serving
// gRPC. Runs against etcd too (METASTORE_TEST_ETCD_BIN).
func TestHostWhitelist_RefusesOtherHostsOverPlainHTTP(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: start one member with --host-whitelist localhost,127.0.0.1")
	c := startAPICluster(t, engineMemory, 1, "--host-whitelist", "localhost,127.0.0.1")
	m := c.members[0]
	hc := &http.Client{Timeout: 5 * time.Second}

	t.Logf("Step 2: the listed hosts are served, with the port or without")
	for _, host := range []string{strings.TrimPrefix(m.clientURL, "http://"), "localhost", "localhost:2379"} {
		code, body := hostRequest(t, hc, m.clientURL, host)
		require.Equal(t, 200, code, "%s: %s", host, body)
	}

	t.Logf("Step 3: another host is refused with 421 and the fix in the text")
	code, body := hostRequest(t, hc, m.clientURL, "rebind.example:2379")
	require.Equal(t, http.StatusMisdirectedRequest, code)
	require.Contains(t, body, "the Host header was unrecognized")
	require.Contains(t, body, `--host-whitelist "rebind.example"`)

	t.Logf("Step 4: gRPC clients are not concerned")
	cli := newClient(t, m.endpoint())
	mustPut(t, cli, "hw/k", "v")
}

// TestHostWhitelist_TLSIsNotChecked: over https the white list does not
// apply (the certificate names the host), as in etcd.
func TestHostWhitelist_TLSIsNotChecked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t, "test CA")
	srv := writeTLSFiles(t, dir, "server", ca, 10)

	t.Logf("Step 1: start a member with an https client URL and --host-whitelist localhost")
	cfg := tlsClientConfig(t, ca, nil)
	m := startTLSMember(t, cfg, "--cert-file", srv.cert, "--key-file", srv.key, "--host-whitelist", "localhost")

	t.Logf("Step 2: a request naming another host is served")
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	code, body := hostRequest(t, hc, m.clientURL, "rebind.example")
	require.Equal(t, 200, code, body)
}
