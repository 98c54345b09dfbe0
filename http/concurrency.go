package http

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"time"

	"github.com/valyala/fasthttp"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
)

// etcd's gateway paths of the Lock and Election services (routes in
// handler.go):
//
//	/v3/lock/lock            LockRequest       blocks until the lock is held
//	/v3/lock/unlock          UnlockRequest
//	/v3/election/campaign    CampaignRequest   blocks until the lease leads
//	/v3/election/proclaim    ProclaimRequest
//	/v3/election/leader      LeaderRequest
//	/v3/election/observe     LeaderRequest     stream of {"result":<LeaderResponse>}
//	/v3/election/resign      ResignRequest
//
// etcd's gateway serves every path by calling its own gRPC server, and
// these do the same: the services live in grpc/ (lock.go, election.go:
// clientv3's concurrency package over an in-process client), which this
// package may not import, and a second implementation here could drift
// from it. Serve (serve.go) dials the member's gRPC server over an
// in-memory listener and the handlers below are its clients. The caller's
// token rides along as the metadata clientv3 sends, so the gRPC auth
// interceptor checks it as for any gRPC client, and answers and errors are
// the gRPC service's, encoded as the rest of the gateway (etcd's errors
// there are code Unknown, HTTP 500, as etcd's gateway answers).
//
// NB: fasthttp does not report a client that goes away while its Lock or
// Campaign waits: the call goes on until it succeeds (then the lock is
// held on the caller's lease until Unlock or the lease ends, as a lock
// whose holder crashed) or the member stops. A stream (observe) notices a
// vanished client at its next write, keep-alives included.

// inprocConn is a gRPC client connection to this member's own gRPC server
// over an in-memory listener: never the advertised client URL, which may
// need client certificates this process does not have.
type inprocConn struct {
	lis  *bufconn.Listener
	conn *grpc.ClientConn
	done chan struct{} // closed when gs stops serving lis
}

// inprocBufSize is the in-memory connection's buffer per direction.
const inprocBufSize = 1 << 20

// dialInproc serves gs on a new in-memory listener and dials it.
func dialInproc(gs GRPCServer) (*inprocConn, error) {
	lis := bufconn.Listen(inprocBufSize)
	conn, err := grpc.NewClient("passthrough:///metastore-gateway",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
	)
	if err != nil {
		lis.Close()
		return nil, err
	}
	c := &inprocConn{lis: lis, conn: conn, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		// NB: returns when lis is closed (close below) or gs stops; either
		// way the error says nothing the caller needs.
		_ = gs.Serve(lis)
	}()
	return c, nil
}

// close closes the connection and the listener and waits until gs has
// stopped serving it.
func (c *inprocConn) close() {
	c.conn.Close()
	c.lis.Close()
	<-c.done
}

// concurrencyClients are the gRPC clients the Lock and Election paths call.
type concurrencyClients struct {
	lock     v3lockpb.LockClient
	election epb.ElectionClient
}

// useGRPC makes the Lock and Election paths call the gRPC services on cc.
// Call it before serving (Serve does); without it those paths are 404.
func (h *Handler) useGRPC(cc grpc.ClientConnInterface) {
	h.conc = &concurrencyClients{lock: v3lockpb.NewLockClient(cc), election: epb.NewElectionClient(cc)}
}

func lockClient(c *concurrencyClients) v3lockpb.LockClient    { return c.lock }
func electionClient(c *concurrencyClients) epb.ElectionClient { return c.election }

// grpcRoute serves a unary gateway path by calling the gRPC method call on
// the in-process connection.
func grpcRoute[C any, T any, P interface {
	*T
	proto.Message
}, R proto.Message](client func(*concurrencyClients) C, call func(C, context.Context, P, ...grpc.CallOption) (R, error)) func(*Handler, *fasthttp.RequestCtx) {
	return func(h *Handler, ctx *fasthttp.RequestCtx) {
		if h.conc == nil {
			writeError(ctx, errNotFound)
			return
		}
		req := P(new(T))
		if !decodeRequest(ctx, req) {
			return
		}
		cctx, stop := clientContext(h.outgoingContext(h.callCtx, ctx), ctx)
		resp, err := call(client(h.conc), cctx, req)
		stop()
		if err != nil {
			writeError(ctx, h.grpcError(err))
			return
		}
		writeProto(ctx, resp)
	}
}

// outgoingContext is parent carrying the request's token (the
// Authorization header, raw or "Bearer <token>") as clientv3 sends it.
func (h *Handler) outgoingContext(parent context.Context, ctx *fasthttp.RequestCtx) context.Context {
	tok := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	if len(tok) == 0 {
		return parent
	}
	tok = bytes.TrimPrefix(tok, []byte("Bearer "))
	return metadata.AppendToOutgoingContext(parent, rpctypes.TokenFieldNameGRPC, string(tok))
}

