package bench

import (
	"context"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// LeaseKeepAlive grants one lease per client, then each client renews its
// lease over its own LeaseKeepAlive stream, one request and its reply per
// operation. The leases are revoked at the end.
//
// NB: etcd's benchmark calls KeepAliveOnce, which opens a stream per
// renewal; a long-lived stream is how clients keep leases alive, so that
// is what is measured here. The raw stream (not clientv3.Lease.KeepAlive,
// which renews only every TTL/3) gives one round trip per operation.
func LeaseKeepAlive(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.LeaseTTL < 1 {
		return nil, fmt.Errorf("%w: --ttl must be at least 1, got %d", ErrBadOption, o.LeaseTTL)
	}
	conns, err := o.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)

	// One lease and one stream per client, set up before the clock starts.
	sctx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	type keeper struct {
		id     clientv3.LeaseID
		stream pb.Lease_LeaseKeepAliveClient
	}
	keepers := make([]*keeper, o.Clients)
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.RequestTimeout)
		defer cancel()
		for i, k := range keepers {
			if k != nil {
				conns[i%len(conns)].Revoke(rctx, k.id)
			}
		}
	}()
	for i := range keepers {
		c := conns[i%len(conns)]
		gctx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
		g, err := c.Grant(gctx, o.LeaseTTL)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("bench: granting lease for client %d: %w", i, err)
		}
		st, err := pb.NewLeaseClient(c.ActiveConnection()).LeaseKeepAlive(sctx)
		if err != nil {
			c.Revoke(ctx, g.ID)
			return nil, fmt.Errorf("bench: opening keepalive stream for client %d: %w", i, err)
		}
		keepers[i] = &keeper{id: g.ID, stream: st}
	}

	rec := newRecorder([]string{"keepalive"})
	elapsed := o.runOps(ctx, rec, "lease-keepalive", func(ctx context.Context, c int, _ int64) (int, error) {
		k := keepers[c] // client c's own: one request in flight per stream
		// A stream takes no per-request deadline: past RequestTimeout the
		// streams are torn down, failing this and every later renewal.
		stop := context.AfterFunc(ctx, stopStreams)
		defer stop()
		if err := k.stream.Send(&pb.LeaseKeepAliveRequest{ID: int64(k.id)}); err != nil {
			return 0, err
		}
		resp, err := k.stream.Recv()
		if err != nil {
			return 0, err
		}
		if resp.TTL <= 0 {
			return 0, fmt.Errorf("bench: lease %x expired (TTL %d)", k.id, resp.TTL)
		}
		return 0, nil
	})
	return rec.result("lease-keepalive", &o, elapsed), nil
}
