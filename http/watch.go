package http

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/etcderr"
	"github.com/metastore/metastore/mvcc"
	"github.com/metastore/metastore/server"
)

// Watches over HTTP: etcd's gateway stream (POST /v3/watch) and the REST
// API's Server-Sent Events (GET /v1/watch/{key}). Both open one stream on
// the member's watch hub, as a gRPC Watch call does (grpc/watch.go), and
// turn what the hub queues into bytes on a fasthttp streaming body.
//
// A streaming body outlives the handler: fasthttp runs the writer on its
// own goroutine and copies its output to the connection chunk by chunk.
// Three things bound it:
//
//   - The server's write timeout would cut a long watch (fasthttp sets one
//     deadline per response). The handler marks the deadline as its own,
//     and the writer pushes the connection's write deadline out by
//     WriteTimeout before every write: each write must still finish within
//     WriteTimeout (a client that stops reading is dropped), but the stream
//     as a whole has no limit.
//   - fasthttp does not report a client that goes away; only a failed write
//     does. A quiet stream therefore writes a keep-alive every
//     streamKeepAlive (a blank line in the JSON stream, an SSE comment),
//     so a vanished client is noticed and its hub stream released within
//     about that long. It also keeps proxies from timing the stream out.
//   - Handler.Close (and Frontend.Shutdown, which must not wait for streams
//     that never end) stops every writer; the hub stream is closed when
//     its writer returns, whatever the reason.

// WatchAPI is what the watch endpoints need; *server.Server implements it.
type WatchAPI interface {
	WatchHub() *mvcc.WatchHub
	// Header is a response header at rev with the cluster ID, member ID
	// and raft term filled.
	Header(rev int64) *pb.ResponseHeader
}

// rangeAuthorizer is the watch creation check (read permission); the
// server implements it.
type rangeAuthorizer interface {
	AuthorizeRange(ctx context.Context, key, end []byte) error
}

var _ WatchAPI = (*server.Server)(nil)

// streamKeepAlive is how often a quiet stream writes a keep-alive. A
// variable so that tests can shorten it.
var streamKeepAlive = 10 * time.Second

// Progress notification interval bounds (etcd's, as grpc/watch.go).
const minProgressInterval = 100 * time.Millisecond

// Keep-alives: whitespace between JSON objects (every JSON stream decoder
// skips it), and an SSE comment line.
var (
	gwKeepAlive  = []byte("\n")
	sseKeepAlive = []byte(": keep-alive\n\n")
)

// streamStop ends every stream of a handler (Shutdown, Close).
type streamStop struct {
	once sync.Once
	c    chan struct{}
}

func newStreamStop() *streamStop { return &streamStop{c: make(chan struct{})} }

func (s *streamStop) stop() { s.once.Do(func() { close(s.c) }) }

// StopStreams ends every watch and observe stream in flight and every
// waiting Lock and Campaign; new ones end at once. Frontend.Shutdown calls
// it first, so a graceful shutdown does not wait for calls that would
// never finish on their own.
func (h *Handler) StopStreams() {
	h.streams.stop()
	h.stopCalls()
}

// watchEncoder appends the bytes of one hub response to dst; end reports
// that the stream is over after it.
type watchEncoder func(dst []byte, r *mvcc.WatchResponse) (out []byte, end bool)

// watchLimits are the server's --watch-progress-notify-interval,
// --max-watchers-per-stream (0: no limit) and --watch-batch-delay.
func (h *Handler) watchLimits() (progress time.Duration, maxPerStream int, batchDelay time.Duration) {
	progress = server.DefaultWatchProgressNotifyInterval
	if c, ok := h.kv.(interface{ Config() server.Config }); ok {
		cfg := c.Config()
		if cfg.WatchProgressNotifyInterval > 0 {
			progress = cfg.WatchProgressNotifyInterval
		}
		maxPerStream = cfg.MaxWatchersPerStream
		batchDelay = max(cfg.WatchBatchDelay, 0)
	}
	return max(progress, minProgressInterval), maxPerStream, batchDelay
}

