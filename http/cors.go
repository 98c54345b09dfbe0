package http

import (
	"github.com/valyala/fasthttp"
)

// corsPolicy is etcd's --cors: the origins whose browser pages may call the
// client URLs. An answer to a request from an allowed origin carries etcd's
// CORS headers, and an OPTIONS request (a browser's preflight) on any path
// is answered 200 with them. etcd sends them on every answer; only browsers
// read them, and a browser always names the origin, so requests without
// an Origin header (every other client) are answered without the 150 bytes.
type corsPolicy struct {
	all     bool
	origins map[string]bool
}

// newCORSPolicy takes the list of allowed origins; as in etcd, an empty
// list or one holding "*" allows every origin.
func newCORSPolicy(list []string) corsPolicy {
	p := corsPolicy{origins: make(map[string]bool)}
	for _, o := range list {
		switch o {
		case "":
		case "*":
			p.all = true
		default:
			p.origins[o] = true
		}
	}
	if len(p.origins) == 0 {
		p.all = true
	}
	return p
}

// apply sets the CORS headers on ctx's answer when its origin is allowed.
func (p corsPolicy) apply(ctx *fasthttp.RequestCtx) {
	o := ctx.Request.Header.Peek("Origin")
	if len(o) == 0 {
		return
	}
	origin := "*"
	if !p.all {
		if !p.origins[string(o)] {
			return
		}
		origin = string(o)
	}
	h := &ctx.Response.Header
	h.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE")
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Headers", "accept, content-type, authorization")
}

// allows reports whether a request from origin may be served across
// origins: no Origin (not a browser), or an allowed one.
func (p corsPolicy) allows(origin []byte) bool {
	return len(origin) == 0 || p.all || p.origins[string(origin)]
}
