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
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writePair writes a self-signed certificate with serial and its key.
func writePair(t *testing.T, certPath, keyPath string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	require.NoError(t, os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
}

func TestTLSInfo_Errors(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writePair(t, cert, key, 1)
	for _, tc := range []struct {
		name string
		info TLSInfo
	}{
		{"certificate without key", TLSInfo{CertFile: cert}},
		{"client cert auth without CA", TLSInfo{CertFile: cert, KeyFile: key, ClientCertAuth: true}},
		{"missing files", TLSInfo{CertFile: cert + ".none", KeyFile: key}},
		{"CA file without certificates", TLSInfo{CertFile: cert, KeyFile: key, TrustedCAFile: key}},
		{"auto TLS without directory", TLSInfo{AutoTLS: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.info.ServerConfig()
			require.True(t, errors.Is(err, ErrBadTLS), "%v", err)
		})
	}
}

// TestTLSInfo_Reload: a handshake after the files changed gets the new
// pair; a pair that does not load (half replaced) keeps the previous one.
func TestTLSInfo_Reload(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writePair(t, cert, key, 1)
	cfg, err := TLSInfo{CertFile: cert, KeyFile: key}.ServerConfig("h2")
	require.NoError(t, err)
	serial := func() int64 {
		c, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{})
		require.NoError(t, err)
		require.Equal(t, []string{"h2"}, c.NextProtos)
		require.Equal(t, uint16(tls.VersionTLS12), c.MinVersion)
		x, err := x509.ParseCertificate(c.Certificates[0].Certificate[0])
		require.NoError(t, err)
		return x.SerialNumber.Int64()
	}
	require.Equal(t, int64(1), serial())

	t.Logf("Step 1: only the certificate replaced (key still the old one): serial 1 stays")
	other := t.TempDir()
	writePair(t, filepath.Join(other, "c.pem"), filepath.Join(other, "k.pem"), 2)
	require.NoError(t, os.Rename(filepath.Join(other, "c.pem"), cert))
	require.Equal(t, int64(1), serial())

	t.Logf("Step 2: the key too: serial 2")
	require.NoError(t, os.Rename(filepath.Join(other, "k.pem"), key))
	require.Equal(t, int64(2), serial())

	t.Logf("Step 3: both rewritten in place at the same size, old modification times put back: serial 3")
	// PEM ignores what follows its blocks: every file is padded to 4 KiB.
	padded := func(path string) []byte {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Less(t, len(b), 4096)
		return append(b, bytes.Repeat([]byte("\n"), 4096-len(b))...)
	}
	for _, f := range []string{cert, key} {
		require.NoError(t, os.WriteFile(f, padded(f), 0o600))
	}
	require.Equal(t, int64(2), serial(), "padding changes nothing")
	third := t.TempDir()
	writePair(t, filepath.Join(third, "c.pem"), filepath.Join(third, "k.pem"), 3)
	for _, f := range []struct{ from, to string }{{filepath.Join(third, "c.pem"), cert}, {filepath.Join(third, "k.pem"), key}} {
		old, err := os.Stat(f.to)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(f.to, padded(f.from), 0o600)) // truncates and rewrites: same inode
		require.NoError(t, os.Chtimes(f.to, old.ModTime(), old.ModTime()))
		now, err := os.Stat(f.to)
		require.NoError(t, err)
		require.True(t, os.SameFile(old, now) && old.Size() == now.Size() && old.ModTime().Equal(now.ModTime()),
			"%s: the same file, size and modification time", f.to)
	}
	require.Equal(t, int64(3), serial())
}

func TestTLSInfo_AutoTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fixtures")
	info := TLSInfo{AutoTLS: true, AutoDir: dir, AutoHosts: []string{"example.test", "10.1.2.3"}}
	cfg, err := info.ServerConfig()
	require.NoError(t, err)
	x, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"localhost", "example.test"}, x.DNSNames)
	require.Len(t, x.IPAddresses, 2)
	require.WithinDuration(t, time.Now().AddDate(1, 0, 0), x.NotAfter, 2*time.Hour, "one year by default")
	cc, err := info.ClientConfig()
	require.NoError(t, err)
	require.True(t, cc.InsecureSkipVerify, "auto TLS peers cannot verify each other")

	t.Logf("a restart reuses the generated pair")
	cfg2, err := info.ServerConfig()
	require.NoError(t, err)
	require.Equal(t, cfg.Certificates[0].Certificate[0], cfg2.Certificates[0].Certificate[0])

	t.Logf("AutoValidityYears (--self-signed-cert-validity) sets how long a new pair is valid")
	long := TLSInfo{AutoTLS: true, AutoDir: filepath.Join(t.TempDir(), "long"), AutoValidityYears: 5}
	cfg3, err := long.ServerConfig()
	require.NoError(t, err)
	x3, err := x509.ParseCertificate(cfg3.Certificates[0].Certificate[0])
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().AddDate(5, 0, 0), x3.NotAfter, 2*time.Hour)
}
