package raft

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrBadTLS is wrapped by every TLS configuration error.
var ErrBadTLS = errors.New("raft: bad TLS configuration")

// TLSInfo names the files of one side's TLS, as etcd's flags do: the peer
// side (--peer-cert-file, ...) configures the Transport; the client side
// (--cert-file, ...) is built with the same type by the command line.
//
// Certificates are read on use, not once: a handshake after the certificate
// or key file (or the trusted CA file, on the server side) changed on disk
// reads them again, so certificates can be rotated without a restart. A
// half-written pair that does not load keeps the previous one in use.
type TLSInfo struct {
	CertFile      string
	KeyFile       string
	TrustedCAFile string
	// ClientCertAuth requires the other side of a served connection to
	// present a certificate signed by TrustedCAFile.
	ClientCertAuth bool
	// AutoTLS generates a self-signed certificate into AutoDir at start
	// when CertFile is empty (development only). Clients of such a
	// certificate cannot verify it: a dialling Transport skips verification
	// when it has no TrustedCAFile, as etcd's --peer-auto-tls does.
	AutoTLS bool
	AutoDir string
	// AutoHosts are the DNS names or IPs the generated certificate names
	// (localhost and 127.0.0.1 are always included).
	AutoHosts []string
	// AutoValidityYears is how long the generated certificate is valid
	// (etcd's --self-signed-cert-validity; 0: one year).
	AutoValidityYears int
	// MinVersion and MaxVersion bound the TLS versions (0: TLS 1.2 at
	// least, the newest at most); CipherSuites are the TLS 1.2 suites
	// allowed (nil: Go's choice). etcd's --tls-min-version,
	// --tls-max-version and --cipher-suites.
	MinVersion, MaxVersion uint16
	CipherSuites           []uint16
	// CRLFile is a certificate revocation list (PEM or DER): a client
	// presenting a certificate it revokes fails the handshake (etcd's
	// --client-crl-file, --peer-crl-file). Read again when it changes.
	CRLFile string
	// AllowedCNs and AllowedHostnames, when either is set, admit only
	// client certificates whose common name is one of AllowedCNs or that
	// are valid for one of AllowedHostnames (etcd's --peer-cert-allowed-cn,
	// --peer-cert-allowed-hostname, --client-cert-allowed-hostname).
	AllowedCNs, AllowedHostnames []string
	// DialCertFile and DialKeyFile, when set, are the certificate this side
	// presents when it dials, instead of CertFile (etcd's
	// --client-cert-file, --peer-client-cert-file and their keys).
	DialCertFile, DialKeyFile string
}

// versions sets i's TLS versions and suites on c.
func (i TLSInfo) versions(c *tls.Config) {
	c.MinVersion = max(i.MinVersion, tls.VersionTLS12)
	c.MaxVersion = i.MaxVersion
	c.CipherSuites = i.CipherSuites
}

// Enabled reports whether TLS is configured.
func (i TLSInfo) Enabled() bool { return i.CertFile != "" || i.AutoTLS }

// prepare checks the files and generates the self-signed pair for AutoTLS.
func (i TLSInfo) prepare() (TLSInfo, error) {
	if i.CertFile == "" && i.AutoTLS {
		if i.AutoDir == "" {
			return i, fmt.Errorf("%w: auto TLS needs a directory", ErrBadTLS)
		}
		cert, key, err := selfCert(i.AutoDir, i.AutoHosts, max(i.AutoValidityYears, 1))
		if err != nil {
			return i, err
		}
		i.CertFile, i.KeyFile = cert, key
	}
	if (i.CertFile == "") != (i.KeyFile == "") {
		return i, fmt.Errorf("%w: a certificate file needs its key file and the other way round", ErrBadTLS)
	}
	if i.ClientCertAuth && i.TrustedCAFile == "" {
		return i, fmt.Errorf("%w: client certificate authentication needs a trusted CA file", ErrBadTLS)
	}
	return i, nil
}

