package raft

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// The peer service, defined by hand (no protoc): two client-streaming RPCs
// and one unary RPC whose messages are raw byte frames (rawCodec).
//
//	Messages: each frame is a batch of raft messages, each prefixed with its
//	          uvarint length; the server never answers unless it rejects the
//	          stream (wrong cluster, removed sender).
//	Snapshot: header, chunk..., end frames (snapshot.go); the server answers
//	          one frame "ok" after the snapshot is saved and handed to raft.
//	Call:     one request frame to the PeerHandler named by x-raft-call
//	          (Transport.Handle), one answer frame (Transport.Call).
const (
	peerService     = "metastore.raft.Peer"
	methodMessages  = "/" + peerService + "/Messages"
	methodSnapshot  = "/" + peerService + "/Snapshot"
	methodCall      = "/" + peerService + "/Call"
	mdFrom          = "x-raft-from"
	mdCluster       = "x-raft-cluster"
	mdURLs          = "x-raft-urls"
	mdCall          = "x-raft-call"
	peerQueueSize   = 4096
	maxBatchMsgs    = 256
	maxBatchBytes   = 4 << 20
	minBackoff      = 50 * time.Millisecond
	maxBackoff      = 1 * time.Second
	snapshotTimeout = 10 * time.Minute
	// A peer stream that has had nothing to send for keepaliveInterval
	// sends an empty frame, so that every member hears from every peer it
	// can reach, followers from each other too (raft alone has them talk
	// only to the leader). A peer not heard from for silenceLimit counts
	// as not connected (Transport.ActiveSince).
	keepaliveInterval = 250 * time.Millisecond
	silenceLimit      = 3 * time.Second
)

// Fixed gRPC flow-control windows on both ends of a peer connection. gRPC's
// default window grows by estimating the bandwidth-delay product, which costs
// a ping and its ack on each side for every round of messages; a fixed window
// larger than a batch needs none.
const (
	peerStreamWindow = 2 * maxBatchBytes
	peerConnWindow   = 4 * maxBatchBytes
)

var peerServiceDesc = grpc.ServiceDesc{
	ServiceName: peerService,
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{
		{StreamName: "Messages", Handler: func(srv any, s grpc.ServerStream) error { return srv.(*Transport).serveMessages(s) }, ClientStreams: true},
		{StreamName: "Snapshot", Handler: func(srv any, s grpc.ServerStream) error { return srv.(*Transport).serveSnapshot(s) }, ClientStreams: true},
	},
	Methods: []grpc.MethodDesc{
		{MethodName: "Call", Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var req []byte
			if err := dec(&req); err != nil {
				return nil, err
			}
			return srv.(*Transport).serveCall(ctx, req)
		}},
	},
}

// Client-side descriptors (the handlers are server-side only).
var (
	clientMessagesDesc = grpc.StreamDesc{StreamName: "Messages", ClientStreams: true}
	clientSnapshotDesc = grpc.StreamDesc{StreamName: "Snapshot", ClientStreams: true}
)

// rawCodec passes *[]byte frames through unchanged.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("raft: rawCodec cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raft: rawCodec cannot unmarshal into %T", v)
	}
	*b = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "metastore-raft" }

// Transport carries raft messages between members over gRPC: one long-lived
// stream per peer pair and direction, batching whatever is queued; snapshots
// on their own stream in checksummed chunks. It reconnects with exponential
// backoff and tells raft when a peer is unreachable or a snapshot failed.
type Transport struct {
	lg     *zap.Logger
	server *grpc.Server
	// dialTLS dials https peer URLs (nil: no peer TLS configured).
	dialTLS *tls.Config
	// localIP, when set, is the source address of connections to peers
	// (SetLocalAddr).
	localIP atomic.Pointer[net.IP]

	mu struct {
		sync.Mutex
		node     *Node
		peers    map[uint64]*peer
		handlers map[string]PeerHandler
		heard    map[uint64]*hearing
	}
	dropFilter atomic.Pointer[func(from, to uint64) bool]

	// corruptNextChunk makes the next snapshot chunk sent go out with a
	// flipped byte (after its checksum was computed); for tests.
	corruptNextChunk atomic.Bool

	closeOnce sync.Once
	closec    chan struct{}
	wg        sync.WaitGroup
}

// NewTransport returns a Transport; call Serve with the peer listener.
func NewTransport(lg *zap.Logger) *Transport {
	t, _ := NewTLSTransport(lg, TLSInfo{}) // no TLS: cannot fail
	return t
}

