package mvcc

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// uncached is the answer the engine gives to req at the current revision,
// bypassing the read cache.
func uncached(t *testing.T, s *Store, req *pb.RangeRequest) *pb.RangeResponse {
	t.Helper()
	resp, err := rangeOn(s.eng, req, s.Rev(), s.compactRev.Load)
	require.NoError(t, err)
	return resp
}

// valueOf reads key's value at the current revision (through the cache).
func valueOf(t *testing.T, s *Store, key string) string {
	t.Helper()
	resp := get(t, s, &pb.RangeRequest{Key: []byte(key)})
	require.Len(t, resp.Kvs, 1, key)
	return string(resp.Kvs[0].Value)
}

// txnPut puts key=value in a txn.
func txnPut(t *testing.T, s *Store, key, value string) {
	t.Helper()
	txn(t, s, &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{
		RequestPut: &pb.PutRequest{Key: []byte(key), Value: []byte(value)}}}}})
}

// requireSameAnswers checks that every form of a one-key range of key at
// the current revision gets the engine's answer.
func requireSameAnswers(t *testing.T, s *Store, key string) {
	t.Helper()
	k := []byte(key)
	for _, req := range []*pb.RangeRequest{
		{Key: k},
		{Key: k, KeysOnly: true},
		{Key: k, CountOnly: true},
		{Key: k, Limit: 1},
		{Key: k, Serializable: true},
		{Key: k, Revision: s.Rev()},
	} {
		requireSameAnswer(t, s, req)
	}
}

// requireSameAnswer checks that req gets the engine's answer.
func requireSameAnswer(t *testing.T, s *Store, req *pb.RangeRequest) {
	t.Helper()
	got := get(t, s, req)
	want := uncached(t, s, req)
	require.Equal(t, want.Header.Revision, got.Header.Revision, "%v", req)
	require.Equal(t, want.Count, got.Count, "%v", req)
	require.Equal(t, want.More, got.More, "%v", req)
	requireKVs(t, want.Kvs, got.Kvs)
}

func TestReadCache_AnswersAsTheEngine(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		t.Logf("Step 1: prepare: k written twice, j once")
		put(t, s, "k", "v1")
		put(t, s, "j", "j1")
		put(t, s, "k", "v2")

		t.Logf("Step 2: act: read k (fills the cache), then read it again in every form")
		get(t, s, &pb.RangeRequest{Key: []byte("k")})
		_, cached := s.reads.m["k"]
		require.True(t, cached, "a one-key read at the current revision fills the cache")

		t.Logf("Step 3: verify: each answer from the cache equals the engine's")
		requireSameAnswers(t, s, "k")
		t.Logf("Step 4: verify: a read at an older revision is not answered from the cache")
		old := get(t, s, &pb.RangeRequest{Key: []byte("k"), Revision: 2})
		require.Equal(t, "v1", string(old.Kvs[0].Value))
	})
}

func TestReadCache_AbsentKeys(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		t.Logf("Step 1: prepare: \"gone\" written and deleted, \"never\" never written")
		put(t, s, "gone", "v1")
		del(t, s, "gone", "", false)
		put(t, s, "other", "o1")

		t.Logf("Step 2: act: read both (fills the cache with their absence)")
		for _, k := range []string{"gone", "never"} {
			resp := get(t, s, &pb.RangeRequest{Key: []byte(k)})
			require.Empty(t, resp.Kvs, k)
			e := s.reads.m[k]
			require.NotNil(t, e, "a read that finds no key caches that")
			require.True(t, e.absent, k)
			require.Equal(t, s.Rev(), e.mod, k)
		}

		t.Logf("Step 3: verify: each answer from the cache equals the engine's, in every form")
		for _, k := range []string{"gone", "never"} {
			requireSameAnswers(t, s, k)
		}
		old := get(t, s, &pb.RangeRequest{Key: []byte("gone"), Revision: 2})
		require.Equal(t, "v1", string(old.Kvs[0].Value), "a read before the delete is not answered from the cache")

		t.Logf("Step 4: act and verify: a put and a txn put of the absent keys are seen at once")
		put(t, s, "gone", "v2")
		require.Equal(t, "v2", valueOf(t, s, "gone"))
		txnPut(t, s, "never", "n1")
		require.Equal(t, "n1", valueOf(t, s, "never"))
		require.False(t, s.reads.m["never"].absent)
	})
}

func TestReadCache_WritesAreSeenAtOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		t.Logf("Step 1: prepare: k cached")
		put(t, s, "k", "v1")
		require.Equal(t, "v1", valueOf(t, s, "k"))

		t.Logf("Step 2: act and verify: a put, a txn put, a delete, a delete range, each read right after it")
		put(t, s, "k", "v2")
		require.Equal(t, "v2", valueOf(t, s, "k"))
		txnPut(t, s, "k", "v3")
		require.Equal(t, "v3", valueOf(t, s, "k"))
		del(t, s, "k", "", false)
		require.Empty(t, get(t, s, &pb.RangeRequest{Key: []byte("k")}).Kvs)
		put(t, s, "k", "v4")
		require.Equal(t, "v4", valueOf(t, s, "k"))
		del(t, s, "a", "z", false)
		require.Empty(t, get(t, s, &pb.RangeRequest{Key: []byte("k")}).Kvs)

		t.Logf("Step 3: act and verify: one Apply writing more keys than readCacheBarrier, then the cached key")
		put(t, s, "k", "v5")
		require.Equal(t, "v5", valueOf(t, s, "k"))
		apply(t, s, func(a *Apply) {
			for i := 0; i <= readCacheBarrier; i++ {
				_, err := a.Put(&pb.PutRequest{Key: []byte(fmt.Sprintf("b%06d", i)), Value: []byte("x")})
				require.NoError(t, err)
			}
			_, err := a.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v6")})
			require.NoError(t, err)
		})
		require.False(t, s.reads.barrier)
		require.Equal(t, "v6", valueOf(t, s, "k"))

		t.Logf("Step 4: act and verify: a key cached, then written twice in one Apply: the byte count stays true")
		put(t, s, "k", "v7")
		get(t, s, &pb.RangeRequest{Key: []byte("k")})
		require.Positive(t, s.reads.bytes)
		apply(t, s, func(a *Apply) {
			for _, v := range []string{"v8", "v9"} {
				_, err := a.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte(v)})
				require.NoError(t, err)
			}
		})
		require.Zero(t, s.reads.bytes)
		require.Empty(t, s.reads.m)
		require.Equal(t, "v9", valueOf(t, s, "k"))

		t.Logf("Step 5: act and verify: Reload empties the cache")
		require.NoError(t, s.Reload())
		require.Empty(t, s.reads.m)
	})
}

