package http

import (
	"bytes"
	"crypto/tls"
	"net"
	"strconv"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// hostPolicy is etcd's --host-whitelist: the host names a request over
// plain HTTP may name in its Host header. A web page that an attacker's
// DNS name points at 127.0.0.1 (DNS rebinding) reaches the member from the
// victim's browser with the attacker's name in Host; a white list turns
// it away. Requests over TLS are not checked (the name was checked with
// the certificate), nor is the metrics-only listener, as in etcd.
type hostPolicy struct {
	all   bool
	hosts map[string]bool
}

// newHostPolicy takes the list of allowed host names; as in etcd, an empty
// list or one holding "*" allows every host.
func newHostPolicy(list []string) hostPolicy {
	p := hostPolicy{hosts: make(map[string]bool)}
	for _, h := range list {
		switch h {
		case "":
		case "*":
			p.all = true
		default:
			p.hosts[h] = true
		}
	}
	if len(p.hosts) == 0 {
		p.all = true
	}
	return p
}

// refuse answers ctx with etcd's 421 when its host is not allowed and
// reports whether it did.
func (p hostPolicy) refuse(ctx *fasthttp.RequestCtx, lg *zap.Logger) bool {
	if p.all || overTLS(ctx.Conn()) {
		return false
	}
	host := string(ctx.Host())
	// As etcd: the port goes; a host without one is taken whole.
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if p.hosts[host] {
		return false
	}
	lg.Warn("rejecting HTTP request to prevent DNS rebinding attacks", zap.String("host", host))
	ctx.ResetBody()
	ctx.SetStatusCode(fasthttp.StatusMisdirectedRequest)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.SetBodyString(hostRefusal(host))
	return true
}

// hostRefusal is etcd's answer text, word for word, so that an operator
// finds the same fix.
func hostRefusal(host string) string {
	return "\netcd received your request, but the Host header was unrecognized.\n\n" +
		"To fix this, choose one of the following options:\n" +
		"- Enable TLS, then any HTTPS request will be allowed.\n" +
		"- Add the hostname you want to use to the whitelist in settings.\n" +
		"  - e.g. etcd --host-whitelist " + strconv.Quote(host) + "\n\n" +
		"This requirement has been added to help prevent \"DNS Rebinding\" attacks (CVE-2018-5702).\n\n"
}

// overTLS reports whether c is, or wraps, a TLS connection (a client
// listener's connections arrive wrapped by the protocol sniff).
func overTLS(c net.Conn) bool { return tlsConn(c) != nil }

// tlsConn is the TLS connection c is or wraps; nil if none.
func tlsConn(c net.Conn) *tls.Conn {
	for ; c != nil; c = unwrap(c) {
		if tc, ok := c.(*tls.Conn); ok {
			return tc
		}
	}
	return nil
}

// refuseGatewayCert answers etcd's 400 to a /v3/ request over TLS whose
// verified client certificate has a common name while auth is enabled, and
// reports whether it did. etcd's gateway calls its gRPC server with a
// certificate of its own, so the caller's common name would not be the
// user (security.md); etcd refuses such requests rather than act as
// another user, and so does MetaStore, whose gateway would otherwise treat
// them as anonymous.
func (h *Handler) refuseGatewayCert(ctx *fasthttp.RequestCtx) bool {
	tc := tlsConn(ctx.Conn())
	if tc == nil {
		return false
	}
	g, ok := h.kv.(AuthGate)
	if !ok || !g.AuthEnabled() || !bytes.HasPrefix(ctx.Path(), []byte("/v3/")) {
		return false
	}
	for _, chain := range tc.ConnectionState().VerifiedChains {
		if len(chain) > 0 && chain[0].Subject.CommonName != "" {
			ctx.ResetBody()
			ctx.SetStatusCode(fasthttp.StatusBadRequest)
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
			ctx.SetBodyString("CommonName of client sending a request against gateway will be ignored and not used as expected\n")
			return true
		}
	}
	return false
}