// NewTLSTransport returns a Transport whose peer server, when peerTLS is
// Enabled, serves TLS only (a plaintext peer fails the handshake; with
// ClientCertAuth so does a peer without a certificate from TrustedCAFile),
// and which dials https peer URLs with peerTLS's client side: TrustedCAFile
// verifies the peer, and the certificate is presented as the client's.
// Peer URLs with http are dialled in plaintext.
func NewTLSTransport(lg *zap.Logger, peerTLS TLSInfo) (*Transport, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	t := &Transport{lg: lg, closec: make(chan struct{})}
	t.mu.peers = make(map[uint64]*peer)
	t.mu.handlers = make(map[string]PeerHandler)
	t.mu.heard = make(map[uint64]*hearing)
	opts := []grpc.ServerOption{grpc.ForceServerCodecV2(rawCodec{}), grpc.MaxRecvMsgSize(maxFrameSize + maxBatchBytes),
		grpc.InitialWindowSize(peerStreamWindow), grpc.InitialConnWindowSize(peerConnWindow)}
	if peerTLS.Enabled() {
		sc, err := peerTLS.ServerConfig("h2")
		if err != nil {
			return nil, err
		}
		cc, err := peerTLS.ClientConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(sc)))
		t.dialTLS = cc
	}
	t.server = grpc.NewServer(opts...)
	t.server.RegisterService(&peerServiceDesc, t)
	return t, nil
}

// Serve serves peer RPCs on lis until Close.
func (t *Transport) Serve(lis net.Listener) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		if err := t.server.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.lg.Warn("peer server stopped", zap.Error(err))
		}
	}()
}

// SetDropFilter installs f (nil removes it): a message from -> to for
// which f returns true is dropped, on send and on receipt. Tests use it to
// partition members.
func (t *Transport) SetDropFilter(f func(from, to uint64) bool) {
	if f == nil {
		t.dropFilter.Store(nil)
		return
	}
	t.dropFilter.Store(&f)
}

func (t *Transport) dropped(from, to uint64) bool {
	f := t.dropFilter.Load()
	return f != nil && (*f)(from, to)
}

// Close stops all peer streams and the server.
func (t *Transport) Close() {
	t.closeOnce.Do(func() {
		close(t.closec)
		t.mu.Lock()
		peers := t.mu.peers
		t.mu.peers = map[uint64]*peer{}
		t.mu.Unlock()
		for _, p := range peers {
			p.stop()
		}
		t.server.Stop()
	})
	t.wg.Wait()
}

func (t *Transport) attach(n *Node) {
	t.mu.Lock()
	t.mu.node = n
	t.mu.Unlock()
}

func (t *Transport) detach(n *Node) {
	t.mu.Lock()
	if t.mu.node == n {
		t.mu.node = nil
	}
	t.mu.Unlock()
}

func (t *Transport) node() *Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.node
}

// addPeer adds a peer or updates its URLs.
func (t *Transport) addPeer(id uint64, urls []string) {
	if len(urls) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.mu.peers[id]; ok {
		if strings.Join(p.urls, ",") == strings.Join(urls, ",") {
			return
		}
		p.stop()
	}
	select {
	case <-t.closec:
		return
	default:
	}
	p := &peer{t: t, id: id, urls: sortedCopy(urls), msgc: make(chan []byte, peerQueueSize),
		stopc: make(chan struct{}), donec: make(chan struct{})}
	t.mu.peers[id] = p
	go p.run()
}

func (t *Transport) removePeer(id uint64) {
	t.mu.Lock()
	p, ok := t.mu.peers[id]
	delete(t.mu.peers, id)
	delete(t.mu.heard, id)
	t.mu.Unlock()
	if ok {
		p.stop()
	}
}

func (t *Transport) peer(id uint64) *peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.peers[id]
}

// send queues m for its peer. It is called on the raft goroutine, which is
// also where m is marshalled (raft's rule: no marshalling concurrent with
// appends). It never blocks: a full queue drops m and reports the peer
// unreachable, as raft expects from a lossy network.
func (t *Transport) send(m *raftpb.Message) {
	if t.dropped(m.GetFrom(), m.GetTo()) {
		return
	}
	p := t.peer(m.GetTo())
	n := t.node()
	if p == nil {
		if n != nil {
			n.reportUnreachable(m.GetTo())
		}
		return
	}
	b, err := proto.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("raft: message does not encode: %v", err))
	}
	select {
	case p.msgc <- b:
	default:
		if n != nil {
			n.reportUnreachable(m.GetTo())
		}
	}
}

