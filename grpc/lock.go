package grpc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// Lock and Election are etcd's convenience services: etcd serves them with
// clientv3's concurrency package over an in-process client, so a lock is
// exactly what a clientv3 user gets from concurrency.Mutex (a key
// name/<lease hex> on the caller's lease, held by the oldest create
// revision under the prefix, waiters watching their predecessor). We do the
// same, so the two can be mixed: a Lock RPC and an etcdctl lock on one name
// exclude each other.
//
// The in-process client talks to this very grpc.Server over an in-memory
// listener (bufconn), not the advertised client URL: that URL may need TLS
// client certificates we do not have, and a loopback round trip through
// the kernel buys nothing. Its calls pass through the same interceptors as
// any client's, so each inner call carries the outer call's identity, its
// auth token or its certificate's common name (outgoing); the inner calls
// are then checked with the caller's permissions, as in etcd.

// inprocBufSize is the in-memory connection's buffer per direction.
const inprocBufSize = 1 << 20

// inprocClient is a clientv3 client over an in-memory connection to gs.
type inprocClient struct {
	lis  *bufconn.Listener
	conn *grpc.ClientConn
	cli  *clientv3.Client
}

// newInprocClient builds the client; serve must be called once every
// service is registered on gs.
func newInprocClient() (*inprocClient, error) {
	lis := bufconn.Listen(inprocBufSize)
	conn, err := grpc.NewClient("passthrough:///metastore-inproc",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<31-1)),
	)
	if err != nil {
		return nil, err
	}
	cli := clientv3.NewCtxClient(context.Background())
	cli.KV = clientv3.NewKVFromKVClient(pb.NewKVClient(conn), cli)
	cli.Watcher = clientv3.NewWatchFromWatchClient(stopHaltsWatch{pb.NewWatchClient(conn)}, cli)
	cli.Lease = sessionLease{clientv3.NewLeaseFromLeaseClient(pb.NewLeaseClient(conn), cli, time.Second)}
	return &inprocClient{lis: lis, conn: conn, cli: cli}, nil
}

// serve serves gs on the in-memory listener until gs stops (Stop and
// GracefulStop close every listener), then closes the client.
func (c *inprocClient) serve(gs *grpc.Server) {
	go func() {
		_ = gs.Serve(c.lis)
		c.cli.Close()
		c.conn.Close()
	}()
}

// sessionLease is the client's Lease with KeepAlive disabled. Both
// services build a concurrency.Session on the caller's lease only to hand
// it to a Mutex or an Election, and orphan it at once (etcd does the same:
// keeping the lease alive is the caller's business). A KeepAlive channel
// that is already closed makes that session without opening a keep-alive
// stream that would outlive the call.
type sessionLease struct{ clientv3.Lease }

func (sessionLease) KeepAlive(context.Context, clientv3.LeaseID) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	ch := make(chan *clientv3.LeaseKeepAliveResponse)
	close(ch)
	return ch, nil
}

// stopHaltsWatch makes the in-process client give up its watches when the
// member stops. On a stop the watch hub closes first (so that clients move
// elsewhere before the gRPC server drains), and every Watch stream ends
// with etcd's "server stopped", code Unavailable. A remote clientv3 retries
// on Unavailable, as it should; the in-process one would retry against the
// closed hub while a waiting Lock, Campaign or Observe held the drain
// until the shutdown timeout. Here that error halts the watcher instead:
// its channels close and those calls end.
type stopHaltsWatch struct{ pb.WatchClient }