// serveStream answers with a streaming body that carries ws's responses,
// encoded by enc; it owns ws from here on and closes it.
func (h *Handler) serveStream(ctx *fasthttp.RequestCtx, ws *mvcc.WatchStream, keepAlive []byte, progress, batchDelay time.Duration, enc watchEncoder) {
	timeout := h.cfg.WriteTimeout
	conn := ctx.Conn()
	// NB: marks the write deadline as the handler's, so fasthttp does not
	// set its own for the whole response; the writer moves it on.
	_ = ctx.SetWriteDeadline(time.Now().Add(timeout))
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer ws.Close()
		h.pumpWatch(&streamOut{w: w, conn: conn, timeout: timeout, alive: keepAlive}, ws, progress, batchDelay, enc, nil)
	})
}

// streamSink is where a stream's output goes: a chunked HTTP body
// (streamOut) or WebSocket messages (wsOut, websocket.go).
type streamSink interface {
	// write writes b: one or more whole lines (events for SSE).
	write(b []byte) error
	// keepAlive tells a quiet client the stream is alive; its failure
	// shows the client is gone.
	keepAlive() error
}

// streamEnd ends a stream from outside its writer: c is closed when the
// client's side is over (a WebSocket's reader saw it close or send a
// malformed request), after msg, the last line to send if any, is set.
// A nil *streamEnd never ends.
type streamEnd struct {
	c   chan struct{}
	msg []byte
}

// done is closed when the stream must end; nil for a nil end.
func (e *streamEnd) done() <-chan struct{} {
	if e == nil {
		return nil
	}
	return e.c
}

// flush writes the last line, if any, to out.
func (e *streamEnd) flush(out streamSink) {
	if e.msg != nil {
		_ = out.write(e.msg)
	}
}

// pumpWatch writes ws's responses, encoded by enc, to out until the
// stream ends: the client is gone (a write fails, or end), the hub or the
// handler stops, or enc says so. After each write it paces as gRPC watch
// streams do (server.PauseAfterWatchBatch with batchDelay). end may be nil.
func (h *Handler) pumpWatch(out streamSink, ws *mvcc.WatchStream, progress, batchDelay time.Duration, enc watchEncoder, end *streamEnd) {
	stop, done, ended := h.streams.c, h.ctx.Done(), end.done()
	keep := time.NewTicker(streamKeepAlive)
	defer keep.Stop()
	var tick <-chan time.Time
	if progress > 0 {
		// Jitter as etcd: streams opened together do not tick together.
		t := time.NewTicker(progress + rand.N(progress/10+1))
		defer t.Stop()
		tick = t.C
	}
	var resps []mvcc.WatchResponse
	var buf []byte
	wrote := false
	for {
		select {
		case <-ws.Ready():
			resps = ws.Take(resps[:0])
			buf = buf[:0]
			last := false
			for i := range resps {
				if buf, last = enc(buf, &resps[i]); last {
					break
				}
			}
			clear(resps) // drop the events for the collector
			if len(buf) > 0 {
				if out.write(buf) != nil {
					return
				}
				wrote = true
			}
			if cap(buf) > 1<<20 {
				buf = nil // a large replay must not pin its memory
			}
			if last {
				return
			}
			server.PauseAfterWatchBatch(len(resps), batchDelay)
		case <-keep.C:
			if !wrote && out.keepAlive() != nil {
				return // the client is gone
			}
			wrote = false
		case <-tick:
			ws.ProgressTick()
		case <-ended:
			end.flush(out)
			return
		case <-ws.Done():
			return // the hub is closing
		case <-stop:
			return
		case <-done:
			return
		}
	}
}

// streamOut writes to a streaming body, each write flushed and bounded by
// the write timeout; alive is its keep-alive.
type streamOut struct {
	w       *bufio.Writer
	conn    net.Conn
	timeout time.Duration
	alive   []byte
}

func (o *streamOut) keepAlive() error { return o.write(o.alive) }