// sendSnapshot streams the Applier's state to m's target in the
// background and reports the outcome to raft.
func (t *Transport) sendSnapshot(m *raftpb.Message, rec *confRecord) {
	n := t.node()
	to := m.GetTo()
	p := t.peer(to)
	if p == nil || t.dropped(m.GetFrom(), to) {
		if n != nil {
			n.reportSnapshot(to, false)
		}
		return
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		err := p.sendSnapshot(n, m, rec)
		if err != nil {
			t.lg.Warn("sending snapshot failed", zap.String("to", fmt.Sprintf("%x", to)),
				zap.Uint64("index", m.GetSnapshot().GetMetadata().GetIndex()), zap.Error(err))
		} else {
			t.lg.Info("sent snapshot", zap.String("to", fmt.Sprintf("%x", to)),
				zap.Uint64("index", m.GetSnapshot().GetMetadata().GetIndex()))
		}
		n.reportSnapshot(to, err == nil)
	}()
}

// outgoingContext carries who we are, so that the receiver can check the
// cluster, learn our URLs and refuse removed members.
func (t *Transport) outgoingContext(ctx context.Context, n *Node) context.Context {
	var urls []string
	if m := n.members.Load().member(n.id); m != nil {
		urls = m.PeerURLs
	} else if u, ok := n.cfg.InitialCluster[n.cfg.Name]; ok {
		urls = u
	}
	return metadata.AppendToOutgoingContext(ctx,
		mdFrom, strconv.FormatUint(n.id, 16),
		mdCluster, strconv.FormatUint(n.clusterID.Load(), 16),
		mdURLs, strings.Join(urls, ","))
}

// checkIncoming validates a stream's sender; it returns the sender's ID.
func (t *Transport) checkIncoming(ctx context.Context, n *Node) (uint64, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	get := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	from, err := strconv.ParseUint(get(mdFrom), 16, 64)
	if err != nil || from == 0 {
		return 0, status.Error(codes.InvalidArgument, "raft: stream without sender id")
	}
	cid, _ := strconv.ParseUint(get(mdCluster), 16, 64)
	local := n.clusterID.Load()
	if cid != 0 && local != 0 && cid != local {
		return 0, status.Errorf(codes.FailedPrecondition, "%v: local %x, sender %x", ErrClusterMismatch, local, cid)
	}
	if cid != 0 && local == 0 {
		n.clusterID.CompareAndSwap(0, cid)
	}
	if n.members.Load().isRemoved(from) {
		return 0, status.Error(codes.PermissionDenied, ErrRemoved.Error())
	}
	if urls := get(mdURLs); urls != "" && t.peer(from) == nil && from != n.id {
		t.addPeer(from, strings.Split(urls, ","))
	}
	return from, nil
}

func (t *Transport) serveMessages(s grpc.ServerStream) error {
	n := t.node()
	if n == nil {
		return status.Error(codes.Unavailable, "raft: no node attached")
	}
	from, err := t.checkIncoming(s.Context(), n)
	if err != nil {
		return err
	}
	h := t.hearing(from)
	h.streamOpened()
	defer h.streamClosed()
	for {
		var frame []byte
		if err := s.RecvMsg(&frame); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if n.members.Load().isRemoved(from) {
			return status.Error(codes.PermissionDenied, ErrRemoved.Error())
		}
		if !t.dropped(from, n.id) {
			h.heard(time.Now())
		}
		for len(frame) > 0 {
			l, k := binary.Uvarint(frame)
			if k <= 0 || uint64(len(frame)-k) < l {
				return status.Error(codes.InvalidArgument, "raft: malformed message batch")
			}
			m := &raftpb.Message{}
			if err := proto.Unmarshal(frame[k:k+int(l)], m); err != nil {
				return status.Errorf(codes.InvalidArgument, "raft: bad message: %v", err)
			}
			frame = frame[k+int(l):]
			if m.GetTo() != n.id || t.dropped(m.GetFrom(), m.GetTo()) {
				continue
			}
			if err := n.receive(s.Context(), m); err != nil {
				return status.Error(codes.Unavailable, err.Error())
			}
		}
	}
}

