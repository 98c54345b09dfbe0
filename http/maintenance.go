package http

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"time"

	"github.com/valyala/fasthttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/server"
	"github.com/metastore/metastore/version"
)

// The Maintenance paths beyond status and alarm: hash and hashkv, the
// snapshot stream, downgrade. Like the gRPC service (grpc/auth.go,
// adminMethods) they are root-only once auth is enabled, with the same
// server call (AuthorizeAdmin); defragment and transfer-leadership are in
// cluster.go.

// adminAuthorizer is the admin check; *server.Server implements it. A KV
// that does not (tests' fakes) is not checked.
type adminAuthorizer interface {
	AuthorizeAdmin(ctx context.Context) error
}

// adminOnly wraps call with the admin check.
func adminOnly[P, R any](h *Handler, call func(context.Context, P) (R, error)) func(context.Context, P) (R, error) {
	if a, ok := h.kv.(adminAuthorizer); ok {
		return gatedBy(a.AuthorizeAdmin, call)
	}
	return call
}

// gatedBy wraps call so that check runs first and its error is the answer.
func gatedBy[P, R any](check func(context.Context) error, call func(context.Context, P) (R, error)) func(context.Context, P) (R, error) {
	return func(ctx context.Context, r P) (R, error) {
		if err := check(ctx); err != nil {
			var zero R
			return zero, err
		}
		return call(ctx, r)
	}
}

func (h *Handler) gwHash(ctx *fasthttp.RequestCtx) {
	gateway(h, ctx, nil, adminOnly(h, h.mt.Hash))
}

func (h *Handler) gwHashKV(ctx *fasthttp.RequestCtx) {
	gateway(h, ctx, nil, adminOnly(h, h.mt.HashKV))
}

// downgrade answers as the gRPC service does (server.Downgrade), with the
// response header etcd fills.
func downgrade(c ClusterAPI, ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	resp, err := c.Downgrade(ctx, r)
	if err != nil {
		return nil, err
	}
	if resp.Header == nil {
		resp.Header = c.LeaseHeader()
	}
	return resp, nil
}

// SnapshotAPI is what /v3/maintenance/snapshot needs; *server.Server
// implements it.
type SnapshotAPI interface {
	NewStateSnapshot() (*server.StateSnapshot, error)
	AuthorizeAdmin(ctx context.Context) error
	Header(rev int64) *pb.ResponseHeader
}

var _ SnapshotAPI = (*server.Server)(nil)

// snapshotChunk is the blob size of each message (etcd's and the gRPC
// service's: 32 KiB).
const snapshotChunk = 32 * 1024

// gwSnapshot is etcd's gateway snapshot: a stream of
// {"result":<SnapshotResponse>} lines, as the gRPC service sends them
// (grpc/maintenance.go): blobs of the state stream (base64 in JSON) with
// remaining_bytes counting down to 0, then one last message whose blob is
// the SHA-256 of every blob before it, which is what etcdctl appends to a
// saved snapshot. Refusals (not root, a bad token) get their HTTP status
// and, as from etcd's gateway, the stream's error line
// {"error":{"code":N,"message":"..."}}; a failure mid-stream ends the
// stream with that line.
func (h *Handler) gwSnapshot(ctx *fasthttp.RequestCtx) {
	sa, ok := h.kv.(SnapshotAPI)
	if !ok {
		writeError(ctx, errNotFound)
		return
	}
	if !decodeRequest(ctx, new(pb.SnapshotRequest)) {
		return
	}
	g, ok := h.kv.(AuthGate)
	cctx := h.ctx
	if ok {
		tok := bytes.TrimPrefix(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization), []byte("Bearer "))
		c, err := g.AuthContext(h.ctx, string(tok))
		if err != nil {
			writeStreamError(ctx, toAPIError(err))
			return
		}
		cctx = c
	}
	if err := sa.AuthorizeAdmin(cctx); err != nil {
		writeStreamError(ctx, toAPIError(err))
		return
	}
	ss, err := sa.NewStateSnapshot()
	if err != nil {
		writeStreamError(ctx, toAPIError(err))
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(contentJSON)
	timeout := h.cfg.WriteTimeout
	conn := ctx.Conn()
	_ = ctx.SetWriteDeadline(time.Now().Add(timeout)) // see serveStream (watch.go)
	stop, done := h.streams.c, h.ctx.Done()
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		out := streamOut{w: w, conn: conn, timeout: timeout}
		// NB: the snapshot is closed by the reader's Close, only once its
		// WriteTo has returned (server.SnapshotReader).
		pr := server.SnapshotReader(ss)
		defer pr.Close()
		hdr := sa.Header(ss.Revision())
		sum := sha256.New()
		chunk := make([]byte, snapshotChunk)
		var buf []byte
		send := func(m *pb.SnapshotResponse) bool {
			var err error
			buf, err = writeResult(&out, buf, m)
			return err == nil
		}
		total, sent := ss.Size(), int64(0)
		for total-sent > 0 {
			select {
			case <-stop:
				return
			case <-done:
				return
			default:
			}
			n, err := io.ReadFull(pr, chunk[:min(snapshotChunk, total-sent)])
			if err != nil {
				_ = out.write(appendErrorChunk(buf[:0], toAPIError(err)))
				return
			}
			sent += int64(n)
			sum.Write(chunk[:n])
			if !send(&pb.SnapshotResponse{Header: hdr, RemainingBytes: uint64(total - sent), Blob: chunk[:n],
				Version: version.EtcdStorageVersion}) {
				return
			}
		}
		send(&pb.SnapshotResponse{Header: hdr, Blob: sum.Sum(nil), Version: version.EtcdStorageVersion})
	})
}

// writeStreamError answers a streaming path that fails before its first
// message as grpc-gateway does: the error's HTTP status with the stream's
// error line. (A malformed request body is refused before any call, with
// the unary error body, as grpc-gateway does too.)
func writeStreamError(ctx *fasthttp.RequestCtx, e apiError) {
	b := getBuf()
	buf := appendErrorChunk((*b)[:0], e)
	ctx.SetStatusCode(e.status)
	ctx.SetContentType(contentJSON)
	ctx.SetBody(buf)
	*b = buf
	putBuf(b)
}