// writeResult writes m to out as one line of a gateway stream,
// {"result":m} and a newline, encoded into buf; a message that does not
// encode ends the stream with an error line instead. It returns buf for
// the next line.
func writeResult(out streamSink, buf []byte, m proto.Message) ([]byte, error) {
	buf = append(buf[:0], `{"result":`...)
	b, err := gwMarshal.MarshalAppend(buf, m)
	if err != nil {
		_ = out.write(appendErrorChunk(buf[:0], toAPIError(err)))
		return buf, err
	}
	buf = append(b, "}\n"...)
	return buf, out.write(buf)
}

func (o *streamOut) write(b []byte) error {
	if o.conn != nil && o.timeout > 0 {
		// NB: net.Conn deadlines may be set from any goroutine; fasthttp
		// does not touch this one until the stream has ended.
		_ = o.conn.SetWriteDeadline(time.Now().Add(o.timeout))
	}
	if _, err := o.w.Write(b); err != nil {
		return err
	}
	return o.w.Flush()
}

// --- etcd's gateway: POST /v3/watch ------------------------------------------

// gwWatch is etcd's gateway watch: the body holds one or more WatchRequest
// JSON objects (create, cancel or progress requests), applied in order;
// the answer is a stream of {"result":<WatchResponse>} objects, one per
// line, from the created response on, until the client goes away (as
// grpc-gateway forwards a gRPC stream).
//
// NB: etcd's gateway logs a malformed request and goes on with what it
// decoded before it; here a body that is not a sequence of WatchRequests
// is a 400 before the stream starts, which a client can see.
func (h *Handler) gwWatch(ctx *fasthttp.RequestCtx) {
	wa, ok := h.kv.(WatchAPI)
	if !ok {
		writeError(ctx, errNotFound)
		return
	}
	reqs, cctx, ok := gwStreamRequests[pb.WatchRequest](h, ctx)
	if !ok {
		return
	}
	progress, maxPer, batchDelay := h.watchLimits()
	ws := wa.WatchHub().NewStream()
	for _, req := range reqs {
		h.applyWatchRequest(cctx, ws, req, maxPer)
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(contentJSON)
	h.serveStream(ctx, ws, gwKeepAlive, progress, batchDelay, gwWatchEncoder(wa))
}

// applyWatchRequest applies one request of a gateway watch stream to ws:
// create (after the read permission check), cancel or progress.
func (h *Handler) applyWatchRequest(cctx context.Context, ws *mvcc.WatchStream, req *pb.WatchRequest, maxPerStream int) {
	server.ApplyWatchRequest(ws, req, maxPerStream, func(c *pb.WatchCreateRequest) bool {
		return h.authorizeWatch(cctx, ws, c)
	})
}

// authorizeWatch refuses a watch on a range the caller may not read, as
// etcd does: created and canceled at once with the error as the reason.
func (h *Handler) authorizeWatch(ctx context.Context, ws *mvcc.WatchStream, c *pb.WatchCreateRequest) bool {
	a, ok := h.kv.(rangeAuthorizer)
	if !ok {
		return true
	}
	key := c.Key
	if len(key) == 0 {
		key = []byte{0}
	}
	if err := a.AuthorizeRange(ctx, key, c.RangeEnd); err != nil {
		ws.Reject(etcderr.FromError(err).Error()) // as the gRPC service words it
		return false
	}
	return true
}

// gwWatchEncoder writes each response as {"result":<WatchResponse>} and a
// newline. Responses are never fragmented: a JSON stream has no message
// size limit, and an unfragmented response is valid for a watch created
// with fragment=true.
func gwWatchEncoder(wa WatchAPI) watchEncoder {
	var hdr *pb.ResponseHeader // shared by consecutive responses at one revision
	return func(dst []byte, r *mvcc.WatchResponse) ([]byte, bool) {
		if hdr == nil || hdr.Revision != r.Revision {
			hdr = wa.Header(r.Revision)
		}
		wr := &pb.WatchResponse{Header: hdr, WatchId: r.WatchID, Created: r.Created, Canceled: r.Canceled,
			CompactRevision: r.CompactRevision, CancelReason: r.CancelReason, Events: mvcc.EventsFor(r.Events, r.PrevKV)}
		n := len(dst)
		dst = append(dst, `{"result":`...)
		out, err := gwMarshal.MarshalAppend(dst, wr)
		if err != nil {
			// grpc-gateway's stream error chunk, then the end.
			return appendErrorChunk(dst[:n], toAPIError(err)), true
		}
		return append(out, "}\n"...), false
	}
}

// appendErrorChunk appends grpc-gateway's error object of a stream:
// {"error":{"code":N,"message":"..."}} and a newline.
func appendErrorChunk(dst []byte, e apiError) []byte {
	dst = append(dst, `{"error":{"code":`...)
	dst = strconv.AppendInt(dst, int64(e.code), 10)
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, e.message)
	return append(dst, "}}\n"...)
}

