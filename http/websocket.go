package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// WebSocket on etcd's gateway. etcd serves every /v3/ path through a
// WebSocket proxy as well: a GET with "Upgrade: websocket" is served as
// the path's POST, whose body is the client's messages, one after another,
// each followed by a newline (wsRequests), and each line of whose answer goes back as one text message. That turns
// the gateway's streams into real two-way streams, which a plain HTTP body
// (read whole before the answer starts) cannot be:
//
//   - /v3/watch: each message holds WatchRequests (create, cancel,
//     progress), applied as they arrive; each WatchResponse is one message.
//     One socket carries any number of watches, created and canceled at any
//     time.
//   - /v3/lease/keepalive: each LeaseKeepAliveRequest is renewed as it
//     arrives and answered with one message.
//   - /v3/election/observe: the first message is the LeaderRequest; then
//     one message per leader and proclaimed value.
//   - any other /v3/ path: the first message is the request body, its
//     answer one message; then the socket is closed (1000).
//
// A malformed request is answered with grpc-gateway's error line,
// {"error":{"code":3,"message":...}}, and ends the socket. The token comes
// from the Authorization header, as for any request, or, since a browser
// cannot set headers on a WebSocket, from "Sec-WebSocket-Protocol: Bearer,
// <token>" (the subprotocol Bearer is then agreed). The Origin of a browser
// must be allowed by --cors. The member pings every streamKeepAlive and
// drops a client that sends nothing, pongs included, for three of them; a
// graceful shutdown closes the socket with 1001 (going away).

// wsLivePings is how many ping periods a client may stay silent.
const wsLivePings = 3

// wsSession serves one upgraded connection; it returns when the session
// is over (the connection is closed after it). NB: fasthttp reuses the
// RequestCtx once the upgrade handler returns, so a session is made before
// the upgrade and takes from the request what it needs then.
type wsSession func(w *wsConn)

// newUpgrader is the handler's WebSocket upgrader: origins as --cors, the
// Bearer subprotocol, handshake errors as the gateway's JSON errors.
func (h *Handler) newUpgrader() *websocket.FastHTTPUpgrader {
	return &websocket.FastHTTPUpgrader{
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
		Subprotocols:    []string{"Bearer"},
		CheckOrigin: func(ctx *fasthttp.RequestCtx) bool {
			return h.cors.allows(ctx.Request.Header.Peek("Origin"))
		},
		Error: func(ctx *fasthttp.RequestCtx, status int, reason error) {
			writeError(ctx, apiError{code: codes.InvalidArgument, message: reason.Error(), status: status})
		},
	}
}

// isWebSocket reports whether ctx asks for a WebSocket on a gateway path.
func isWebSocket(ctx *fasthttp.RequestCtx) bool {
	return websocket.FastHTTPIsWebSocketUpgrade(ctx) && bytes.HasPrefix(ctx.Path(), []byte("/v3/"))
}

// serveWebSocket upgrades ctx and runs r's session on the connection. A
// request refused before the upgrade (a bad token, say) gets its HTTP
// error instead.
func (h *Handler) serveWebSocket(ctx *fasthttp.RequestCtx, r *route) {
	tokenFromSubprotocol(ctx)
	var s wsSession
	if r.ws != nil {
		s = r.ws(h, ctx)
	} else {
		s = h.wsUnary(ctx, r)
	}
	if s == nil {
		return // the error is written
	}
	// NB: on failure the upgrader has written the error (newUpgrader).
	_ = h.upgrader.Upgrade(ctx, func(c *websocket.Conn) {
		if !h.sessions.start() {
			return // the handler is closed; fasthttp closes c
		}
		defer h.sessions.wg.Done()
		h.runWebSocket(c, s)
	})
}

// wsSessions counts the sessions running, so that Handler.Close can wait
// for them: fasthttp's shutdown does not wait for hijacked connections.
type wsSessions struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// start counts a new session, unless the handler is closed.
func (s *wsSessions) start() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// closeAndWait refuses new sessions and waits for the running ones (which
// the handler's stop has ended).
func (s *wsSessions) closeAndWait() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
}

// tokenFromSubprotocol moves a token sent as "Sec-WebSocket-Protocol:
// Bearer, <token>" into the Authorization header, unless one is set.
func tokenFromSubprotocol(ctx *fasthttp.RequestCtx) {
	if len(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)) > 0 {
		return
	}
	p := ctx.Request.Header.Peek("Sec-WebSocket-Protocol")
	rest, ok := bytes.CutPrefix(p, []byte("Bearer,"))
	if !ok {
		return
	}
	if tok := bytes.TrimSpace(rest); len(tok) > 0 {
		ctx.Request.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+string(tok))
	}
}

