package grpc

import (
	"context"
	"crypto/tls"
	"net"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// terminatedTLS are the gRPC server's transport credentials on the client
// listeners. TLS is terminated before the gRPC server sees a connection
// (the client port's listener is a TLS listener, and the HTTP/2 preface is
// sniffed inside the TLS stream: http/mux.go), so there is no handshake to
// do here; what these credentials add is the peer information: a
// connection that arrived over TLS carries credentials.TLSInfo with its
// tls.ConnectionState, as with grpc's own TLS credentials. With
// --client-cert-auth, State.VerifiedChains[0][0] is the client's verified
// certificate; ClientCommonName reads its CN (etcd's user for a request
// without a token when auth is enabled).
type terminatedTLS struct{}

// tlsStater is a *tls.Conn; netConner a wrapper that exposes what it wraps
// (the mux's sniffed connection, tls.Conn itself).
type (
	tlsStater interface {
		Handshake() error
		ConnectionState() tls.ConnectionState
	}
	netConner interface{ NetConn() net.Conn }
)

func (terminatedTLS) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	for cur := c; cur != nil; {
		if ts, ok := cur.(tlsStater); ok {
			// The mux's sniff has done the handshake already; otherwise
			// do it now (gRPC bounds it with a deadline on the conn).
			if err := ts.Handshake(); err != nil {
				return nil, nil, err
			}
			return c, credentials.TLSInfo{State: ts.ConnectionState(),
				CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
		}
		nc, ok := cur.(netConner)
		if !ok {
			break
		}
		cur = nc.NetConn()
	}
	return c, plainInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (terminatedTLS) ClientHandshake(_ context.Context, _ string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, plainInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (terminatedTLS) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (terminatedTLS) Clone() credentials.TransportCredentials { return terminatedTLS{} }

func (terminatedTLS) OverrideServerName(string) error { return nil }

// plainInfo is the AuthInfo of a plaintext connection.
type plainInfo struct{ credentials.CommonAuthInfo }

func (plainInfo) AuthType() string { return "insecure" }

// certUser is the user a request without a token runs as when auth is
// enabled, if it has one: the common name of its verified client
// certificate, or, on the in-memory connection of Lock and Election's
// inner calls, the one their caller had (inprocUser, lock.go).
func certUser(ctx context.Context) (string, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", false
	}
	if cn, ok := verifiedCommonName(p); ok {
		return cn, true
	}
	if p.Addr != nil && p.Addr.Network() == "bufconn" {
		return inprocUser(ctx)
	}
	return "", false
}

// ClientCommonName is the common name of the verified client certificate
// of the request's connection: ok only when the connection is TLS and the
// certificate was verified against --trusted-ca-file (--client-cert-auth).
func ClientCommonName(ctx context.Context) (string, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", false
	}
	return verifiedCommonName(p)
}

func verifiedCommonName(p *peer.Peer) (string, bool) {
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return "", false
	}
	return ti.State.VerifiedChains[0][0].Subject.CommonName, true
}