// decodeJSONStream decodes a body of JSON objects one after another (what
// grpc-gateway reads for a client-streaming call), each as protojson into
// a new P. An empty body is no request.
// gwStreamRequests decodes a gateway body of T requests (a JSON stream)
// and returns them with the request's context (auth.go); on a malformed
// body or a bad token it has written the error and returns false.
func gwStreamRequests[T any, P interface {
	*T
	proto.Message
}](h *Handler, ctx *fasthttp.RequestCtx) ([]P, context.Context, bool) {
	reqs, err := decodeJSONStream[T, P](ctx.PostBody())
	if err != nil {
		writeError(ctx, badRequest(err.Error()))
		return nil, nil, false
	}
	cctx, ok := h.requestContext(ctx)
	return reqs, cctx, ok
}

func decodeJSONStream[T any, P interface {
	*T
	proto.Message
}](body []byte) ([]P, error) {
	out, _, err := decodeJSONObjects[T, P](body)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// decodeJSONObjects decodes the JSON objects in data, one after another;
// used is how many bytes the whole ones took. An object cut off at the
// end returns io.ErrUnexpectedEOF with the whole ones before it.
func decodeJSONObjects[T any, P interface {
	*T
	proto.Message
}](data []byte) (out []P, used int, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return out, len(data), nil
		}
		if err != nil {
			return out, used, err
		}
		m := P(new(T))
		if err := gwUnmarshal.Unmarshal(raw, m); err != nil {
			return out, used, err
		}
		out = append(out, m)
		used = int(dec.InputOffset())
	}
}

// --- REST: GET /v1/watch/{key} -------------------------------------------------

