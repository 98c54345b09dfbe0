package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/metastore/metastore/raft"
	"github.com/metastore/metastore/server"
)

// TLS as etcd configures it: the client side (--cert-file, ...) secures the
// https client, HTTP and metrics URLs; the peer side (--peer-cert-file, ...)
// the https peer URLs. A URL's scheme decides: an https listener serves TLS
// only, an http one plaintext only. Certificates are re-read when their
// files change (raft/tls.go).

// tlsFlags are serve's TLS flags, etcd's names (serveFlags appends them).
func tlsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "cert-file", Usage: "path to the client server TLS certificate file"},
		&cli.StringFlag{Name: "key-file", Usage: "path to the client server TLS key file"},
		&cli.StringFlag{Name: "trusted-ca-file", Usage: "path to the client server TLS trusted CA certificate file"},
		&cli.BoolFlag{Name: "client-cert-auth", Usage: "require clients to present a certificate signed by --trusted-ca-file"},
		&cli.BoolFlag{Name: "auto-tls", Usage: "client TLS using a generated self-signed certificate (development only)"},
		&cli.StringFlag{Name: "peer-cert-file", Usage: "path to the peer server TLS certificate file"},
		&cli.StringFlag{Name: "peer-key-file", Usage: "path to the peer server TLS key file"},
		&cli.StringFlag{Name: "peer-trusted-ca-file", Usage: "path to the peer server TLS trusted CA file"},
		&cli.BoolFlag{Name: "peer-client-cert-auth", Usage: "require peers to present a certificate signed by --peer-trusted-ca-file"},
		&cli.BoolFlag{Name: "peer-auto-tls", Usage: "peer TLS using generated self-signed certificates (development only)"},
		&cli.UintFlag{Name: "self-signed-cert-validity", Value: 1, Usage: "years the certificates of --auto-tls and --peer-auto-tls are valid"},
		&cli.StringFlag{Name: "client-crl-file", Usage: "certificate revocation list (PEM or DER): clients presenting a revoked certificate are refused"},
		&cli.StringFlag{Name: "peer-crl-file", Usage: "certificate revocation list (PEM or DER): peers presenting a revoked certificate are refused"},
		&cli.StringFlag{Name: "client-cert-allowed-hostname", Usage: "comma-separated host names: only client certificates valid for one of them are admitted"},
		&cli.StringFlag{Name: "peer-cert-allowed-cn", Usage: "comma-separated common names: only peer certificates with one of them are admitted"},
		&cli.StringFlag{Name: "peer-cert-allowed-hostname", Usage: "comma-separated host names: only peer certificates valid for one of them are admitted"},
		&cli.StringFlag{Name: "client-cert-file", Usage: "certificate this member presents when it dials other members' client URLs (default: --cert-file)"},
		&cli.StringFlag{Name: "client-key-file", Usage: "key of --client-cert-file"},
		&cli.StringFlag{Name: "peer-client-cert-file", Usage: "certificate this member presents when it dials peers (default: --peer-cert-file)"},
		&cli.StringFlag{Name: "peer-client-key-file", Usage: "key of --peer-client-cert-file"},
	}
}

// commaList splits a comma-separated flag value, dropping empty items.
func commaList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// clientTLSFlags are etcdctl's TLS flags for the commands that talk to
// members (clientFlags appends them).
func clientTLSFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "cacert", Usage: "verify certificates of TLS-enabled servers using this CA bundle"},
		&cli.StringFlag{Name: "cert", Usage: "identify this client with this TLS certificate file"},
		&cli.StringFlag{Name: "key", Usage: "identify this client with this TLS key file"},
		&cli.BoolFlag{Name: "insecure-skip-tls-verify", Usage: "skip server certificate verification (development only)"},
		&cli.BoolFlag{Name: "insecure-transport", Value: true, Usage: "disable transport security for client connections (no TLS unless a TLS flag is given)"},
	}
}

// clientTLSConfig is the TLS configuration of a client command, nil for
// plaintext (no TLS flag given, and no https endpoint).
func clientTLSConfig(c *cli.Context) (*tls.Config, error) {
	https := strings.Contains(c.String("endpoints"), "https://")
	if c.String("cacert") == "" && c.String("cert") == "" && !c.Bool("insecure-skip-tls-verify") && !https &&
		c.Bool("insecure-transport") {
		return nil, nil
	}
	cfg, err := raft.TLSInfo{CertFile: c.String("cert"), KeyFile: c.String("key"), TrustedCAFile: c.String("cacert")}.ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.InsecureSkipVerify = c.Bool("insecure-skip-tls-verify")
	return cfg, nil
}

func serveDataDir(c *cli.Context) string {
	if d := c.String("data-dir"); d != "" {
		return d
	}
	return c.String("name") + ".metastore"
}

// urlHosts are the host names of the URLs in a flag (for auto TLS).
func urlHosts(c *cli.Context, flags ...string) []string {
	var hosts []string
	for _, f := range flags {
		for _, part := range strings.Split(c.String(f), ",") {
			if u, err := url.Parse(strings.TrimSpace(part)); err == nil && u.Hostname() != "" {
				hosts = append(hosts, u.Hostname())
			}
		}
	}
	return hosts
}

