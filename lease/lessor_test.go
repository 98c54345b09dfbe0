package lease

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/engine/memory"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is a lessor over a memory engine; each step commits its batch,
// as the server's apply does.
type harness struct {
	t     *testing.T
	eng   *memory.DB
	clock *fakeClock
	l     *Lessor
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	eng, err := memory.Open("")
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	h := &harness{t: t, eng: eng, clock: newFakeClock()}
	cfg.Now = h.clock.Now
	h.l = New(cfg)
	return h
}

// apply runs fn against a fresh batch and commits it.
func (h *harness) apply(fn func(w Writer)) {
	h.t.Helper()
	b := h.eng.NewBatch()
	defer b.Close()
	fn(b)
	require.NoError(h.t, b.Commit(false))
}

func (h *harness) grant(id, ttl int64) int64 {
	h.t.Helper()
	var got int64
	var err error
	h.apply(func(w Writer) { got, err = h.l.Grant(w, id, ttl) })
	require.NoError(h.t, err)
	return got
}

func (h *harness) record(id int64) (ttl, remaining int64, ok bool) {
	h.t.Helper()
	v, err := h.eng.Get(engine.Meta, recordKey(id))
	if errors.Is(err, engine.ErrNotFound) {
		return 0, 0, false
	}
	require.NoError(h.t, err)
	require.Len(h.t, v, recordLen)
	return int64(beUint64(v[:8])), int64(beUint64(v[8:])), true
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func TestGrant(t *testing.T) {
	cases := []struct {
		name    string
		id, ttl int64
		wantTTL int64
		wantErr error
	}{
		{"ttl kept", 1, 10, 10, nil},
		{"ttl raised to the minimum", 2, 1, 3, nil},
		{"negative ttl raised", 3, -5, 3, nil},
		{"max ttl", 4, MaxTTL, MaxTTL, nil},
		{"ttl too large", 5, MaxTTL + 1, 0, ErrTTLTooLarge},
		{"id 0 is no lease", 0, 10, 0, ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{MinTTL: 3})
			var got int64
			var err error
			h.apply(func(w Writer) { got, err = h.l.Grant(w, tc.id, tc.ttl) })
			require.ErrorIs(t, err, tc.wantErr)
			require.Equal(t, tc.wantTTL, got)
			ttl, rem, ok := h.record(tc.id)
			require.Equal(t, tc.wantErr == nil, ok)
			require.Equal(t, tc.wantTTL, ttl)
			require.Zero(t, rem)
			require.Equal(t, tc.wantErr == nil, h.l.Exists(tc.id))
		})
	}
}

func TestGrant_ExistingID(t *testing.T) {
	h := newHarness(t, Config{})
	h.grant(7, 10)
	var err error
	h.apply(func(w Writer) { _, err = h.l.Grant(w, 7, 20) })
	require.ErrorIs(t, err, ErrExists)
	ttl, _, _ := h.record(7)
	require.Equal(t, int64(10), ttl, "the first grant stays")
}

func TestRevoke_DeletesSortedKeysThenRecord(t *testing.T) {
	h := newHarness(t, Config{})
	h.grant(1, 10)
	h.grant(2, 10)
	for _, k := range []string{"b", "c", "a"} {
		h.l.Attach(1, []byte(k))
	}
	h.l.Attach(2, []byte("z"))
	h.l.Detach(1, []byte("c"))
	h.l.Attach(99, []byte("ignored")) // unknown lease: ignored

	keys, err := h.l.Keys(1)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("a"), []byte("b")}, keys)

	t.Logf("Step 1: a failing delete leaves the lease")
	boom := errors.New("boom")
	h.apply(func(w Writer) { err = h.l.Revoke(w, 1, func([][]byte) error { return boom }) })
	require.ErrorIs(t, err, boom)
	require.True(t, h.l.Exists(1))

	t.Logf("Step 2: revoke hands the sorted keys to the deleter, once")
	var calls [][][]byte
	h.apply(func(w Writer) {
		err = h.l.Revoke(w, 1, func(keys [][]byte) error {
			calls = append(calls, keys)
			for _, k := range keys {
				h.l.Detach(1, k) // as mvcc does while deleting
			}
			return nil
		})
	})
	require.NoError(t, err)
	require.Equal(t, [][][]byte{{[]byte("a"), []byte("b")}}, calls)
	require.False(t, h.l.Exists(1))
	_, _, ok := h.record(1)
	require.False(t, ok)
	require.Equal(t, []int64{2}, h.l.Leases())

	t.Logf("Step 3: unknown lease")
	h.apply(func(w Writer) { err = h.l.Revoke(w, 1, nil) })
	require.ErrorIs(t, err, ErrNotFound)
	_, err = h.l.Keys(1)
	require.ErrorIs(t, err, ErrNotFound)
}

