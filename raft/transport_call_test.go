package raft

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// The unary peer Call (Transport.Handle / Transport.Call) next to the raft
// streams: a handler sees who called and what was sent, and a Call is
// refused for exactly the reasons, codes and messages a Messages stream is.

// echoHandler answers "<caller id in hex>:<request>".
func echoHandler(_ context.Context, from uint64, req []byte) ([]byte, error) {
	return fmt.Appendf(nil, "%x:%s", from, req), nil
}

// requireStatus asserts err is a gRPC status with exactly code and msg.
func requireStatus(t *testing.T, err error, code codes.Code, msg, what string) {
	t.Helper()
	require.Error(t, err, what)
	st, ok := status.FromError(err)
	require.True(t, ok, "%s: not a gRPC status: %v (%T)", what, err, err)
	require.Equal(t, code, st.Code(), "%s: %v", what, err)
	require.Equal(t, msg, st.Message(), what)
}

// rawPeerErrs connects to the peer server at url as a foreign client would,
// sending md (the x-raft-* pairs) with a Call to "echo" and with a Messages
// stream, and returns both refusals.
func rawPeerErrs(t *testing.T, url string, md ...string) (callErr, streamErr error) {
	t.Helper()
	conn, err := grpc.NewClient(strings.TrimPrefix(url, "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	cctx := metadata.AppendToOutgoingContext(ctx, append(md, mdCall, "echo")...)
	req, reply := []byte("req"), []byte(nil)
	callErr = conn.Invoke(cctx, methodCall, &req, &reply)
	if callErr == nil {
		callErr = fmt.Errorf("call answered %q", reply)
	}

	s, err := conn.NewStream(metadata.AppendToOutgoingContext(ctx, md...), &clientMessagesDesc, methodMessages)
	require.NoError(t, err)
	require.NoError(t, s.CloseSend())
	var x []byte
	streamErr = s.RecvMsg(&x)
	return callErr, streamErr
}

func hexID(id uint64) string { return strconv.FormatUint(id, 16) }

func TestTransportCall_HandlerAnswersCallerAndRequest(t *testing.T) {
	c := newCluster(t, 3, fastTimings)
	c.waitLeader(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Logf("Step 1: registering echo, fail and status handlers on every member...")
	for _, m := range c.members {
		m.tr.Handle("echo", echoHandler)
		m.tr.Handle("fail", func(context.Context, uint64, []byte) ([]byte, error) {
			return nil, fmt.Errorf("%w: on purpose", ErrStopped)
		})
		m.tr.Handle("status", func(context.Context, uint64, []byte) ([]byte, error) {
			return nil, status.Error(codes.ResourceExhausted, "busy")
		})
	}

	t.Logf("Step 2: every member calls echo on every other; the answer names the caller and the request...")
	calls := 0
	for _, from := range c.members {
		for _, to := range c.members {
			if from == to {
				continue
			}
			for _, req := range []string{"hash-kv", "", strings.Repeat("x", 64<<10)} {
				got, err := from.tr.Call(ctx, to.node.ID(), "echo", []byte(req))
				require.NoError(t, err, "%s -> %s", from.name, to.name)
				require.Equal(t, hexID(from.node.ID())+":"+req, string(got), "%s -> %s", from.name, to.name)
				calls++
			}
		}
	}
	require.Equal(t, 18, calls)

	a, b := c.members[0], c.members[1]
	t.Logf("Step 3: a handler's error reaches the caller as codes.Unknown, a status as itself...")
	_, err := a.tr.Call(ctx, b.node.ID(), "fail", nil)
	requireStatus(t, err, codes.Unknown, "raft: stopped: on purpose", "fail")
	_, err = a.tr.Call(ctx, b.node.ID(), "status", nil)
	requireStatus(t, err, codes.ResourceExhausted, "busy", "status")

	t.Logf("Step 4: a name without a handler is codes.Unimplemented...")
	_, err = a.tr.Call(ctx, b.node.ID(), "nope", []byte("x"))
	requireStatus(t, err, codes.Unimplemented, `raft: no peer handler "nope"`, "unregistered name")
	_, err = a.tr.Call(ctx, b.node.ID(), "", []byte("x"))
	requireStatus(t, err, codes.Unimplemented, `raft: no peer handler ""`, "empty name")

	t.Logf("Step 5: a handler registered later answers; Handle replaces an earlier one...")
	b.tr.Handle("nope", func(context.Context, uint64, []byte) ([]byte, error) { return []byte("now"), nil })
	got, err := a.tr.Call(ctx, b.node.ID(), "nope", nil)
	require.NoError(t, err)
	require.Equal(t, "now", string(got))
	b.tr.Handle("nope", func(context.Context, uint64, []byte) ([]byte, error) { return []byte("replaced"), nil })
	got, err = a.tr.Call(ctx, b.node.ID(), "nope", nil)
	require.NoError(t, err)
	require.Equal(t, "replaced", string(got))

	t.Logf("Step 6: the drop filter partitions Calls as it does raft messages, both directions...")
	aID, bID := a.node.ID(), b.node.ID()
	a.tr.SetDropFilter(func(from, to uint64) bool { return from == aID && to == bID })
	_, err = a.tr.Call(ctx, bID, "echo", nil)
	requireStatus(t, err, codes.Unavailable, "raft: call dropped", "dropped on send")
	a.tr.SetDropFilter(nil)
	b.tr.SetDropFilter(func(from, to uint64) bool { return from == aID && to == bID })
	_, err = a.tr.Call(ctx, bID, "echo", nil)
	requireStatus(t, err, codes.Unavailable, "raft: call dropped", "dropped on receipt")
	b.tr.SetDropFilter(nil)
	got, err = a.tr.Call(ctx, bID, "echo", []byte("healed"))
	require.NoError(t, err)
	require.Equal(t, hexID(aID)+":healed", string(got))

	t.Logf("Step 7: a member that is not in the cluster has no peer connection...")
	_, err = a.tr.Call(ctx, 0x3039, "echo", nil)
	require.ErrorIs(t, err, ErrMemberNotFound)
	require.EqualError(t, err, "raft: member not found: 3039 has no peer connection")
	_, err = a.tr.Call(ctx, aID, "echo", nil)
	require.EqualError(t, err, fmt.Sprintf("raft: member not found: %x has no peer connection", aID), "self")

	t.Logf("Step 8: a stopped member's transport refuses to call...")
	c.stop(c.members[2])
	_, err = a.tr.Call(ctx, bID, "echo", nil)
	require.NoError(t, err, "the others still answer")
	b.node.Stop() // detaches; b.tr stays open
	_, err = b.tr.Call(ctx, aID, "echo", nil)
	require.ErrorIs(t, err, ErrStopped)
	_, err = a.tr.Call(ctx, bID, "echo", nil)
	requireStatus(t, err, codes.Unavailable, "raft: no node attached", "to a member whose node stopped")
}

func TestTransportCall_RefusedLikeRaftStreams(t *testing.T) {
	c := newCluster(t, 3, fastTimings)
	leader := c.waitLeader(5 * time.Second)
	for _, m := range c.members {
		m.tr.Handle("echo", echoHandler)
	}
	follower := c.followers(leader)[0]
	cid := leader.node.clusterID.Load()
	require.NotZero(t, cid)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mismatch := func(local, sender uint64) string {
		return fmt.Sprintf("raft: message from a different cluster: local %x, sender %x", local, sender)
	}

	t.Logf("Step 1: a foreign client with the right ids is answered (the raw client works)...")
	conn, err := grpc.NewClient(strings.TrimPrefix(leader.url, "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	require.NoError(t, err)
	req, reply := []byte("raw"), []byte(nil)
	err = conn.Invoke(metadata.AppendToOutgoingContext(ctx, mdFrom, hexID(follower.node.ID()), mdCluster, hexID(cid), mdCall, "echo"),
		methodCall, &req, &reply)
	conn.Close()
	require.NoError(t, err)
	require.Equal(t, hexID(follower.node.ID())+":raw", string(reply))

	t.Logf("Step 2: a wrong cluster id, no sender id or sender 0: the Call and a Messages stream get the same refusal...")
	for _, tc := range []struct {
		name string
		md   []string
		code codes.Code
		msg  string
	}{
		{"wrong cluster", []string{mdFrom, hexID(follower.node.ID()), mdCluster, hexID(cid + 1)}, codes.FailedPrecondition, mismatch(cid, cid+1)},
		{"no sender", []string{mdCluster, hexID(cid)}, codes.InvalidArgument, "raft: stream without sender id"},
		{"sender 0", []string{mdFrom, "0", mdCluster, hexID(cid)}, codes.InvalidArgument, "raft: stream without sender id"},
		{"sender not hex", []string{mdFrom, "m1", mdCluster, hexID(cid)}, codes.InvalidArgument, "raft: stream without sender id"},
	} {
		callErr, streamErr := rawPeerErrs(t, leader.url, tc.md...)
		requireStatus(t, callErr, tc.code, tc.msg, tc.name+": Call")
		requireStatus(t, streamErr, tc.code, tc.msg, tc.name+": Messages stream")
	}

	t.Logf("Step 3: a member of another cluster calls through its own transport and is refused...")
	other := newCluster(t, 1, func(cfg *Config) {
		fastTimings(cfg)
		cfg.ClusterToken = "another-cluster"
	})
	o := other.waitLeader(5 * time.Second)
	o.tr.Handle("echo", echoHandler)
	ocid := o.node.clusterID.Load()
	require.NotZero(t, ocid)
	require.NotEqual(t, cid, ocid)
	o.tr.addPeer(leader.node.ID(), []string{leader.url})
	_, err = o.tr.Call(ctx, leader.node.ID(), "echo", []byte("x"))
	requireStatus(t, err, codes.FailedPrecondition, mismatch(cid, ocid), "call from another cluster")
	// The refused caller was not learned as a peer: there is no way back.
	_, err = leader.tr.Call(ctx, o.node.ID(), "echo", nil)
	require.ErrorIs(t, err, ErrMemberNotFound)

	t.Logf("Step 4: removing a follower...")
	victim := follower
	vid := victim.node.ID()
	require.NoError(t, leader.node.RemoveMember(ctx, vid))
	select {
	case <-victim.node.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("removed member did not stop")
	}
	require.ErrorIs(t, victim.node.Err(), ErrRemoved)

	t.Logf("Step 5: the remaining members have no peer connection to it...")
	for _, m := range c.members {
		if m == victim {
			continue
		}
		require.Eventually(t, func() bool {
			_, err := m.tr.Call(ctx, vid, "echo", nil)
			return errors.Is(err, ErrMemberNotFound)
		}, 5*time.Second, 10*time.Millisecond, "%s still calls the removed member", m.name)
		_, err := m.tr.Call(ctx, vid, "echo", nil)
		require.EqualError(t, err, fmt.Sprintf("raft: member not found: %x has no peer connection", vid))
	}

	t.Logf("Step 6: the removed member's own Call is refused as its raft stream is (PermissionDenied, ErrRemoved)...")
	_, err = victim.tr.Call(ctx, leader.node.ID(), "echo", []byte("x"))
	requireStatus(t, err, codes.PermissionDenied, ErrRemoved.Error(), "call from the removed member")
	callErr, streamErr := rawPeerErrs(t, leader.url, mdFrom, hexID(vid), mdCluster, hexID(cid))
	requireStatus(t, callErr, codes.PermissionDenied, ErrRemoved.Error(), "removed sender: Call")
	requireStatus(t, streamErr, codes.PermissionDenied, ErrRemoved.Error(), "removed sender: Messages stream")

	t.Logf("Step 7: the two remaining members still call each other...")
	c.stop(victim)
	rest := c.running()
	require.Len(t, rest, 2)
	got, err := rest[0].tr.Call(ctx, rest[1].node.ID(), "echo", []byte("after"))
	require.NoError(t, err)
	require.Equal(t, hexID(rest[0].node.ID())+":after", string(got))
}

// TestTransport_LocalAddr: with SetLocalAddr (etcd's SetMemberLocalAddr
// gate) a member's connections to its peers leave from the address given;
// the peer sees it as the caller's address.
func TestTransport_LocalAddr(t *testing.T) {
	c := newCluster(t, 2, fastTimings)
	c.waitLeader(5 * time.Second)
	m1, m2 := c.members[0], c.members[1]
	seen := make(chan string, 16)
	m1.tr.Handle("addr", func(ctx context.Context, _ uint64, _ []byte) ([]byte, error) {
		if p, ok := grpcpeer.FromContext(ctx); ok {
			seen <- p.Addr.(*net.TCPAddr).IP.String()
		}
		return nil, nil
	})
	call := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := m2.tr.Call(ctx, m1.node.ID(), "addr", nil)
		require.NoError(t, err)
		return <-seen
	}

	t.Logf("Step 1: without a local address, m2's call reaches m1 from 127.0.0.1...")
	require.Equal(t, "127.0.0.1", call())

	t.Logf("Step 2: m2 restarted with local address 127.0.0.2...")
	c.stop(m2)
	m2.localIP = net.ParseIP("127.0.0.2")
	c.start(m2, nil)
	c.waitLeader(5 * time.Second)

	t.Logf("Step 3: m1 sees m2's calls come from 127.0.0.2...")
	require.Equal(t, "127.0.0.2", call())
}
