package http

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// GRPCServer is the part of *grpc.Server that Frontend uses.
type GRPCServer interface {
	Serve(net.Listener) error
}

// Listeners are the sockets a member serves clients on.
type Listeners struct {
	// Client are etcd's --listen-client-urls: gRPC and HTTP share each
	// (Mux). HTTP are --listen-http-urls: the HTTP API only. Metrics are
	// --listen-metrics-urls: the operations endpoints only.
	Client, HTTP, Metrics []net.Listener
}

// Frontend serves a member's client listeners: gRPC and the HTTP API on the
// client ports, the HTTP API on the HTTP-only ports, the operations
// endpoints on the metrics ports.
type Frontend struct {
	h    *Handler
	lg   *zap.Logger
	api  *fasthttp.Server
	ops  *fasthttp.Server
	muxs []*Mux
	wg   sync.WaitGroup
	// inproc is the gateway's own connection to grpcServer, for the paths
	// served by calling the gRPC services (concurrency.go).
	inproc *inprocConn
}

// Serve starts serving ls and returns at once. grpcServer serves the gRPC
// side of the client listeners, and an in-memory listener that the
// gateway's Lock and Election paths call it on (as etcd's gateway calls its
// gRPC server); the caller stops it (GracefulStop closes only its side of
// each Mux).
func Serve(h *Handler, grpcServer GRPCServer, ls Listeners) *Frontend {
	f := &Frontend{h: h, lg: h.cfg.Logger, api: h.NewServer(h.Handle), ops: h.NewServer(h.HandleOps)}
	if grpcServer != nil {
		c, err := dialInproc(grpcServer)
		if err != nil {
			// grpc.NewClient fails only on bad options, which are fixed.
			f.lg.Error("gateway: no in-process gRPC connection; /v3/lock and /v3/election are not served", zap.Error(err))
		} else {
			f.inproc = c
			h.useGRPC(c.conn)
		}
	}
	for _, l := range ls.Client {
		m := NewMux(l, h.cfg.ReadTimeout, f.lg)
		f.muxs = append(f.muxs, m)
		f.run("client mux", l, m.Serve)
		f.run("grpc", l, func() error { return grpcServer.Serve(m.GRPC()) })
		f.run("http", l, func() error { return f.api.Serve(m.HTTP()) })
	}
	for _, l := range ls.HTTP {
		f.run("http", l, func() error { return f.api.Serve(l) })
	}
	for _, l := range ls.Metrics {
		f.run("metrics", l, func() error { return f.ops.Serve(l) })
	}
	return f
}

func (f *Frontend) run(what string, l net.Listener, serve func() error) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if err := serve(); err != nil && !errors.Is(err, errListenerClosed) && !errors.Is(err, net.ErrClosed) {
			f.lg.Error("client listener stopped", zap.String("server", what), zap.Stringer("addr", l.Addr()), zap.Error(err))
		}
	}()
}

// Shutdown stops accepting, lets HTTP requests in flight finish until ctx
// ends, then closes everything and cancels what is still running. Stop the
// gRPC server alongside (its own GracefulStop). Watch streams end at once:
// they would never finish on their own.
func (f *Frontend) Shutdown(ctx context.Context) {
	f.h.StopStreams()
	var wg sync.WaitGroup
	for _, s := range []*fasthttp.Server{f.api, f.ops} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ShutdownWithContext(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				f.lg.Warn("HTTP shutdown", zap.Error(err))
			}
		}()
	}
	wg.Wait()
	f.Close()
}

// Close closes every listener at once and waits for the serving goroutines.
func (f *Frontend) Close() {
	for _, m := range f.muxs {
		m.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = f.api.ShutdownWithContext(ctx)
	_ = f.ops.ShutdownWithContext(ctx)
	f.h.Close()
	if f.inproc != nil {
		f.inproc.close()
	}
	f.wg.Wait()
}
