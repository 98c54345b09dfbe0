package main

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// withServeContext runs fn on a serve context parsed from args (serve's
// real flags), instead of starting a member.
func withServeContext(t *testing.T, fn func(c *cli.Context) error, args ...string) error {
	t.Helper()
	cmd := serveCommand()
	cmd.Action = fn
	app := &cli.App{Name: "metastore", Writer: os.Stderr, ErrWriter: os.Stderr, Commands: []*cli.Command{cmd},
		ExitErrHandler: func(*cli.Context, error) {}}
	return app.Run(append([]string{"metastore", "serve"}, args...))
}

// TestEtcdFlags_TLSVersions: etcd's --tls-min-version, --tls-max-version
// and --cipher-suites are parsed and checked as etcd checks them.
func TestEtcdFlags_TLSVersions(t *testing.T) {
	type want struct {
		min, max uint16
		suites   []uint16
		err      string
	}
	cases := []struct {
		args []string
		want want
	}{
		{nil, want{min: tls.VersionTLS12}},
		{[]string{"--tls-min-version", "TLS1.3"}, want{min: tls.VersionTLS13}},
		{[]string{"--tls-max-version", "TLS1.2"}, want{min: tls.VersionTLS12, max: tls.VersionTLS12}},
		{[]string{"--cipher-suites", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"},
			want{min: tls.VersionTLS12, suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}}},
		{[]string{"--tls-min-version", "TLS1.1"}, want{err: `--tls-min-version "TLS1.1": want TLS1.2 or TLS1.3`}},
		{[]string{"--tls-min-version", "TLS1.3", "--tls-max-version", "TLS1.2"}, want{err: "--tls-min-version TLS1.3 is above --tls-max-version TLS1.2"}},
		{[]string{"--tls-min-version", "TLS1.3", "--cipher-suites", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}, want{err: "--cipher-suites cannot be set when only TLS 1.3 is allowed"}},
		{[]string{"--cipher-suites", "TLS_RSA_WITH_RC4_128_SHA"}, want{err: `--cipher-suites: unknown or insecure cipher suite "TLS_RSA_WITH_RC4_128_SHA"`}},
	}
	for _, tc := range cases {
		t.Logf("Step 1: parse serve %v", tc.args)
		var got want
		err := withServeContext(t, func(c *cli.Context) error {
			var err error
			got.min, got.max, got.suites, err = tlsVersions(c)
			return err
		}, tc.args...)
		t.Logf("Step 2: verify the versions, suites or error")
		if tc.want.err != "" {
			require.ErrorContains(t, err, tc.want.err, tc.args)
			continue
		}
		require.NoError(t, err, tc.args)
		require.Equal(t, tc.want, got, tc.args)
	}
}

// TestEtcdFlags_Logger: --logger takes zap only; --log-outputs maps
// default and systemd/journal to stderr and writes to files.
func TestEtcdFlags_Logger(t *testing.T) {
	t.Logf("Step 1: outputs as etcd names them")
	outs, err := logOutputs("default,stdout, systemd/journal,/tmp/x.log")
	require.NoError(t, err)
	require.Equal(t, []string{"stderr", "stdout", "/tmp/x.log"}, outs)
	_, err = logOutputs(" , ")
	require.ErrorContains(t, err, "--log-outputs is empty")

	t.Logf("Step 2: --logger capnslog is refused")
	err = withServeContext(t, func(c *cli.Context) error { _, err := newLogger(c); return err }, "--logger", "capnslog")
	require.ErrorContains(t, err, `--logger "capnslog": want zap`)

	t.Logf("Step 3: a file output gets the log lines")
	file := filepath.Join(t.TempDir(), "m.log")
	err = withServeContext(t, func(c *cli.Context) error {
		lg, err := newLogger(c)
		if err != nil {
			return err
		}
		lg.Info("hello from the test")
		return lg.Sync()
	}, "--log-outputs", file)
	require.NoError(t, err)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.True(t, strings.Contains(string(b), "hello from the test"), string(b))
}

// TestEtcdFlags_Defaults: the new flags default to etcd's values, and
// etcd's name of the HTTP-only URLs flag is accepted.
func TestEtcdFlags_Defaults(t *testing.T) {
	t.Logf("Step 1: parse serve without flags, and with --listen-client-http-urls")
	var pre, gw bool
	var minTime, interval, timeout time.Duration
	require.NoError(t, withServeContext(t, func(c *cli.Context) error {
		pre, gw = c.Bool("pre-vote"), c.Bool("enable-grpc-gateway")
		minTime, interval, timeout = c.Duration("grpc-keepalive-min-time"), c.Duration("grpc-keepalive-interval"), c.Duration("grpc-keepalive-timeout")
		return nil
	}))
	var httpURLs string
	require.NoError(t, withServeContext(t, func(c *cli.Context) error {
		httpURLs = c.String("listen-http-urls")
		return nil
	}, "--listen-client-http-urls", "http://127.0.0.1:9999"))

	t.Logf("Step 2: verify etcd's defaults and the alias")
	require.True(t, pre)
	require.True(t, gw)
	require.Equal(t, []time.Duration{5 * time.Second, 2 * time.Hour, 20 * time.Second}, []time.Duration{minTime, interval, timeout})
	require.Equal(t, "http://127.0.0.1:9999", httpURLs)
}

// TestEtcdFlags_V2Deprecation: etcd 3.7's --v2-deprecation takes a phase
// name and ignores it with etcd's warning; another value is etcd's error.
func TestEtcdFlags_V2Deprecation(t *testing.T) {
	check := func(args ...string) (string, error) {
		core, logs := observer.New(zap.WarnLevel)
		err := withServeContext(t, func(c *cli.Context) error { return checkV2Deprecation(c, zap.New(core)) }, args...)
		var msgs []string
		for _, e := range logs.All() {
			msgs = append(msgs, e.Message)
		}
		return strings.Join(msgs, "\n"), err
	}
	t.Logf("Step 1: the default, and each of etcd's phases")
	warned, err := check()
	require.NoError(t, err)
	require.Empty(t, warned, "nothing set, nothing said")
	for _, v := range []string{"not-yet", "write-only", "write-only-drop-data", "gone"} {
		warned, err := check("--v2-deprecation", v)
		require.NoError(t, err, v)
		require.Equal(t, "--v2-deprecation is deprecated and scheduled for removal in v3.8. The default value is enforced, ignoring user input.", warned, v)
	}
	t.Logf("Step 2: another value is refused with etcd's words")
	_, err = check("--v2-deprecation", "foo")
	require.EqualError(t, err, `invalid value "foo" for flag --v2-deprecation: invalid value "foo"`)
}

// TestEtcdFlags_DowngradeCheckTime: etcd's --downgrade-check-time parses
// with etcd's default (MetaStore has nothing for it to do: operations.md).
func TestEtcdFlags_DowngradeCheckTime(t *testing.T) {
	t.Logf("Step 1: the default, and a value set")
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{{nil, 5 * time.Second}, {[]string{"--downgrade-check-time", "1m"}, time.Minute}} {
		var got time.Duration
		require.NoError(t, withServeContext(t, func(c *cli.Context) error {
			got = c.Duration("downgrade-check-time")
			return nil
		}, tc.args...))
		require.Equal(t, tc.want, got, tc.args)
	}
}