func TestLoad_RebuildsLeasesAndCheckpoints(t *testing.T) {
	h := newHarness(t, Config{MinTTL: 2})
	h.grant(5, 100)
	h.grant(-3, 40)
	h.grant(9, 1)
	h.apply(func(w Writer) { h.l.Checkpoint(w, []Checkpoint{{ID: 5, RemainingTTL: 70}, {ID: 404, RemainingTTL: 1}}) })
	ttl, rem, ok := h.record(5)
	require.True(t, ok)
	require.Equal(t, [2]int64{100, 70}, [2]int64{ttl, rem})

	t.Logf("Step 1: a new lessor loads the records")
	l2 := New(Config{MinTTL: 2, Now: h.clock.Now})
	require.NoError(t, l2.Load(h.eng))
	require.Equal(t, []int64{-3, 5, 9}, l2.Leases())
	_, err := l2.TimeToLive(5, false)
	require.ErrorIs(t, err, ErrNotPrimary, "no deadlines before Promote")

	t.Logf("Step 2: promoted, the deadline starts from the checkpoint plus the extension")
	l2.Promote(time.Second)
	for _, tc := range []struct{ id, granted, ttl int64 }{{5, 100, 71}, {-3, 40, 41}, {9, 2, 3}} {
		st, err := l2.TimeToLive(tc.id, false)
		require.NoError(t, err)
		require.Equal(t, Status{ID: tc.id, GrantedTTL: tc.granted, TTL: tc.ttl}, st)
	}

	t.Logf("Step 3: loading again replaces the set (and keeps deadlines while primary)")
	h.apply(func(w Writer) { require.NoError(t, h.l.Revoke(w, -3, nil)) })
	l2.Attach(5, []byte("k"))
	require.NoError(t, l2.Load(h.eng))
	require.Equal(t, []int64{5, 9}, l2.Leases())
	st, err := l2.TimeToLive(5, true)
	require.NoError(t, err)
	require.Equal(t, Status{ID: 5, GrantedTTL: 100, TTL: 70, Keys: [][]byte{}}, st)
}

func TestLoad_CorruptRecord(t *testing.T) {
	h := newHarness(t, Config{})
	h.apply(func(w Writer) { w.Put(engine.Meta, recordKey(1), []byte{1, 2, 3}) })
	err := New(Config{}).Load(h.eng)
	require.ErrorIs(t, err, ErrCorruptRecord)
}

// fakeProposer applies what the primary proposes straight to the lessor.
type fakeProposer struct {
	h   *harness
	mu  sync.Mutex
	rev []int64
	cps [][]Checkpoint
	err error
}

func (p *fakeProposer) ProposeRevoke(_ context.Context, id int64) error {
	p.mu.Lock()
	p.rev = append(p.rev, id)
	p.mu.Unlock()
	var err error
	p.h.apply(func(w Writer) { err = p.h.l.Revoke(w, id, nil) })
	return err
}

func (p *fakeProposer) ProposeCheckpoint(_ context.Context, cps []Checkpoint) error {
	p.mu.Lock()
	p.cps = append(p.cps, cps)
	err := p.err
	p.mu.Unlock()
	if err != nil {
		return err
	}
	p.h.apply(func(w Writer) { p.h.l.Checkpoint(w, cps) })
	return nil
}

func (p *fakeProposer) revoked() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int64(nil), p.rev...)
}
