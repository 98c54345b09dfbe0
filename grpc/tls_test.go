package grpc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// wrappedConn stands for the client mux's sniffed connection: it hides the
// *tls.Conn but exposes it through NetConn.
type wrappedConn struct{ net.Conn }

func (c wrappedConn) NetConn() net.Conn { return c.Conn }

type wrappingListener struct{ net.Listener }

func (l wrappingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return wrappedConn{c}, nil
}

func issueCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        isCA, BasicConstraintsValid: true, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestClientCommonName: on a TLS listener (TLS terminated before the gRPC
// server, as on the client port), a handler sees the verified client
// certificate's CN; on plaintext, or without a client certificate, none.
func TestClientCommonName(t *testing.T) {
	caCert, caKey, _ := issueCert(t, "ca", nil, nil, true)
	_, _, serverPair := issueCert(t, "server", caCert, caKey, false)
	_, _, alicePair := issueCert(t, "alice", caCert, caKey, false)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)

	type seen struct {
		cn string
		ok bool
	}
	seenc := make(chan seen, 1)
	newServer := func() *grpc.Server {
		gs := grpc.NewServer(grpc.Creds(terminatedTLS{}), grpc.UnaryInterceptor(
			func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				cn, ok := ClientCommonName(ctx)
				seenc <- seen{cn, ok}
				return h(ctx, req)
			}))
		healthpb.RegisterHealthServer(gs, health.NewServer())
		t.Cleanup(gs.Stop)
		return gs
	}
	check := func(addr string, creds credentials.TransportCredentials) seen {
		t.Helper()
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		require.NoError(t, err)
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		return <-seenc
	}
	for _, tc := range []struct {
		name       string
		clientAuth tls.ClientAuthType
		clientCert []tls.Certificate
		want       seen
	}{
		{"verified client certificate", tls.RequireAndVerifyClientCert, []tls.Certificate{alicePair}, seen{"alice", true}},
		{"no client certificate asked", tls.NoClientCert, []tls.Certificate{alicePair}, seen{"", false}},
		{"optional, none given", tls.VerifyClientCertIfGiven, nil, seen{"", false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			sc := &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientCAs: pool, ClientAuth: tc.clientAuth,
				NextProtos: []string{"http/1.1", "h2"}, MinVersion: tls.VersionTLS12}
			gs := newServer()
			go gs.Serve(wrappingListener{tls.NewListener(l, sc)})
			got := check(l.Addr().String(), credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: tc.clientCert}))
			require.Equal(t, tc.want, got)
		})
	}
	t.Run("plaintext", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		gs := newServer()
		go gs.Serve(l)
		require.Equal(t, seen{"", false}, check(l.Addr().String(), insecure.NewCredentials()))
	})
}

type fakeAddr string

func (a fakeAddr) Network() string { return string(a) }
func (a fakeAddr) String() string  { return "x" }

func TestCertUser_InprocUserNeedsSecretAndInMemoryConn(t *testing.T) {
	t.Logf("Step 1: prepare the incoming metadata of an inner call for root, with the right and a wrong secret")
	in := func(network string, kv ...string) context.Context {
		ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: fakeAddr(network), AuthInfo: plainInfo{}})
		return metadata.NewIncomingContext(ctx, metadata.Pairs(kv...))
	}
	right := []string{inprocUserKey, "root", inprocSecretKey, inprocSecret}
	wrong := []string{inprocUserKey, "root", inprocSecretKey, strings.Repeat("0", len(inprocSecret))}

	t.Logf("Step 2: on the in-memory connection with the secret the call runs as root")
	user, ok := certUser(in("bufconn", right...))
	require.True(t, ok)
	require.Equal(t, "root", user)

	t.Logf("Step 3: a wrong or missing secret, or a TCP connection, gives no user")
	for name, ctx := range map[string]context.Context{
		"wrong secret":   in("bufconn", wrong...),
		"no secret":      in("bufconn", inprocUserKey, "root"),
		"tcp connection": in("tcp", right...),
	} {
		_, ok := certUser(ctx)
		require.False(t, ok, name)
	}
}
