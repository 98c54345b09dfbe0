package raft

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// verifyCA is a CA that issues leaf certificates and revocation lists.
type verifyCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
}

func newVerifyCA(t *testing.T) *verifyCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "verify CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	ca := &verifyCA{cert: cert, key: key, dir: t.TempDir()}
	require.NoError(t, os.WriteFile(ca.path("ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	return ca
}

func (ca *verifyCA) path(name string) string { return filepath.Join(ca.dir, name) }

// issue writes name.pem and name-key.pem: a leaf with cn, serial and hosts.
func (ca *verifyCA) issue(t *testing.T, name, cn string, serial int64, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames: hosts, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = ca.path(name+".pem"), ca.path(name+"-key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return certFile, keyFile
}

// revoke writes crl.pem revoking serials.
func (ca *verifyCA) revoke(t *testing.T, serials ...int64) string {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(time.Now().UnixNano()),
		ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour), RevokedCertificateEntries: entries}, ca.cert, ca.key)
	require.NoError(t, err)
	p := ca.path("crl.pem")
	require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644))
	return p
}

// handshake runs a TLS handshake between server and a client presenting
// the pair; it returns the server side's error.
func handshake(t *testing.T, server *tls.Config, ca *verifyCA, certFile, keyFile string) error {
	t.Helper()
	client, err := TLSInfo{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: ca.path("ca.pem")}.ClientConfig()
	require.NoError(t, err)
	return handshakeWith(t, server, client)
}

// handshakeWith runs a handshake between server and client over loopback
// TCP (whose buffers take the server's alert once the client is done: a
// TLS 1.3 client finishes before the server checks its certificate); it
// returns the server side's error.
func handshakeWith(t *testing.T, server, client *tls.Config) error {
	t.Helper()
	client.ServerName = "127.0.0.1"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := tls.Dial("tcp", l.Addr().String(), client)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	conn, err := l.Accept()
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	err = tls.Server(conn, server).Handshake()
	<-done
	return err
}

// TestTLSInfo_ClientCertChecks: a revoked client certificate fails the
// server's handshake (the list re-read when it changes); with allowed
// names, only certificates with one of the common names, or valid for
// one of the host names, pass.
func TestTLSInfo_ClientCertChecks(t *testing.T) {
	t.Logf("Step 1: a CA, a server pair, clients alice (11, host a.example) and bob (12, host b.example)")
	ca := newVerifyCA(t)
	srvCert, srvKey := ca.issue(t, "server", "server", 10)
	aliceCert, aliceKey := ca.issue(t, "alice", "alice", 11, "a.example")
	bobCert, bobKey := ca.issue(t, "bob", "bob", 12, "b.example")
	base := TLSInfo{CertFile: srvCert, KeyFile: srvKey, TrustedCAFile: ca.path("ca.pem"), ClientCertAuth: true}

	t.Logf("Step 2: a CRL revoking bob: alice passes, bob is refused")
	crl := ca.revoke(t, 12)
	i := base
	i.CRLFile = crl
	sc, err := i.ServerConfig()
	require.NoError(t, err)
	require.NoError(t, handshake(t, sc, ca, aliceCert, aliceKey))
	require.ErrorContains(t, handshake(t, sc, ca, bobCert, bobKey), "serial 12 is revoked")

	t.Logf("Step 3: the CRL rewritten to revoke alice instead: the same server config follows it")
	ca.revoke(t, 11)
	require.ErrorContains(t, handshake(t, sc, ca, aliceCert, aliceKey), "serial 11 is revoked")
	require.NoError(t, handshake(t, sc, ca, bobCert, bobKey))

	t.Logf("Step 4: allowed common names: alice only")
	i = base
	i.AllowedCNs = []string{"alice"}
	sc, err = i.ServerConfig()
	require.NoError(t, err)
	require.NoError(t, handshake(t, sc, ca, aliceCert, aliceKey))
	require.ErrorContains(t, handshake(t, sc, ca, bobCert, bobKey), "not among the allowed names")

	t.Logf("Step 5: allowed host names: b.example only")
	i = base
	i.AllowedHostnames = []string{"b.example"}
	sc, err = i.ServerConfig()
	require.NoError(t, err)
	require.ErrorContains(t, handshake(t, sc, ca, aliceCert, aliceKey), "not among the allowed names")
	require.NoError(t, handshake(t, sc, ca, bobCert, bobKey))

	t.Logf("Step 6: a CRL file that does not parse is a configuration error")
	bad := ca.path("bad.crl")
	require.NoError(t, os.WriteFile(bad, []byte("not a CRL"), 0o644))
	i = base
	i.CRLFile = bad
	_, err = i.ServerConfig()
	require.ErrorIs(t, err, ErrBadTLS)
}

// TestTLSInfo_DialCertificate: a side with DialCertFile presents it when
// dialling, instead of its serving certificate.
func TestTLSInfo_DialCertificate(t *testing.T) {
	t.Logf("Step 1: a server admitting only the common name dialer")
	ca := newVerifyCA(t)
	srvCert, srvKey := ca.issue(t, "server", "server", 10)
	dialCert, dialKey := ca.issue(t, "dialer", "dialer", 13)
	sc, err := TLSInfo{CertFile: srvCert, KeyFile: srvKey, TrustedCAFile: ca.path("ca.pem"), ClientCertAuth: true,
		AllowedCNs: []string{"dialer"}}.ServerConfig()
	require.NoError(t, err)

	t.Logf("Step 2: dial with the serving pair, then with DialCertFile set")
	served := handshake(t, sc, ca, srvCert, srvKey)
	cc, err := TLSInfo{CertFile: srvCert, KeyFile: srvKey, TrustedCAFile: ca.path("ca.pem"),
		DialCertFile: dialCert, DialKeyFile: dialKey}.ClientConfig()
	require.NoError(t, err)
	dialed := handshakeWith(t, sc, cc)

	t.Logf("Step 3: the serving certificate is refused, the dial certificate admitted")
	require.ErrorContains(t, served, "not among the allowed names")
	require.NoError(t, dialed)
}
