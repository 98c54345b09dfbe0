package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestExpiry_OldestFirstAndRetried(t *testing.T) {
	h := newHarness(t, Config{RetryInterval: 3 * time.Second})
	h.l.Promote(0)
	h.grant(30, 30)
	h.grant(10, 10)
	h.grant(20, 20)
	h.grant(11, 10)
	now := h.clock.Now()

	require.Empty(t, h.l.expired(now.Add(10*time.Second-time.Nanosecond), 10), "nothing before the first deadline")
	got := h.l.expired(now.Add(25*time.Second), 10)
	require.ElementsMatch(t, []int64{10, 11}, got[:2], "the two 10 s leases first")
	require.Equal(t, []int64{20}, got[2:])

	t.Logf("a lease handed out comes back only after the retry interval")
	require.Empty(t, h.l.expired(now.Add(28*time.Second-time.Nanosecond), 10))
	got = h.l.expired(now.Add(28*time.Second+time.Millisecond), 10)
	require.ElementsMatch(t, []int64{10, 11, 20}, got)
	require.Equal(t, []int64{30}, h.l.expired(now.Add(30*time.Second), 10))

	t.Logf("revoked leases are gone from the queue; followers expire nothing")
	h.apply(func(w Writer) { require.NoError(t, h.l.Revoke(w, 10, nil)) })
	require.ElementsMatch(t, []int64{11, 20, 30}, h.l.expired(now.Add(time.Hour), 10))
	h.l.Demote()
	require.Empty(t, h.l.expired(now.Add(2*time.Hour), 10))
}

func TestExpiry_RateLimited(t *testing.T) {
	const n = 25
	h := newHarness(t, Config{RevokeRate: 100, Tick: 100 * time.Millisecond})
	h.l.Promote(0)
	for id := int64(1); id <= n; id++ {
		h.grant(id, 5)
	}
	start := h.clock.Now().Add(6 * time.Second)
	lim := newLimiter(100, 100*time.Millisecond, start)

	// 100 per second with a burst of one tick: 10 now, none more at once,
	// 10 a tick later, the last 5 the tick after.
	steps := []struct {
		at   time.Duration
		want int
	}{{0, 10}, {0, 0}, {50 * time.Millisecond, 5}, {100 * time.Millisecond, 5}, {200 * time.Millisecond, 5}, {time.Second, 0}}
	seen := map[int64]bool{}
	for i, st := range steps {
		ids := h.l.takeExpired(start.Add(st.at), lim)
		require.Len(t, ids, st.want, "step %d", i)
		for _, id := range ids {
			require.False(t, seen[id], "lease %d handed out twice", id)
			seen[id] = true
		}
	}
	require.Len(t, seen, n)
}

func TestPromote_SpreadsAStorm(t *testing.T) {
	h := newHarness(t, Config{RevokeRate: 8}) // at most 6 deadlines per second
	for id := int64(1); id <= 20; id++ {
		h.grant(id, 10)
	}
	h.l.Promote(time.Second)
	base := h.clock.Now().Add(11 * time.Second)
	perSecond := map[time.Duration]int{}
	for id := int64(1); id <= 20; id++ {
		st, err := h.l.TimeToLive(id, false)
		require.NoError(t, err)
		require.Equal(t, int64(10), st.GrantedTTL)
		h.l.mu.RLock()
		perSecond[h.l.mu.leases[id].expiry.Sub(base)]++
		h.l.mu.RUnlock()
	}
	require.Equal(t, map[time.Duration]int{0: 6, time.Second: 6, 2 * time.Second: 6, 3 * time.Second: 2}, perSecond)
}