// TestReadCache_ConcurrentReadsMatchHistory has one writer putting and
// deleting a few keys while readers read them; every answer must be the
// key's state at the answer's revision.
func TestReadCache_ConcurrentReadsMatchHistory(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		t.Logf("Step 1: prepare: 4 keys and a history of their values by revision")
		keys := []string{"k0", "k1", "k2", "k3"}
		type state map[string]string // live keys' values
		var mu sync.Mutex
		history := map[int64]state{s.Rev(): {}}
		cur := state{}

		t.Logf("Step 2: act: 1 writer (2,000 puts and deletes) and 4 readers reading until it ends")
		type answer struct {
			key   string
			rev   int64
			value string
			found bool
		}
		done := make(chan struct{})
		answers := make([][]answer, 4)
		var wg sync.WaitGroup
		for r := range answers {
			wg.Add(1)
			go func(r int) {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-done:
						return
					default:
					}
					k := keys[(i+r)%len(keys)]
					resp, err := s.Range(&pb.RangeRequest{Key: []byte(k)})
					if err != nil {
						t.Errorf("range %s: %v", k, err)
						return
					}
					a := answer{key: k, rev: resp.Header.Revision}
					if len(resp.Kvs) == 1 {
						a.value, a.found = string(resp.Kvs[0].Value), true
					}
					answers[r] = append(answers[r], a)
				}
			}(r)
		}
		for i := 0; i < 2000; i++ {
			k := keys[i%len(keys)]
			if i%7 == 3 {
				del(t, s, k, "", false)
				delete(cur, k)
			} else {
				v := fmt.Sprintf("v%d", i)
				put(t, s, k, v)
				cur[k] = v
			}
			snap := state{}
			for kk, vv := range cur {
				snap[kk] = vv
			}
			mu.Lock()
			history[s.Rev()] = snap
			mu.Unlock()
		}
		close(done)
		wg.Wait()

		t.Logf("Step 3: verify: every answer is the key's state at its revision")
		var n, hits int
		for _, as := range answers {
			for _, a := range as {
				want, ok := history[a.rev][a.key]
				require.Equal(t, ok, a.found, "key %s at %d", a.key, a.rev)
				require.Equal(t, want, a.value, "key %s at %d", a.key, a.rev)
				n++
			}
		}
		hits = len(s.reads.m)
		t.Logf("%d answers checked (%d keys cached at the end)", n, hits)
		require.Positive(t, n)
	})
}

// A fill must not outlive a clear between its lookup and itself, even when
// the revision is the same (Reload of an engine replaced at that revision).
func TestReadCache_FillAfterClearIsDropped(t *testing.T) {
	t.Logf("Step 1: prepare: a lookup misses at revision 5")
	c := newReadCache(1 << 20)
	current := func() int64 { return 5 }
	e, gen := c.lookup([]byte("k"), 5)
	require.Nil(t, e)

	t.Logf("Step 2: act: the cache is cleared, then the reader fills what it read before")
	c.clear()
	c.fill(kv("k", "old", 1, 2, 1, 0), gen, 5, current)

	t.Logf("Step 3: verify: nothing was cached; a fill with a fresh lookup is")
	e, _ = c.lookup([]byte("k"), 5)
	require.Nil(t, e)
	_, gen = c.lookup([]byte("k"), 5)
	c.fill(kv("k", "new", 1, 3, 2, 0), gen, 5, current)
	e, _ = c.lookup([]byte("k"), 5)
	require.NotNil(t, e)
	require.Equal(t, "new", string(e.value))
}

// With ReadCacheBytes < 0 (memory-engine members) nothing is cached and
// the Apply collects no written keys.
func TestReadCache_Off(t *testing.T) {
	for _, ec := range engineCases {
		t.Run(ec.name, func(t *testing.T) {
			t.Logf("Step 1: prepare a store with the read cache off")
			s := openStore(t, ec, Config{ReadCacheBytes: -1})

			t.Logf("Step 2: act: put, read, put again, read")
			put(t, s, "k", "v1")
			require.Equal(t, "v1", valueOf(t, s, "k"))
			a := s.NewApply()
			_, err := a.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v2")})
			require.NoError(t, err)
			require.Empty(t, a.written)
			_, err = a.Commit(false)
			require.NoError(t, err)

			t.Logf("Step 3: verify: reads see each write; the cache holds nothing")
			require.Equal(t, "v2", valueOf(t, s, "k"))
			require.Empty(t, s.reads.m)
		})
	}
}
