package grpc

import (
	"context"
	"errors"

	"go.etcd.io/etcd/client/v3/concurrency"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"google.golang.org/grpc"
)

// ErrMissingLeaderKey is etcd's answer to a Proclaim or Resign without a
// leader (code Unknown, as etcd returns it unmapped).
var ErrMissingLeaderKey = errors.New(`"leader" field must be provided`)

// An election is concurrency.Election's: candidates put name/<lease hex>
// with their value on their own lease, the oldest create revision leads,
// the others wait on their predecessor. A LeaderKey (name, key, create
// revision, lease) is what a leader keeps to Proclaim and Resign later.
// Errors are returned as etcd returns them (see lock.go): the concurrency
// package's "election: not leader" and "election: no leader" reach the
// client with code Unknown and that message.
type electionServer struct {
	epb.UnimplementedElectionServer
	c *inprocClient
}

func registerElection(gs *grpc.Server, c *inprocClient) {
	epb.RegisterElectionServer(gs, &electionServer{c: c})
}

// Campaign waits until the caller's lease leads name, then sets its value.
func (s *electionServer) Campaign(ctx context.Context, r *epb.CampaignRequest) (*epb.CampaignResponse, error) {
	ctx = outgoing(ctx)
	sess, err := s.c.session(ctx, r.Lease)
	if err != nil {
		return nil, err
	}
	e := concurrency.NewElection(sess, string(r.Name))
	if err := e.Campaign(ctx, string(r.Value)); err != nil {
		return nil, err
	}
	return &epb.CampaignResponse{Header: e.Header(), Leader: &epb.LeaderKey{
		Name: r.Name, Key: []byte(e.Key()), Rev: e.Rev(), Lease: int64(sess.Lease()),
	}}, nil
}

// Proclaim sets the leader's value, if r.Leader still leads.
func (s *electionServer) Proclaim(ctx context.Context, r *epb.ProclaimRequest) (*epb.ProclaimResponse, error) {
	if r.Leader == nil {
		return nil, ErrMissingLeaderKey
	}
	ctx = outgoing(ctx)
	e, err := s.resume(ctx, r.Leader)
	if err != nil {
		return nil, err
	}
	if err := e.Proclaim(ctx, string(r.Value)); err != nil {
		return nil, err
	}
	return &epb.ProclaimResponse{Header: e.Header()}, nil
}

// Resign deletes the leader's key (if it is still the one at its
// revision), so the next candidate leads.
func (s *electionServer) Resign(ctx context.Context, r *epb.ResignRequest) (*epb.ResignResponse, error) {
	if r.Leader == nil {
		return nil, ErrMissingLeaderKey
	}
	ctx = outgoing(ctx)
	e, err := s.resume(ctx, r.Leader)
	if err != nil {
		return nil, err
	}
	if err := e.Resign(ctx); err != nil {
		return nil, err
	}
	return &epb.ResignResponse{Header: e.Header()}, nil
}

// Leader returns the leader's key-value.
func (s *electionServer) Leader(ctx context.Context, r *epb.LeaderRequest) (*epb.LeaderResponse, error) {
	ctx = outgoing(ctx)
	e, err := s.observer(ctx, r.Name)
	if err != nil {
		return nil, err
	}
	l, err := e.Leader(ctx)
	if err != nil {
		return nil, err
	}
	return &epb.LeaderResponse{Header: l.Header, Kv: l.Kvs[0]}, nil
}

// Observe streams the leader's key-value each time the leader or its value
// changes, starting with the current one; it ends when the stream does.
func (s *electionServer) Observe(r *epb.LeaderRequest, stream epb.Election_ObserveServer) error {
	ctx := outgoing(stream.Context())
	e, err := s.observer(ctx, r.Name)
	if err != nil {
		return err
	}
	ch := e.Observe(ctx)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-ch:
			if !ok {
				return ctx.Err()
			}
			if err := stream.Send(&epb.LeaderResponse{Header: resp.Header, Kv: resp.Kvs[0]}); err != nil {
				return err
			}
		}
	}
}

// resume is the Election a LeaderKey names, on its lease.
func (s *electionServer) resume(ctx context.Context, l *epb.LeaderKey) (*concurrency.Election, error) {
	sess, err := s.c.session(ctx, l.Lease)
	if err != nil {
		return nil, err
	}
	return concurrency.ResumeElection(sess, string(l.Name), string(l.Key), l.Rev), nil
}

// observer is an Election for reading only. concurrency needs a session
// for it; etcd uses lease -1 (no lease), so do we: nothing is written.
func (s *electionServer) observer(ctx context.Context, name []byte) (*concurrency.Election, error) {
	sess, err := s.c.session(ctx, -1)
	if err != nil {
		return nil, err
	}
	return concurrency.NewElection(sess, string(name)), nil
}