// hearing is when frames from one peer arrived: the newest, and the first
// after the last silence longer than silenceLimit (unix nanoseconds). When
// the last stream from the peer ends (it stopped, or its connection broke)
// the peer is not heard at once, as etcd's peer status turns inactive when
// its stream fails, instead of after silenceLimit.
type hearing struct {
	since, last atomic.Int64
	mu          sync.Mutex
	streams     int
}

func (h *hearing) heard(now time.Time) {
	ns := now.UnixNano()
	if prev := h.last.Swap(ns); ns-prev > int64(silenceLimit) {
		h.since.Store(ns)
	}
}

func (h *hearing) streamOpened() {
	h.mu.Lock()
	h.streams++
	h.mu.Unlock()
}

func (h *hearing) streamClosed() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams--; h.streams == 0 {
		h.last.Store(0)
	}
}

// hearing returns peer id's record, creating it.
func (t *Transport) hearing(id uint64) *hearing {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.mu.heard[id]
	if h == nil {
		h = &hearing{}
		t.mu.heard[id] = h
	}
	return h
}

// ActiveSince is since when this member has heard from peer id without a
// silence longer than silenceLimit; zero if it has not heard from it within
// that limit (down, partitioned, or never connected). Every peer stream
// sends at least a keepalive frame every keepaliveInterval, so a reachable
// member is heard from whether or not raft has messages for it. It is
// etcd's rafthttp ActiveSince, which the strict reconfiguration check reads.
func (t *Transport) ActiveSince(id uint64) time.Time {
	t.mu.Lock()
	h := t.mu.heard[id]
	t.mu.Unlock()
	if h == nil {
		return time.Time{}
	}
	last, since := h.last.Load(), h.since.Load()
	if last == 0 || time.Now().UnixNano()-last > int64(silenceLimit) {
		return time.Time{}
	}
	return time.Unix(0, since)
}

func (t *Transport) serveSnapshot(s grpc.ServerStream) error {
	n := t.node()
	if n == nil {
		return status.Error(codes.Unavailable, "raft: no node attached")
	}
	if _, err := t.checkIncoming(s.Context(), n); err != nil {
		return err
	}
	var header []byte
	if err := s.RecvMsg(&header); err != nil {
		return err
	}
	m, rec, err := decodeHeaderFrame(header)
	if err != nil {
		return status.Error(codes.DataLoss, err.Error())
	}
	if m.GetTo() != n.id || t.dropped(m.GetFrom(), m.GetTo()) {
		return status.Error(codes.Unavailable, "raft: snapshot dropped")
	}
	md := m.GetSnapshot().GetMetadata()
	sf, err := createSnapFile(filepath.Join(n.cfg.DataDir, "snap"), md.GetTerm(), md.GetIndex())
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	if err := sf.writeFrame(header); err != nil {
		sf.abort()
		return status.Error(codes.Internal, err.Error())
	}
	var v chunkVerifier
	for !v.done {
		var f []byte
		if err := s.RecvMsg(&f); err != nil {
			sf.abort()
			if errors.Is(err, io.EOF) {
				return status.Error(codes.DataLoss, errSnapshotIncomplete.Error())
			}
			return err
		}
		if _, err := v.frame(f); err != nil {
			sf.abort()
			t.lg.Warn("rejected snapshot", zap.String("from", fmt.Sprintf("%x", m.GetFrom())), zap.Error(err))
			return status.Error(codes.DataLoss, err.Error())
		}
		if err := sf.writeFrame(f); err != nil {
			sf.abort()
			return status.Error(codes.Internal, err.Error())
		}
	}
	path, err := sf.finish()
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	t.lg.Info("received snapshot", zap.String("from", fmt.Sprintf("%x", m.GetFrom())),
		zap.Uint64("index", md.GetIndex()), zap.Int("chunks", v.chunks), zap.Uint64("bytes", v.total))
	if err := n.receiveSnapshot(s.Context(), m, rec, path); err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	ok := []byte("ok")
	return s.SendMsg(&ok)
}

// PeerHandler answers a Call from member from. Its error reaches the caller
// as a gRPC status (codes.Unknown unless it is one).
type PeerHandler func(ctx context.Context, from uint64, req []byte) ([]byte, error)