// ServerConfig is the configuration of a TLS server with this side's
// certificate (TLS 1.2 at least), offering nextProtos by ALPN in this order
// of preference. With ClientCertAuth, a client without a certificate signed
// by TrustedCAFile fails the handshake.
func (i TLSInfo) ServerConfig(nextProtos ...string) (*tls.Config, error) {
	i, err := i.prepare()
	if err != nil {
		return nil, err
	}
	if i.CertFile == "" {
		return nil, fmt.Errorf("%w: a server needs a certificate and key file", ErrBadTLS)
	}
	kp := &keyPair{certFile: i.CertFile, keyFile: i.KeyFile}
	if _, err := kp.get(); err != nil {
		return nil, err
	}
	var ca *caPool
	if i.TrustedCAFile != "" {
		ca = &caPool{file: i.TrustedCAFile}
		if _, err := ca.get(); err != nil {
			return nil, err
		}
	}
	verify, err := i.clientCertCheck()
	if err != nil {
		return nil, err
	}
	build := func() (*tls.Config, error) {
		cert, err := kp.get()
		if err != nil {
			return nil, err
		}
		c := &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: append([]string(nil), nextProtos...)}
		i.versions(c)
		c.VerifyPeerCertificate = verify
		if ca != nil {
			pool, err := ca.get()
			if err != nil {
				return nil, err
			}
			c.ClientCAs = pool
			if i.ClientCertAuth { // as etcd: no client certificate asked otherwise
				c.ClientAuth = tls.RequireAndVerifyClientCert
			}
		}
		return c, nil
	}
	cfg, err := build()
	if err != nil {
		return nil, err
	}
	// Every handshake takes a fresh configuration: the files are stat'ed
	// and read again when they changed.
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return build() }
	return cfg, nil
}

// ClientConfig is the configuration for dialling a server of this side:
// TrustedCAFile verifies the server (the system roots without it, or no
// verification for AutoTLS), and the certificate, if any, is presented
// when the server asks (re-read when its files change).
func (i TLSInfo) ClientConfig() (*tls.Config, error) {
	i, err := i.prepare()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{}
	i.versions(cfg)
	if i.TrustedCAFile != "" {
		pool, err := (&caPool{file: i.TrustedCAFile}).get()
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	} else if i.AutoTLS {
		cfg.InsecureSkipVerify = true
	}
	certFile, keyFile := i.CertFile, i.KeyFile
	if i.DialCertFile != "" {
		certFile, keyFile = i.DialCertFile, i.DialKeyFile
	}
	if certFile != "" {
		kp := &keyPair{certFile: certFile, keyFile: keyFile}
		if _, err := kp.get(); err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	return cfg, nil
}

// clientCertCheck is the server side's check of a client certificate
// beyond its chain: the revocation list and the allowed names. nil when
// none is set.
func (i TLSInfo) clientCertCheck() (func(raw [][]byte, chains [][]*x509.Certificate) error, error) {
	if i.CRLFile == "" && len(i.AllowedCNs) == 0 && len(i.AllowedHostnames) == 0 {
		return nil, nil
	}
	var crl *crlFile
	if i.CRLFile != "" {
		crl = &crlFile{file: i.CRLFile}
		if _, err := crl.get(); err != nil {
			return nil, err
		}
	}
	allowed := func(c *x509.Certificate) bool {
		if len(i.AllowedCNs) == 0 && len(i.AllowedHostnames) == 0 {
			return true
		}
		for _, cn := range i.AllowedCNs {
			if c.Subject.CommonName == cn {
				return true
			}
		}
		for _, h := range i.AllowedHostnames {
			if c.VerifyHostname(h) == nil {
				return true
			}
		}
		return false
	}
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return nil // no client certificate: ClientAuth decides
		}
		certs := make([]*x509.Certificate, 0, len(raw))
		for _, b := range raw {
			c, err := x509.ParseCertificate(b)
			if err != nil {
				return fmt.Errorf("raft: client certificate: %w", err)
			}
			certs = append(certs, c)
		}
		if crl != nil {
			revoked, err := crl.get()
			if err != nil {
				return err
			}
			for _, c := range certs {
				if revoked[c.SerialNumber.String()] {
					return fmt.Errorf("raft: client certificate with serial %s is revoked (%s)", c.SerialNumber, i.CRLFile)
				}
			}
		}
		if !allowed(certs[0]) {
			return fmt.Errorf("raft: client certificate %q is not among the allowed names", certs[0].Subject.CommonName)
		}
		return nil
	}, nil
}