// clientTLSInfo is the client side of serve's TLS flags; --auto-tls writes
// its certificate under <data-dir>/fixtures/client, as etcd.
func clientTLSInfo(c *cli.Context) raft.TLSInfo {
	return withTLSVersions(c, raft.TLSInfo{CertFile: c.String("cert-file"), KeyFile: c.String("key-file"),
		TrustedCAFile: c.String("trusted-ca-file"), ClientCertAuth: c.Bool("client-cert-auth"),
		AutoTLS: c.Bool("auto-tls"), AutoDir: filepath.Join(serveDataDir(c), "fixtures", "client"),
		AutoValidityYears: int(c.Uint("self-signed-cert-validity")),
		AutoHosts:         urlHosts(c, "listen-client-urls", "advertise-client-urls"),
		CRLFile:           c.String("client-crl-file"), AllowedHostnames: commaList(c.String("client-cert-allowed-hostname")),
		DialCertFile: c.String("client-cert-file"), DialKeyFile: c.String("client-key-file")})
}

// peerTLSInfo is the peer side; --peer-auto-tls writes under
// <data-dir>/fixtures/peer.
func peerTLSInfo(c *cli.Context) raft.TLSInfo {
	return withTLSVersions(c, raft.TLSInfo{CertFile: c.String("peer-cert-file"), KeyFile: c.String("peer-key-file"),
		TrustedCAFile: c.String("peer-trusted-ca-file"), ClientCertAuth: c.Bool("peer-client-cert-auth"),
		AutoTLS: c.Bool("peer-auto-tls"), AutoDir: filepath.Join(serveDataDir(c), "fixtures", "peer"),
		AutoValidityYears: int(c.Uint("self-signed-cert-validity")),
		AutoHosts:         urlHosts(c, "listen-peer-urls", "initial-advertise-peer-urls"),
		CRLFile:           c.String("peer-crl-file"), AllowedCNs: commaList(c.String("peer-cert-allowed-cn")),
		AllowedHostnames: commaList(c.String("peer-cert-allowed-hostname")),
		DialCertFile:     c.String("peer-client-cert-file"), DialKeyFile: c.String("peer-client-key-file")})
}

// applyTLSFlags checks the TLS flags against the URLs' schemes and fills
// cfg.PeerTLS and cfg.ClientTLS (for dialling other members' https client
// URLs: the trusted CA verifies them, the client certificate identifies
// this member).
func applyTLSFlags(c *cli.Context, cfg *server.Config, lg *zap.Logger) error {
	if _, _, _, err := tlsVersions(c); err != nil { // cmd_etcdflags.go
		return err
	}
	ct, pt := clientTLSInfo(c), peerTLSInfo(c)
	for _, pair := range [][2]string{{"client-cert-file", "client-key-file"}, {"peer-client-cert-file", "peer-client-key-file"}} {
		if (c.String(pair[0]) == "") != (c.String(pair[1]) == "") {
			return fmt.Errorf("--%s and --%s go together", pair[0], pair[1])
		}
	}
	for _, f := range []string{"listen-client-urls", "advertise-client-urls", "listen-http-urls", "listen-metrics-urls"} {
		if strings.Contains(c.String(f), "https://") && !ct.Enabled() {
			return fmt.Errorf("--%s: https needs --cert-file and --key-file (or --auto-tls)", f)
		}
	}
	for _, f := range []string{"listen-peer-urls", "initial-advertise-peer-urls"} {
		if strings.Contains(c.String(f), "https://") && !pt.Enabled() {
			return fmt.Errorf("--%s: https needs --peer-cert-file and --peer-key-file (or --peer-auto-tls)", f)
		}
	}
	if ct.Enabled() {
		if !strings.Contains(c.String("listen-client-urls"), "https://") {
			lg.Warn("client TLS is configured but no --listen-client-urls entry is https; clients are served in plaintext")
		}
		if _, err := ct.ServerConfig(); err != nil { // generates --auto-tls's pair, checks the files
			return err
		}
		cc, err := ct.ClientConfig()
		if err != nil {
			return err
		}
		cfg.ClientTLS = cc
	}
	if pt.Enabled() {
		if !strings.Contains(c.String("listen-peer-urls"), "https://") {
			lg.Warn("peer TLS is configured but --listen-peer-urls is not https; peers are served in plaintext")
			pt = raft.TLSInfo{} // as etcd: the scheme decides
		}
		cfg.PeerTLS = pt
	}
	return nil
}

// listenClient listens on urls, serving TLS (the client side of serve's
// flags, nextProtos offered by ALPN) on the https ones.
func listenClient(c *cli.Context, urls []*url.URL, nextProtos ...string) ([]net.Listener, error) {
	ls, err := listenAll(listenConfig(c), urls)
	if err != nil {
		return nil, err
	}
	for i, u := range urls {
		if u.Scheme != "https" {
			continue
		}
		sc, err := clientTLSInfo(c).ServerConfig(nextProtos...)
		if err != nil {
			closeAll(ls)
			return nil, err
		}
		ls[i] = tls.NewListener(ls[i], sc)
	}
	return ls, nil
}