// Handle registers h for Calls named name, replacing any earlier one. Until
// a name has a handler, Calls to it fail with codes.Unimplemented.
//
// NB: a Call is served on the peer port: with --peer-client-cert-auth only
// members holding a certificate from the peer CA reach it, and without
// peer TLS whoever can reach the port could already send raft messages.
// The server/ layer's client auth does not apply, so register only what
// members may ask each other (never a client operation).
func (t *Transport) Handle(name string, h PeerHandler) {
	t.mu.Lock()
	t.mu.handlers[name] = h
	t.mu.Unlock()
}

// Call sends req to member to's handler for name, over the peer
// connection, and returns its answer. A member partitioned by the drop
// filter does not answer.
func (t *Transport) Call(ctx context.Context, to uint64, name string, req []byte) ([]byte, error) {
	n := t.node()
	if n == nil {
		return nil, ErrStopped
	}
	p := t.peer(to)
	if p == nil {
		return nil, fmt.Errorf("%w: %x has no peer connection", ErrMemberNotFound, to)
	}
	if t.dropped(n.id, to) {
		return nil, status.Error(codes.Unavailable, "raft: call dropped")
	}
	conn, err := p.clientConn()
	if err != nil {
		return nil, err
	}
	ctx = metadata.AppendToOutgoingContext(t.outgoingContext(ctx, n), mdCall, name)
	var reply []byte
	if err := conn.Invoke(ctx, methodCall, &req, &reply); err != nil {
		return nil, err
	}
	return reply, nil
}

func (t *Transport) serveCall(ctx context.Context, req []byte) (*[]byte, error) {
	n := t.node()
	if n == nil {
		return nil, status.Error(codes.Unavailable, "raft: no node attached")
	}
	from, err := t.checkIncoming(ctx, n)
	if err != nil {
		return nil, err
	}
	if t.dropped(from, n.id) {
		return nil, status.Error(codes.Unavailable, "raft: call dropped")
	}
	var name string
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(mdCall)) > 0 {
		name = md.Get(mdCall)[0]
	}
	t.mu.Lock()
	h := t.mu.handlers[name]
	t.mu.Unlock()
	if h == nil {
		return nil, status.Errorf(codes.Unimplemented, "raft: no peer handler %q", name)
	}
	reply, err := h(ctx, from, req)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		return nil, status.Error(codes.Unknown, err.Error())
	}
	return &reply, nil
}

// peer is the sending side towards one member.
type peer struct {
	t     *Transport
	id    uint64
	urls  []string
	msgc  chan []byte
	stopc chan struct{}
	donec chan struct{}

	connMu sync.Mutex
	conn   *grpc.ClientConn
}

func (p *peer) stop() {
	close(p.stopc)
	<-p.donec
	p.connMu.Lock()
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
	p.connMu.Unlock()
}

// SetLocalAddr makes connections to peers opened from now on leave from
// ip (etcd's SetMemberLocalAddr feature gate: on a host with several
// addresses, peers see the member's advertised one).
func (t *Transport) SetLocalAddr(ip net.IP) {
	t.localIP.Store(&ip)
}

func (p *peer) clientConn() (*grpc.ClientConn, error) {
	p.connMu.Lock()
	defer p.connMu.Unlock()
	if p.conn != nil {
		return p.conn, nil
	}
	bc := backoff.DefaultConfig
	bc.BaseDelay, bc.MaxDelay = minBackoff, maxBackoff
	creds := insecure.NewCredentials()
	if strings.HasPrefix(p.urls[0], "https://") {
		cfg := p.t.dialTLS
		if cfg == nil { // https peer without peer TLS flags: system roots
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{}), grpc.MaxCallRecvMsgSize(maxFrameSize)),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: time.Second}),
		grpc.WithInitialWindowSize(peerStreamWindow), grpc.WithInitialConnWindowSize(peerConnWindow)}
	if ip := p.t.localIP.Load(); ip != nil {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: *ip}}
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}))
	}
	c, err := grpc.NewClient(hostOf(p.urls[0]), opts...)
	if err != nil {
		return nil, err
	}
	p.conn = c
	return c, nil
}

