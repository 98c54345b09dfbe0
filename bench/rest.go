package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// RESTPut writes keys through MetaStore's REST API: PUT /v1/kv/{key} with
// the value as the body. Conns is the number of HTTP connections, shared
// by the Clients; Endpoints are the servers' host:port, used round-robin.
func RESTPut(ctx context.Context, o Options) (*Result, error) {
	val := []byte(o.value())
	return runREST(ctx, o, "rest-put", func(req *fasthttp.Request, n int64) {
		req.Header.SetMethod(fasthttp.MethodPut)
		req.Header.SetContentType("application/octet-stream")
		req.SetBodyRaw(val)
	})
}

// RESTGet reads keys through MetaStore's REST API: GET /v1/kv/{key}. A
// key that is not there answers 404 and counts as an error ("http-404"):
// fill the key space first, with RESTPut over the same key space and
// --sequential-keys.
func RESTGet(ctx context.Context, o Options) (*Result, error) {
	return runREST(ctx, o, "rest-get", func(req *fasthttp.Request, n int64) {
		req.Header.SetMethod(fasthttp.MethodGet)
	})
}

// httpStatusError is a reply outside 2xx.
type httpStatusError struct {
	code int
	body string
}

func (e httpStatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.code, e.body)
}

func (e httpStatusError) kind() string { return fmt.Sprintf("http-%d", e.code) }

func runREST(ctx context.Context, o Options, workload string, prepare func(*fasthttp.Request, int64)) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	// NB: one HostClient over all endpoints (it round-robins a
	// comma-separated Addr) with exactly Conns connections; clients beyond
	// Conns wait for a free one, as with gRPC clients sharing a conn.
	hc := &fasthttp.HostClient{
		Addr:                strings.Join(o.Endpoints, ","),
		MaxConns:            o.Conns,
		MaxConnWaitTimeout:  o.RequestTimeout,
		ReadTimeout:         o.RequestTimeout,
		WriteTimeout:        o.RequestTimeout,
		MaxIdleConnDuration: time.Minute,
		// The server's replies are small; this bounds a broken one.
		MaxResponseBodySize: 64 << 20,
	}
	defer hc.CloseIdleConnections()
	if err := probeREST(hc, o); err != nil {
		return nil, err
	}
	rec := newRecorder([]string{workload})
	elapsed := o.runOps(ctx, rec, workload, func(ctx context.Context, _ int, n int64) (int, error) {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		// HostClient picks the connection; the URI only sets path and Host.
		req.SetRequestURI("http://" + o.Endpoints[0] + "/v1/kv/" + o.keyFor(o.keyIndex(n)))
		prepare(req, n)
		deadline, _ := ctx.Deadline()
		if err := hc.DoDeadline(req, resp, deadline); err != nil {
			return 0, err
		}
		if code := resp.StatusCode(); code < 200 || code > 299 {
			return 0, httpStatusError{code: code, body: strings.TrimSpace(string(truncate(resp.Body(), 200)))}
		}
		return 0, nil
	})
	return rec.result(workload, &o, elapsed), nil
}

// probeREST checks that the first endpoint answers HTTP at all, so a
// wrong port fails once with a clear error instead of per request.
func probeREST(hc *fasthttp.HostClient, o Options) error {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + o.Endpoints[0] + "/v1/kv/" + o.keyFor(0))
	req.Header.SetMethod(fasthttp.MethodGet)
	if err := hc.DoTimeout(req, resp, o.DialTimeout); err != nil {
		return fmt.Errorf("bench: connecting to http://%s: %w", o.Endpoints[0], err)
	}
	return nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
