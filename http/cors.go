package http

import (
	"github.com/valyala/fasthttp"
)

// corsPolicy is etcd's --cors: the origins whose browser pages may call the
// client URLs. Every answer then carries etcd's CORS headers, and an OPTIONS
// request (a browser's preflight) on any path is answered 200 with them.
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
	origin := "*"
	if !p.all {
		o := ctx.Request.Header.Peek("Origin")
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