// run sends queued messages in batches over one stream, reopening it with
// exponential backoff; while the peer is unreachable, queued messages are
// dropped (raft retransmits) and raft is told.
func (p *peer) run() {
	defer close(p.donec)
	var (
		stream grpc.ClientStream
		sc     struct{ cancel context.CancelFunc } // current stream's cancel
		delay  = minBackoff
	)
	sc.cancel = func() {}
	defer func() { sc.cancel() }()
	fail := func(err error) {
		if stream != nil && err != nil {
			// The server's reason (e.g. we were removed) arrives via RecvMsg.
			var x []byte
			if rerr := stream.RecvMsg(&x); rerr != nil {
				err = rerr
			}
		}
		sc.cancel()
		stream = nil
		n := p.t.node()
		if n == nil {
			return
		}
		if st, ok := status.FromError(err); ok && st.Code() == codes.PermissionDenied && st.Message() == ErrRemoved.Error() {
			n.removedByPeer(p.id)
		}
		n.reportUnreachable(p.id)
		p.t.lg.Debug("peer stream failed", zap.String("peer", fmt.Sprintf("%x", p.id)), zap.Error(err))
		timer := time.NewTimer(delay)
		defer timer.Stop()
		delay = min(2*delay, maxBackoff)
		for {
			select {
			case <-p.msgc: // dropped while unreachable
			case <-timer.C:
				return
			case <-p.stopc:
				return
			}
		}
	}
	keepalive := time.NewTicker(keepaliveInterval)
	defer keepalive.Stop()
	sent := false // since the last tick
	var batch []byte
	for {
		batch = batch[:0]
		select {
		case first := <-p.msgc:
			batch = binary.AppendUvarint(batch, uint64(len(first)))
			batch = append(batch, first...)
		case <-keepalive.C:
			if sent {
				sent = false
				continue
			}
			// An empty frame: nothing for raft, but the peer hears from us.
		case <-p.stopc:
			return
		}
	more:
		for i := 1; len(batch) > 0 && i < maxBatchMsgs && len(batch) < maxBatchBytes; i++ {
			select {
			case b := <-p.msgc:
				batch = binary.AppendUvarint(batch, uint64(len(b)))
				batch = append(batch, b...)
			default:
				break more
			}
		}
		n := p.t.node()
		if n == nil || (len(batch) == 0 && p.t.dropped(n.id, p.id)) {
			continue
		}
		sent = true
		if stream == nil {
			conn, err := p.clientConn()
			if err != nil {
				fail(err)
				continue
			}
			var ctx context.Context
			ctx, sc.cancel = context.WithCancel(context.Background())
			s, err := conn.NewStream(p.t.outgoingContext(ctx, n), &clientMessagesDesc, methodMessages)
			if err != nil {
				fail(err)
				continue
			}
			stream = s
		}
		// NB: gRPC may hold the frame after SendMsg returns; send a copy
		// and keep reusing batch.
		frame := append([]byte(nil), batch...)
		if err := stream.SendMsg(&frame); err != nil {
			fail(err)
			continue
		}
		delay = minBackoff
	}
}

func (p *peer) sendSnapshot(n *Node, m *raftpb.Message, rec *confRecord) error {
	conn, err := p.clientConn()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), snapshotTimeout)
	defer cancel()
	go func() {
		select {
		case <-p.stopc:
			cancel()
		case <-ctx.Done():
		}
	}()
	s, err := conn.NewStream(p.t.outgoingContext(ctx, n), &clientSnapshotDesc, methodSnapshot)
	if err != nil {
		return err
	}
	header, err := encodeHeaderFrame(m, rec)
	if err != nil {
		return err
	}
	if err := s.SendMsg(&header); err != nil {
		return p.streamErr(s, err)
	}
	cw := newChunkWriter(func(f []byte) error {
		if f[0] == frameChunk && len(f) > 5 && p.t.corruptNextChunk.CompareAndSwap(true, false) {
			f[len(f)-1] ^= 0xff
		}
		return s.SendMsg(&f)
	})
	if err := n.applier.WriteSnapshot(cw); err != nil {
		return fmt.Errorf("raft: write snapshot: %w", err)
	}
	if err := cw.Close(); err != nil {
		return p.streamErr(s, err)
	}
	if err := s.CloseSend(); err != nil {
		return p.streamErr(s, err)
	}
	var reply []byte
	if err := s.RecvMsg(&reply); err != nil {
		return err
	}
	if string(reply) != "ok" {
		return fmt.Errorf("raft: snapshot refused: %q", reply)
	}
	return nil
}

// streamErr turns a failed SendMsg into the server's status when it has one.
func (p *peer) streamErr(s grpc.ClientStream, err error) error {
	var x []byte
	if rerr := s.RecvMsg(&x); rerr != nil && !errors.Is(rerr, io.EOF) {
		return rerr
	}
	return err
}