func (w stopHaltsWatch) Watch(ctx context.Context, opts ...grpc.CallOption) (pb.Watch_WatchClient, error) {
	s, err := w.WatchClient.Watch(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return stopHaltsStream{s}, nil
}

type stopHaltsStream struct{ pb.Watch_WatchClient }

func (s stopHaltsStream) Recv() (*pb.WatchResponse, error) {
	r, err := s.Watch_WatchClient.Recv()
	if st, ok := status.FromError(err); ok && st.Code() == codes.Unavailable &&
		st.Message() == rpctypes.ErrorDesc(rpctypes.ErrGRPCStopped) {
		// Any code but Unavailable and Internal halts clientv3's watcher;
		// the message still maps to rpctypes.ErrStopped.
		return nil, status.Error(codes.Aborted, st.Message())
	}
	return r, err
}

// session returns an orphaned session on lease (NoLease: a new lease of
// concurrency's default 60 s TTL, as etcd grants).
func (c *inprocClient) session(ctx context.Context, lease int64) (*concurrency.Session, error) {
	s, err := concurrency.NewSession(c.cli, concurrency.WithLease(clientv3.LeaseID(lease)),
		concurrency.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	s.Orphan()
	return s, nil
}

// outgoing carries the caller's identity onto the inner calls: its auth
// token, or, for a caller known only by its verified client certificate,
// that certificate's common name (inprocUserKey, vouched for by
// inprocSecret: the in-memory connection has no certificate of its own).
func outgoing(ctx context.Context) context.Context {
	var kv []string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, k := range []string{rpctypes.TokenFieldNameGRPC, "authorization"} {
			for _, v := range md.Get(k) {
				kv = append(kv, k, v)
			}
		}
	}
	if cn, ok := ClientCommonName(ctx); ok && len(kv) == 0 {
		kv = append(kv, inprocUserKey, cn, inprocSecretKey, inprocSecret)
	}
	if len(kv) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// The metadata of an inner call made for a caller known by its client
// certificate. inprocSecret is random per process and travels only over
// the in-memory connection, so a remote client cannot claim a user this
// way: without the secret the user key is ignored.
const (
	inprocUserKey   = "metastore-inproc-user"
	inprocSecretKey = "metastore-inproc-secret"
)

var inprocSecret = func() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("grpc: no randomness for the in-process secret: " + err.Error())
	}
	return hex.EncodeToString(b)
}()

// inprocUser is the certificate user an inner call carries, if it carries
// one with the right secret.
func inprocUser(ctx context.Context) (string, bool) {
	sec := metadata.ValueFromIncomingContext(ctx, inprocSecretKey)
	user := metadata.ValueFromIncomingContext(ctx, inprocUserKey)
	if len(sec) != 1 || len(user) != 1 ||
		subtle.ConstantTimeCompare([]byte(sec[0]), []byte(inprocSecret)) != 1 {
		return "", false
	}
	return user[0], true
}

type lockServer struct {
	v3lockpb.UnimplementedLockServer
	c *inprocClient
}

// Lock acquires name for the caller's lease and returns the lock's key,
// which the caller passes to Unlock. It blocks until the lock is held or
// the call ends; a waiter whose call ends deletes its key (as etcd, with
// no token: under auth that delete is refused and the key stays until its
// lease ends). Errors are etcd's: those of the inner calls as
// clientv3 reports them (a revoked lease: "etcdserver: requested lease not
// found"), with etcd's code Unknown.
func (s *lockServer) Lock(ctx context.Context, r *v3lockpb.LockRequest) (*v3lockpb.LockResponse, error) {
	ctx = outgoing(ctx)
	sess, err := s.c.session(ctx, r.Lease)
	if err != nil {
		return nil, err
	}
	m := concurrency.NewMutex(sess, string(r.Name))
	if err := m.Lock(ctx); err != nil {
		return nil, err
	}
	return &v3lockpb.LockResponse{Header: m.Header(), Key: []byte(m.Key())}, nil
}

// Unlock deletes the lock's key (unknown keys are not an error).
func (s *lockServer) Unlock(ctx context.Context, r *v3lockpb.UnlockRequest) (*v3lockpb.UnlockResponse, error) {
	resp, err := s.c.cli.Delete(outgoing(ctx), string(r.Key))
	if err != nil {
		return nil, err
	}
	return &v3lockpb.UnlockResponse{Header: resp.Header}, nil
}

// serveLockElection registers Lock and Election on gs and starts serving
// gs on the in-memory listener they use, so it must be the last step of
// NewServer (gRPC refuses registrations once a Serve has started).
func serveLockElection(gs *grpc.Server) {
	c, err := newInprocClient()
	if err != nil {
		// grpc.NewClient fails only on bad options, which are fixed here.
		panic("grpc: in-process client for Lock and Election: " + err.Error())
	}
	v3lockpb.RegisterLockServer(gs, &lockServer{c: c})
	registerElection(gs, c)
	c.serve(gs)
}