// runWebSocket runs s on c with the read limit, the pings and the stop of
// the handler, and closes c with 1000 (or 1001 when the member stops).
func (h *Handler) runWebSocket(c *websocket.Conn, s wsSession) {
	w := &wsConn{c: c, timeout: h.cfg.WriteTimeout, every: streamKeepAlive}
	c.SetReadLimit(int64(h.maxBody())) // as an HTTP body
	w.stillAlive()
	c.SetPongHandler(func(string) error { w.stillAlive(); return nil })
	over := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ping := time.NewTicker(w.every)
		defer ping.Stop()
		for {
			select {
			case <-over:
				return
			case <-h.streams.c:
				w.end(h)
				return
			case <-h.ctx.Done():
				w.end(h)
				return
			case <-ping.C:
				if c.WriteControl(websocket.PingMessage, nil, time.Now().Add(w.timeout)) != nil {
					w.close(websocket.CloseGoingAway, "")
					return
				}
			}
		}
	}()
	s(w)
	close(over)
	wg.Wait()
	w.end(h)
}

// wsConn is an upgraded gateway connection: the stream sink of a session.
type wsConn struct {
	c       *websocket.Conn
	timeout time.Duration
	every   time.Duration // the ping period
	mu      sync.Mutex    // closed and the read deadline
	closed  bool
}

// write sends each non-empty line of b as one text message, as etcd's
// proxy sends the lines of an answer.
func (w *wsConn) write(b []byte) error {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) == 0 {
			continue
		}
		_ = w.c.SetWriteDeadline(time.Now().Add(w.timeout))
		if err := w.c.WriteMessage(websocket.TextMessage, line); err != nil {
			return err
		}
	}
	return nil
}

// keepAlive is a no-op: runWebSocket pings every connection.
func (w *wsConn) keepAlive() error { return nil }

// stillAlive gives the client wsLivePings more ping periods.
func (w *wsConn) stillAlive() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		_ = w.c.SetReadDeadline(time.Now().Add(wsLivePings * w.every))
	}
}

// close sends a close message with code and text, once, and ends a read
// or write in progress. NB: fasthttp closes a hijacked connection only
// once the session returns (its Close does nothing before), so a client
// that does not answer the close message, or does not read, would keep the
// session waiting; a deadline in the past ends its reads and writes now.
func (w *wsConn) close(code int, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	_ = w.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	_ = w.c.NetConn().SetDeadline(time.Unix(1, 0))
	_ = w.c.Close()
}

// end closes the connection: 1001 (going away) when the member is
// stopping, 1000 otherwise.
func (w *wsConn) end(h *Handler) {
	select {
	case <-h.streams.c:
	case <-h.ctx.Done():
	default:
		w.close(websocket.CloseNormalClosure, "")
		return
	}
	w.close(websocket.CloseGoingAway, "server stopped")
}

// readEach reads messages until the connection ends, calling each with
// every one; each returns the line to end the session with, if it wants to
// end it. readEach returns that line (nil when the client went away).
func (w *wsConn) readEach(each func(msg []byte) (last []byte, more bool)) []byte {
	for {
		_, msg, err := w.c.ReadMessage()
		if err != nil {
			return nil
		}
		w.stillAlive()
		if last, more := each(msg); !more {
			return last
		}
	}
}

// pumpWhileReading runs pump, which writes the session's stream, while a
// reader goroutine hands every message to each (as readEach); pump's end
// is closed when the reader stops, after the line each ended with is set.
// When pump returns the connection is closed, which stops the reader.
func (w *wsConn) pumpWhileReading(h *Handler, each func(msg []byte) ([]byte, bool), pump func(end *streamEnd)) {
	end := &streamEnd{c: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(end.c)
		end.msg = w.readEach(each)
	}()
	pump(end)
	w.end(h)
	wg.Wait()
}

// readFirst reads the first message; ok is false when the client went
// away first.
func (w *wsConn) readFirst() (msg []byte, ok bool) {
	_, msg, err := w.c.ReadMessage()
	if err != nil {
		return nil, false
	}
	w.stillAlive()
	return msg, true
}

// sessionAPI is the server as the API T a session needs, with the
// request's context (auth.go); on failure the error is written.
func sessionAPI[T any](h *Handler, ctx *fasthttp.RequestCtx) (api T, cctx context.Context, ok bool) {
	if api, ok = h.kv.(T); !ok {
		writeError(ctx, errNotFound)
		return api, nil, false
	}
	cctx, ok = h.requestContext(ctx)
	return api, cctx, ok
}

// wsRequests joins the JSON requests of a streaming session's messages.
// etcd's WebSocket proxy writes every message, and a newline after it,
// into one request body, so one message may hold several objects and one
// object may span messages where a newline may stand (between tokens,
// not inside a string): the part of an object not yet complete waits for
// the next message.
type wsRequests[T any, P interface {
	*T
	proto.Message
}] struct {
	pending []byte
}

