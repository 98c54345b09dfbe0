package http

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Mux shares one client listener between gRPC and HTTP, as etcd does on its
// client port: it reads the first bytes of each new connection and hands
// those that start with the HTTP/2 client preface ("PRI * HTTP/2.0...",
// what a gRPC client sends first) to GRPC(), and every other connection to
// HTTP(), with the sniffed bytes replayed to whoever serves it.
//
// The sniff has a deadline, so a client that connects and sends nothing
// holds a goroutine only that long. Sniffing happens on a goroutine per
// connection, so a slow client never delays Accept for the others.
type Mux struct {
	root    net.Listener
	timeout time.Duration
	lg      *zap.Logger
	grpc    *subListener
	http    *subListener

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// http2Preface is the client connection preface of RFC 9113 §3.4.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// NewMux splits l. sniffTimeout bounds how long a new connection may take
// to send enough bytes to tell the protocols apart. Call Serve to start.
func NewMux(l net.Listener, sniffTimeout time.Duration, lg *zap.Logger) *Mux {
	if lg == nil {
		lg = zap.NewNop()
	}
	m := &Mux{root: l, timeout: sniffTimeout, lg: lg, done: make(chan struct{})}
	m.grpc = newSubListener(m)
	m.http = newSubListener(m)
	return m
}

// GRPC is the listener of the gRPC connections.
func (m *Mux) GRPC() net.Listener { return m.grpc }

// HTTP is the listener of every other connection.
func (m *Mux) HTTP() net.Listener { return m.http }

// Serve accepts connections until the root listener is closed (Close).
func (m *Mux) Serve() error {
	var tempDelay time.Duration
	for {
		c, err := m.root.Accept()
		if err != nil {
			select {
			case <-m.done:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: back off as
				// net/http does rather than spin.
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				time.Sleep(tempDelay)
				continue
			}
			m.Close()
			return err
		}
		tempDelay = 0
		m.wg.Add(1)
		go m.dispatch(c)
	}
}

// Close closes the root listener and both sub-listeners and waits for
// connections being sniffed. Connections already handed over are their
// servers' to close.
func (m *Mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.done)
		err = m.root.Close()
		m.grpc.Close()
		m.http.Close()
	})
	m.wg.Wait()
	return err
}

func (m *Mux) dispatch(c net.Conn) {
	defer m.wg.Done()
	isGRPC, sniffed, err := sniff(c, m.timeout)
	if err != nil {
		m.lg.Debug("client connection closed during protocol sniff", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
		c.Close()
		return
	}
	sc := &sniffedConn{Conn: c, buf: sniffed}
	if isGRPC {
		m.grpc.deliver(sc)
	} else {
		m.http.deliver(sc)
	}
}

// sniff reads until the bytes read either stop matching the HTTP/2 preface
// (HTTP/1.x: usually the first or second byte decides) or match all of it.
func sniff(c net.Conn, timeout time.Duration) (isGRPC bool, read []byte, err error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return false, nil, err
	}
	buf := make([]byte, 0, len(http2Preface))
	for len(buf) < len(http2Preface) {
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if !bytes.HasPrefix([]byte(http2Preface), buf) {
			break
		}
		if err != nil {
			return false, nil, err
		}
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return false, nil, err
	}
	return string(buf) == http2Preface, buf, nil
}

// sniffedConn replays the sniffed bytes before reading from the connection.
type sniffedConn struct {
	net.Conn
	buf []byte
}

// NetConn is the connection read from (a *tls.Conn on a TLS listener): the
// gRPC server's credentials find the TLS state through it.
func (c *sniffedConn) NetConn() net.Conn { return c.Conn }

func (c *sniffedConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// subListener is one side of a Mux: Accept returns the connections the
// Mux delivers to it.
type subListener struct {
	m      *Mux
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newSubListener(m *Mux) *subListener {
	return &subListener{m: m, conns: make(chan net.Conn), closed: make(chan struct{})}
}

var errListenerClosed = errors.New("http: mux listener closed")

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: errListenerClosed}
	}
}

// deliver hands c to the Accept of this side, or closes it when this side
// is closed (its server stopped).
func (l *subListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.closed:
		c.Close()
	}
}

// Close stops this side only: a server's GracefulStop closes the listener
// it serves, and the other protocol keeps being served.
func (l *subListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *subListener) Addr() net.Addr { return l.m.root.Addr() }