// restWatch is the REST watch, as Server-Sent Events:
//
//	GET /v1/watch/{key}[?prefix=true][&rev=N][&prev_kv=true][&encoding=base64]
//
// It answers text/event-stream: first "event: created" (id: the revision
// the watch starts after, data: {"revision":R} the store's revision),
// then per event "event: put" or "event: delete" with data: the key as in
// a /v1 listing ("prev_kv" inside when asked and the key existed). The
// last event of each revision carries "id: <revision>", so a client that
// reconnects with Last-Event-ID resumes after the last whole revision it
// got (the header wins over rev). A start revision that is compacted gets
// "event: compacted" with {"compact_revision":N}, and the stream ends.
func (h *Handler) restWatch(ctx *fasthttp.RequestCtx) {
	wa, ok := h.kv.(WatchAPI)
	if !ok {
		writeError(ctx, errNotFound)
		return
	}
	raw := ctx.URI().PathOriginal()[len(restWatchPfx):]
	key, ok := unescapePath(nil, raw)
	if !ok {
		writeError(ctx, badRequest("malformed percent-encoding in the key"))
		return
	}
	args := ctx.QueryArgs()
	prefix, ok1 := boolArg(args, "prefix")
	prevKV, ok2 := boolArg(args, "prev_kv")
	start, ok3 := intArg(args, "rev")
	var forceBase64 bool
	switch string(args.Peek("encoding")) {
	case "", "auto":
	case "base64":
		forceBase64 = true
	default:
		writeError(ctx, badRequest("encoding must be auto or base64"))
		return
	}
	switch {
	case !ok1:
		writeError(ctx, badRequest("prefix must be true or false"))
		return
	case !ok2:
		writeError(ctx, badRequest("prev_kv must be true or false"))
		return
	case !ok3:
		writeError(ctx, badRequest("rev must be a non-negative integer"))
		return
	}
	if id := bytes.TrimSpace(ctx.Request.Header.Peek("Last-Event-ID")); len(id) > 0 {
		last, ok := parseInt64(id)
		if !ok {
			writeError(ctx, badRequest("Last-Event-ID must be a revision"))
			return
		}
		start = last + 1
	}
	var end []byte
	switch {
	case prefix && len(key) == 0:
		key, end = []byte{0}, []byte{0} // every key
	case prefix:
		end = prefixEnd(nil, key)
	case len(key) == 0:
		writeError(ctx, toAPIError(mvcc.ErrEmptyKey))
		return
	}
	cctx, ok := h.requestContext(ctx) // auth.go
	if !ok {
		return
	}
	if a, ok := h.kv.(rangeAuthorizer); ok {
		if err := a.AuthorizeRange(cctx, key, end); err != nil {
			writeError(ctx, toAPIError(err))
			return
		}
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	ctx.Response.Header.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	if ctx.IsHead() {
		return
	}
	ws := wa.WatchHub().NewStream()
	if _, err := ws.Watch(mvcc.WatchRequest{Key: key, End: end, StartRev: start, PrevKV: prevKV}); err != nil {
		ws.Close()
		ctx.ResetBody()
		writeError(ctx, toAPIError(err))
		return
	}
	h.serveStream(ctx, ws, sseKeepAlive, 0, 0, sseEncoder(start, forceBase64))
}

// sseEncoder writes hub responses as Server-Sent Events (see restWatch).
func sseEncoder(start int64, forceBase64 bool) watchEncoder {
	return func(dst []byte, r *mvcc.WatchResponse) ([]byte, bool) {
		switch {
		case r.Created:
			after := r.Revision
			if start > 0 {
				after = start - 1
			}
			dst = append(dst, "event: created\nid: "...)
			dst = strconv.AppendInt(dst, after, 10)
			dst = append(dst, "\ndata: {\"revision\":"...)
			dst = strconv.AppendInt(dst, r.Revision, 10)
			return append(dst, "}\n\n"...), false
		case r.CompactRevision != 0:
			dst = append(dst, "event: compacted\ndata: {\"compact_revision\":"...)
			dst = strconv.AppendInt(dst, r.CompactRevision, 10)
			return append(dst, "}\n\n"...), true
		case r.Canceled:
			dst = append(dst, "event: canceled\ndata: {\"reason\":"...)
			dst = appendJSONString(dst, r.CancelReason)
			return append(dst, "}\n\n"...), true
		}
		for i, ev := range r.Events {
			if ev.Type == mvccpb.DELETE {
				dst = append(dst, "event: delete\n"...)
			} else {
				dst = append(dst, "event: put\n"...)
			}
			rev := ev.Kv.ModRevision
			// NB: only the last event of a revision carries its id: a
			// client cut off inside a txn's events resumes at the whole
			// revision, not after it.
			if i == len(r.Events)-1 || r.Events[i+1].Kv.ModRevision != rev {
				dst = append(dst, "id: "...)
				dst = strconv.AppendInt(dst, rev, 10)
				dst = append(dst, '\n')
			}
			dst = append(dst, "data: "...)
			dst = appendKV(dst, ev.Kv, ev.Type == mvccpb.DELETE, forceBase64)
			if r.PrevKV && ev.PrevKv != nil {
				dst = append(dst[:len(dst)-1], `,"prev_kv":`...)
				dst = appendKV(dst, ev.PrevKv, false, forceBase64)
				dst = append(dst, '}')
			}
			dst = append(dst, "\n\n"...)
		}
		return dst, false
	}
}
