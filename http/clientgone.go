package http

import (
	"context"
	"net"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// clientGonePoll is how often a call that may wait without bound checks
// whether its client closed the connection.
const clientGonePoll = 50 * time.Millisecond

// clientContext returns a context derived from parent that is also
// canceled when the client of ctx closes its connection, as net/http's
// request context is for etcd's gateway: a lock or a campaign that the
// client gave up on is then withdrawn (its waiting key deleted) instead of
// being granted later to nobody. fasthttp reads nothing while a handler
// runs, so the connection is polled for the peer's hang-up (POLLRDHUP,
// which buffered bytes do not hide). Call stop when the call returns.
func clientContext(parent context.Context, ctx *fasthttp.RequestCtx) (cctx context.Context, stop func()) {
	cctx, cancel := context.WithCancel(parent)
	rc := rawConn(ctx.Conn())
	if rc == nil {
		return cctx, cancel
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(clientGonePoll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-cctx.Done():
				return
			case <-t.C:
			}
			if peerClosed(rc) {
				cancel()
				return
			}
		}
	}()
	return cctx, func() {
		close(done)
		cancel()
	}
}

// rawConn finds the socket under c, through the wrappers (unwrap); nil
// if there is none.
func rawConn(c net.Conn) syscall.RawConn {
	for ; c != nil; c = unwrap(c) {
		if sc, ok := c.(syscall.Conn); ok {
			rc, err := sc.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		}
	}
	return nil
}

// unwrap is the connection c wraps: under a sniffedConn or a *tls.Conn
// (NetConn), or a connection fasthttp handed to a WebSocket session
// (UnsafeConn); nil if c wraps none.
func unwrap(c net.Conn) net.Conn {
	switch w := c.(type) {
	case interface{ NetConn() net.Conn }:
		return w.NetConn()
	case interface{ UnsafeConn() net.Conn }:
		return w.UnsafeConn()
	}
	return nil
}

// peerClosed reports whether the peer of rc shut its side down or the
// connection failed.
func peerClosed(rc syscall.RawConn) bool {
	closed := false
	err := rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		n, err := unix.Poll(fds, 0)
		closed = err == nil && n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
	})
	return err != nil || closed
}