func TestRenew(t *testing.T) {
	h := newHarness(t, Config{})
	p := &fakeProposer{h: h}
	h.l.proposer = p
	h.grant(1, 10)
	ctx := context.Background()

	t.Logf("Step 1: a follower's lessor does not renew")
	_, err := h.l.Renew(ctx, 1)
	require.ErrorIs(t, err, ErrNotPrimary)

	t.Logf("Step 2: the primary renews to the full TTL")
	h.l.Promote(0)
	h.clock.Advance(4 * time.Second)
	st, _ := h.l.TimeToLive(1, false)
	require.Equal(t, int64(6), st.TTL)
	ttl, err := h.l.Renew(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, int64(10), ttl)
	st, _ = h.l.TimeToLive(1, false)
	require.Equal(t, int64(10), st.TTL)
	_, err = h.l.Renew(ctx, 2)
	require.ErrorIs(t, err, ErrNotFound)

	t.Logf("Step 3: renewing a checkpointed lease clears the checkpoint first")
	h.apply(func(w Writer) { h.l.Checkpoint(w, []Checkpoint{{ID: 1, RemainingTTL: 7}}) })
	_, err = h.l.Renew(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, [][]Checkpoint{{{ID: 1, RemainingTTL: 0}}}, p.cps)
	_, rem, _ := h.record(1)
	require.Zero(t, rem)

	t.Logf("Step 4: an expired lease waits for its revoke, then is not found")
	h.clock.Advance(11 * time.Second)
	errc := make(chan error, 1)
	go func() { _, err := h.l.Renew(ctx, 1); errc <- err }()
	select {
	case err := <-errc:
		t.Fatalf("renew of an expired lease returned before the revoke: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	require.NoError(t, p.ProposeRevoke(ctx, 1))
	require.ErrorIs(t, <-errc, ErrNotFound)

	t.Logf("Step 5: ... or for a demotion")
	h.grant(2, 10)
	h.clock.Advance(11 * time.Second)
	go func() { _, err := h.l.Renew(ctx, 2); errc <- err }()
	h.l.Demote() // before or after Renew blocks: the answer is the same
	require.ErrorIs(t, <-errc, ErrNotPrimary)
}

func TestCheckpoint_SurvivesLeaderChange(t *testing.T) {
	h := newHarness(t, Config{CheckpointInterval: 10 * time.Second})
	h.l.Promote(0)
	h.grant(1, 60)
	h.grant(2, 10) // not longer than the interval: never checkpointed
	start := h.clock.Now()

	require.Empty(t, h.l.dueCheckpoints(start.Add(10*time.Second-time.Millisecond), 10))
	t.Logf("Step 1: after one interval the remaining TTL is checkpointed, rounded up")
	cps := h.l.dueCheckpoints(start.Add(10*time.Second+500*time.Millisecond), 10)
	require.Equal(t, []Checkpoint{{ID: 1, RemainingTTL: 50}}, cps)
	h.apply(func(w Writer) { h.l.Checkpoint(w, cps) })
	_, rem, _ := h.record(1)
	require.Equal(t, int64(50), rem)

	t.Logf("Step 2: the next one is scheduled one interval later")
	require.Empty(t, h.l.dueCheckpoints(start.Add(20*time.Second), 10))
	cps = h.l.dueCheckpoints(start.Add(20*time.Second+500*time.Millisecond), 10)
	require.Equal(t, []Checkpoint{{ID: 1, RemainingTTL: 40}}, cps)
	h.apply(func(w Writer) { h.l.Checkpoint(w, cps) })

	t.Logf("Step 3: a new leader starts from the checkpoint plus the extension, not the full TTL")
	h.clock.Advance(25 * time.Second)
	h.l.Demote()
	require.Empty(t, h.l.dueCheckpoints(start.Add(time.Hour), 10), "a follower proposes no checkpoints")
	h.l.Promote(2 * time.Second)
	st, err := h.l.TimeToLive(1, false)
	require.NoError(t, err)
	require.Equal(t, int64(42), st.TTL)
	st, err = h.l.TimeToLive(2, false)
	require.NoError(t, err)
	require.Equal(t, int64(12), st.TTL)

	t.Logf("Step 4: a just-renewed lease is not checkpointed, but stays scheduled")
	now := h.clock.Now() // Promote scheduled the next checkpoint at now+10s
	h.clock.Advance(9500 * time.Millisecond)
	_, err = h.l.Renew(context.Background(), 1) // no proposer: nothing to clear through
	require.NoError(t, err)
	require.Empty(t, h.l.dueCheckpoints(now.Add(10*time.Second), 10), "60 s left of 60: full")
	require.Equal(t, []Checkpoint{{ID: 1, RemainingTTL: 50}}, h.l.dueCheckpoints(now.Add(20*time.Second), 10))
}

func TestLoop_RevokesExpiredLeases(t *testing.T) {
	h := newHarness(t, Config{Tick: 5 * time.Millisecond, CheckpointInterval: -1})
	p := &fakeProposer{h: h}
	h.l.Start(p)
	t.Cleanup(h.l.Stop)
	h.grant(1, 5)
	h.grant(2, 50)

	t.Logf("Step 1: a follower's loop revokes nothing")
	h.clock.Advance(time.Minute)
	time.Sleep(30 * time.Millisecond) // several ticks; nothing may happen
	require.Empty(t, p.revoked())

	t.Logf("Step 2: promoted, only the expired lease is revoked")
	h.l.Promote(0)
	h.clock.Advance(6 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for h.l.Exists(1) {
		require.True(t, time.Now().Before(deadline), "lease 1 was not revoked")
		time.Sleep(5 * time.Millisecond)
	}
	require.Equal(t, []int64{1}, p.revoked())
	require.True(t, h.l.Exists(2))
}

func TestLoop_ProposesCheckpoints(t *testing.T) {
	h := newHarness(t, Config{Tick: 5 * time.Millisecond, CheckpointInterval: time.Second})
	p := &fakeProposer{h: h, err: errors.New("no leader")}
	h.l.Start(p)
	t.Cleanup(h.l.Stop)
	h.l.Promote(0)
	h.grant(1, 30)
	h.clock.Advance(1500 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		n := len(p.cps)
		p.mu.Unlock()
		if n > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "no checkpoint proposed")
		time.Sleep(5 * time.Millisecond)
	}
	p.mu.Lock()
	require.Equal(t, []Checkpoint{{ID: 1, RemainingTTL: 29}}, p.cps[0])
	p.mu.Unlock()
}