// crlFile is a revocation list read again at every use and parsed again
// when its bytes changed; a file that turns unreadable keeps the last
// good list.
type crlFile struct {
	file    string
	mu      sync.Mutex
	raw     []byte
	revoked map[string]bool // serial numbers, in decimal
}

func (c *crlFile) get() (map[string]bool, error) {
	b, err := os.ReadFile(c.file)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && c.revoked != nil && bytes.Equal(b, c.raw) {
		return c.revoked, nil
	}
	var rl *x509.RevocationList
	if err == nil {
		der := b
		if blk, _ := pem.Decode(b); blk != nil {
			der = blk.Bytes
		}
		rl, err = x509.ParseRevocationList(der)
	}
	if err != nil {
		if c.revoked != nil {
			return c.revoked, nil
		}
		return nil, fmt.Errorf("%w: CRL file %s: %v", ErrBadTLS, c.file, err)
	}
	revoked := make(map[string]bool, len(rl.RevokedCertificateEntries))
	for _, e := range rl.RevokedCertificateEntries {
		revoked[e.SerialNumber.String()] = true
	}
	c.raw, c.revoked = b, revoked
	return revoked, nil
}

// keyPair is a certificate and key read again at every use and parsed
// again when the bytes of either file changed. Comparing contents sees a
// rotation however it was made: renamed into place, or rewritten in place
// within one timestamp tick at the same size, which a file's modification
// time, size and inode cannot tell. The two small reads cost little next
// to the handshake they serve.
type keyPair struct {
	certFile, keyFile string
	mu                sync.Mutex
	certPEM, keyPEM   []byte
	cert              *tls.Certificate
}

func (k *keyPair) get() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(k.certFile)
	keyPEM, kerr := os.ReadFile(k.keyFile)
	if err == nil {
		err = kerr
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err == nil && k.cert != nil && bytes.Equal(certPEM, k.certPEM) && bytes.Equal(keyPEM, k.keyPEM) {
		return k.cert, nil
	}
	var cert tls.Certificate
	if err == nil {
		cert, err = tls.X509KeyPair(certPEM, keyPEM)
	}
	if err != nil {
		if k.cert != nil {
			return k.cert, nil // mid-rotation: keep the last good pair
		}
		return nil, fmt.Errorf("%w: loading %s and %s: %v", ErrBadTLS, k.certFile, k.keyFile, err)
	}
	k.cert, k.certPEM, k.keyPEM = &cert, certPEM, keyPEM
	return k.cert, nil
}

// caPool is a PEM bundle of trusted CAs, read again at every use and
// parsed again when its bytes changed (as keyPair).
type caPool struct {
	file string
	mu   sync.Mutex
	pem  []byte
	pool *x509.CertPool
}

func (c *caPool) get() (*x509.CertPool, error) {
	b, err := os.ReadFile(c.file)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && c.pool != nil && bytes.Equal(b, c.pem) {
		return c.pool, nil
	}
	pool := x509.NewCertPool()
	if err == nil && !pool.AppendCertsFromPEM(b) {
		err = errors.New("no PEM certificate in it")
	}
	if err != nil {
		if c.pool != nil {
			return c.pool, nil
		}
		return nil, fmt.Errorf("%w: trusted CA file %s: %v", ErrBadTLS, c.file, err)
	}
	c.pool, c.pem = pool, b
	return pool, nil
}

// selfCert writes (once) a self-signed ECDSA certificate for hosts, valid
// for years, into
// dir/cert.pem and dir/key.pem, as etcd's --auto-tls does, and returns
// their paths.
func selfCert(dir string, hosts []string, years int) (certPath, keyPath string, err error) {
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		return certPath, keyPath, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("%w: auto TLS: %v", ErrBadTLS, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return "", "", err
	}
	tmpl := x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"metastore auto TLS"}, CommonName: "metastore"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(years, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range append([]string{"localhost", "127.0.0.1"}, hosts...) {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}