// grpcError is the answer to an error of an in-process call: a call ended
// because the member is stopping is etcd's "server stopped" (Unavailable,
// 503), as a gRPC client of a stopping member sees it.
func (h *Handler) grpcError(err error) apiError {
	if h.callCtx.Err() != nil && status.Code(err) == codes.Canceled {
		return fromStatus(rpctypes.ErrGRPCStopped)
	}
	return toAPIError(err)
}

// gwObserve is etcd's gateway observe: the body is a LeaderRequest, the
// answer a stream of {"result":<LeaderResponse>} lines, one per leader and
// per proclaimed value, from the current leader on, until the client goes
// away or the member stops.
//
// As grpc-gateway, nothing is answered until the first message or error:
// an error before any message (a bad token, say) gets its own HTTP status
// and the stream's error line; a stream that ends without a message is an
// empty 200.
// Unlike grpc-gateway, a stream with nothing to say within streamKeepAlive
// (an election without a leader) is answered 200 then and kept alive like
// a watch, so that a client that goes away is noticed.
func (h *Handler) gwObserve(ctx *fasthttp.RequestCtx) {
	if h.conc == nil {
		writeError(ctx, errNotFound)
		return
	}
	req := new(epb.LeaderRequest)
	if !decodeRequest(ctx, req) {
		return
	}
	oc, err := h.startObserve(h.outgoingContext(h.callCtx, ctx), req)
	if err != nil {
		writeStreamError(ctx, h.grpcError(err))
		return
	}

	var first *epb.LeaderResponse
	wait := time.NewTimer(streamKeepAlive)
	select {
	case first = <-oc.msgs:
	case err := <-oc.errc:
		wait.Stop()
		oc.cancel()
		if errors.Is(err, io.EOF) {
			ctx.SetStatusCode(fasthttp.StatusOK)
			ctx.SetContentType(contentJSON)
			return
		}
		writeStreamError(ctx, h.grpcError(err)) // maintenance.go
		return
	case <-wait.C:
	case <-h.streams.c:
		oc.cancel()
		writeStreamError(ctx, fromStatus(rpctypes.ErrGRPCStopped))
		return
	}
	wait.Stop()

	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(contentJSON)
	timeout := h.cfg.WriteTimeout
	conn := ctx.Conn()
	_ = ctx.SetWriteDeadline(time.Now().Add(timeout)) // see serveStream (watch.go)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		h.pumpObserve(&streamOut{w: w, conn: conn, timeout: timeout, alive: gwKeepAlive}, oc, first, nil)
	})
}

// observeCall is an Observe in flight: its messages as they come, and its
// end (io.EOF when the service ended it).
type observeCall struct {
	sctx   context.Context
	cancel context.CancelFunc
	msgs   chan *epb.LeaderResponse
	errc   chan error
}

// startObserve calls Observe over the in-process connection with parent
// (which carries the token) and receives its messages on a goroutine.
func (h *Handler) startObserve(parent context.Context, req *epb.LeaderRequest) (*observeCall, error) {
	sctx, cancel := context.WithCancel(parent)
	stream, err := h.conc.election.Observe(sctx, req)
	if err != nil {
		cancel()
		return nil, err
	}
	oc := &observeCall{sctx: sctx, cancel: cancel, msgs: make(chan *epb.LeaderResponse), errc: make(chan error, 1)}
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				oc.errc <- err
				return
			}
			select {
			case oc.msgs <- m:
			case <-sctx.Done():
				return
			}
		}
	}()
	return oc, nil
}

// pumpObserve writes oc's messages (first, if not nil, then the rest) to
// out, each as a {"result":...} line, until the call or the client ends
// (end may be nil), or the handler stops; then it cancels the call.
func (h *Handler) pumpObserve(out streamSink, oc *observeCall, first *epb.LeaderResponse, end *streamEnd) {
	defer oc.cancel()
	stop, done, ended := h.streams.c, h.ctx.Done(), end.done()
	keep := time.NewTicker(streamKeepAlive)
	defer keep.Stop()
	var buf []byte
	send := func(m *epb.LeaderResponse) (err error) {
		buf, err = writeResult(out, buf, m)
		return err
	}
	wrote := false
	if first != nil {
		if send(first) != nil {
			return
		}
		wrote = true
	}
	for {
		select {
		case m := <-oc.msgs:
			if send(m) != nil {
				return
			}
			wrote = true
		case err := <-oc.errc:
			if !errors.Is(err, io.EOF) && oc.sctx.Err() == nil {
				// grpc-gateway's error chunk ends the stream.
				_ = out.write(appendErrorChunk(buf[:0], h.grpcError(err)))
			}
			return
		case <-keep.C:
			if !wrote && out.keepAlive() != nil {
				return // the client is gone
			}
			wrote = false
		case <-ended:
			end.flush(out)
			return
		case <-stop:
			return
		case <-done:
			return
		}
	}
}