// add takes one message and returns the requests completed by it. A
// partial object larger than limit is an error, as a body that large is.
func (r *wsRequests[T, P]) add(msg []byte, limit int) ([]P, error) {
	r.pending = append(append(r.pending, msg...), '\n')
	out, used, err := decodeJSONObjects[T, P](r.pending)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	rest := copy(r.pending, r.pending[used:])
	r.pending = r.pending[:rest]
	if rest > limit {
		return nil, fmt.Errorf("request is larger than %d bytes", limit)
	}
	return out, nil
}

// requestError is grpc-gateway's error line for a malformed request.
func requestError(err error) []byte { return appendErrorChunk(nil, badRequest(err.Error())) }

// wsWatch is /v3/watch over a WebSocket: requests are applied as their
// messages arrive, while the responses go out.
func wsWatch(h *Handler, ctx *fasthttp.RequestCtx) wsSession {
	wa, cctx, ok := sessionAPI[WatchAPI](h, ctx)
	if !ok {
		return nil
	}
	progress, maxPer, batchDelay := h.watchLimits()
	return func(w *wsConn) {
		ws := wa.WatchHub().NewStream()
		defer ws.Close()
		var in wsRequests[pb.WatchRequest, *pb.WatchRequest]
		w.pumpWhileReading(h, func(msg []byte) ([]byte, bool) {
			reqs, err := in.add(msg, h.maxBody())
			if err != nil {
				return requestError(err), false
			}
			for _, req := range reqs {
				h.applyWatchRequest(cctx, ws, req, maxPer)
			}
			return nil, true
		}, func(end *streamEnd) {
			h.pumpWatch(w, ws, progress, batchDelay, gwWatchEncoder(wa), end)
		})
	}
}

// wsLeaseKeepAlive is /v3/lease/keepalive over a WebSocket: each request
// is renewed and answered as it arrives.
func wsLeaseKeepAlive(h *Handler, ctx *fasthttp.RequestCtx) wsSession {
	l, cctx, ok := sessionAPI[LeaseAPI](h, ctx)
	if !ok {
		return nil
	}
	return func(w *wsConn) {
		var buf []byte
		var in wsRequests[pb.LeaseKeepAliveRequest, *pb.LeaseKeepAliveRequest]
		last := w.readEach(func(msg []byte) ([]byte, bool) {
			reqs, err := in.add(msg, h.maxBody())
			if err != nil {
				return requestError(err), false
			}
			for _, req := range reqs {
				if buf, err = appendRenewal(buf[:0], cctx, l, req); err != nil {
					return appendErrorChunk(buf[:0], toAPIError(err)), false
				}
				if w.write(buf) != nil {
					return nil, false
				}
			}
			return nil, true
		})
		if last != nil {
			_ = w.write(last)
		}
	}
}

// wsObserve is /v3/election/observe over a WebSocket: the first message is
// the LeaderRequest, later ones are ignored.
func wsObserve(h *Handler, ctx *fasthttp.RequestCtx) wsSession {
	if h.conc == nil {
		writeError(ctx, errNotFound)
		return nil
	}
	callCtx := h.outgoingContext(h.callCtx, ctx)
	return func(w *wsConn) {
		msg, ok := w.readFirst()
		if !ok {
			return
		}
		req := new(epb.LeaderRequest)
		if len(bytes.TrimSpace(msg)) > 0 {
			if err := gwUnmarshal.Unmarshal(msg, req); err != nil {
				_ = w.write(requestError(err))
				return
			}
		}
		oc, err := h.startObserve(callCtx, req)
		if err != nil {
			_ = w.write(appendErrorChunk(nil, h.grpcError(err)))
			return
		}
		w.pumpWhileReading(h, func([]byte) ([]byte, bool) { return nil, true }, func(end *streamEnd) {
			h.pumpObserve(w, oc, nil, end)
		})
	}
}

// wsUnary serves any other /v3/ path over a WebSocket: the first message
// is the body of the path's POST, whose answer is sent back.
func (h *Handler) wsUnary(ctx *fasthttp.RequestCtx, r *route) wsSession {
	path := string(ctx.Path())
	auth := string(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization))
	return func(w *wsConn) {
		msg, ok := w.readFirst()
		if !ok {
			return
		}
		var rc fasthttp.RequestCtx
		// NB: the socket is the request's connection, so that a Lock or a
		// Campaign whose client goes away is withdrawn (clientgone.go).
		rc.Init2(w.c.NetConn(), zapLogger{h.cfg.Logger}, false)
		rc.Request.Header.SetMethod(fasthttp.MethodPost)
		rc.Request.SetRequestURI(path)
		if auth != "" {
			rc.Request.Header.Set(fasthttp.HeaderAuthorization, auth)
		}
		rc.Request.SetBody(msg)
		r.serve(h, &rc)
		_ = w.write(rc.Response.Body())
	}
}
