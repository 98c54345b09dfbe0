package mvcc

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/engine/enginetest"
)

func compact(t *testing.T, s *Store, rev int64) {
	t.Helper()
	apply(t, s, func(a *Apply) {
		_, err := a.Compact(rev)
		require.NoError(t, err)
	})
}

func TestStore_Compact(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		t.Logf("Step 1: history: k has 3 versions, gone has a put and a delete, keep has 1")
		put(t, s, "k", "1")          // 2
		put(t, s, "gone", "x")       // 3
		put(t, s, "k", "2")          // 4
		del(t, s, "gone", "", false) // 5
		put(t, s, "keep", "y")       // 6
		put(t, s, "k", "3")          // 7
		require.Equal(t, 6, enginetest.CountEntries(t, s.Engine(), engine.Data))

		t.Logf("Step 2: compact at 5")
		compact(t, s, 5)
		require.Equal(t, int64(5), s.CompactRev())
		s.WaitCompaction(5)

		t.Logf("Step 3: reads below 5 fail; at and above 5 they see the same data as before")
		_, err := s.Range(&pb.RangeRequest{Key: []byte("k"), Revision: 4})
		require.ErrorIs(t, err, ErrCompacted)
		requireKVs(t, []*mvccpb.KeyValue{kv("k", "2", 2, 4, 2, 0)}, get(t, s, &pb.RangeRequest{Key: []byte("k"), Revision: 5}).Kvs)
		all := get(t, s, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: 6})
		require.Equal(t, []string{"k", "keep"}, keysOf(all.Kvs))
		requireKVs(t, []*mvccpb.KeyValue{kv("k", "3", 2, 7, 3, 0)}, get(t, s, &pb.RangeRequest{Key: []byte("k")}).Kvs)

		t.Logf("Step 4: physically, k@2, gone@3 and the gone tombstone@5 are deleted: 3 versions left")
		require.Equal(t, 3, enginetest.CountEntries(t, s.Engine(), engine.Data))
		require.Equal(t, 3, enginetest.CountEntries(t, s.Engine(), engine.ChangeLog), "change records below 5 are deleted, 5..7 kept")

		t.Logf("Step 5: compacting again at or below 5 fails; above the current revision too")
		a := s.NewApply()
		_, err = a.Compact(5)
		require.ErrorIs(t, err, ErrCompacted)
		_, err = a.Compact(8)
		require.ErrorIs(t, err, ErrFutureRev)
		a.Abort()
	})
}

func TestStore_CompactInManyBatchesWhileWriting(t *testing.T) {
	for _, ec := range engineCases {
		t.Run(ec.name, func(t *testing.T) {
			s := openStore(t, ec, Config{CompactionBatchLimit: 7})
			for i := 0; i < 200; i++ {
				put(t, s, fmt.Sprintf("k%02d", i%20), fmt.Sprint(i))
			}
			compact(t, s, s.Rev())
			for i := 0; i < 50; i++ {
				put(t, s, fmt.Sprintf("k%02d", i%20), fmt.Sprint("after", i))
			}
			s.WaitCompaction(201)
			require.Equal(t, 20+50, enginetest.CountEntries(t, s.Engine(), engine.Data))
			resp := get(t, s, &pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l"), Revision: 201})
			require.Equal(t, int64(20), resp.Count)
			require.Equal(t, "199", string(resp.Kvs[19].Value))
			require.Equal(t, int64(10), resp.Kvs[19].Version)
		})
	}
}

func TestStore_Events(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		put(t, s, "a", "1")                                                                   // 2
		txn(t, s, &pb.TxnRequest{Success: []*pb.RequestOp{opPut("a", "2"), opPut("b", "1")}}) // 3
		del(t, s, "a", "", false)                                                             // 4
		put(t, s, "c", "1")                                                                   // 5

		t.Logf("Step 1: everything from 1, with previous versions")
		evs, next, err := s.Events(1, 0, 0, true)
		require.NoError(t, err)
		require.Equal(t, int64(6), next)
		require.Len(t, evs, 5)
		require.Equal(t, mvccpb.Event_PUT, evs[0].Type)
		requireKV(t, kv("a", "1", 2, 2, 1, 0), evs[0].Kv)
		require.Nil(t, evs[0].PrevKv)
		requireKV(t, kv("a", "2", 2, 3, 2, 0), evs[1].Kv)
		requireKV(t, kv("a", "1", 2, 2, 1, 0), evs[1].PrevKv)
		requireKV(t, kv("b", "1", 3, 3, 1, 0), evs[2].Kv)
		require.Equal(t, mvccpb.Event_DELETE, evs[3].Type)
		require.Equal(t, "a", string(evs[3].Kv.Key))
		require.Equal(t, int64(4), evs[3].Kv.ModRevision)
		requireKV(t, kv("a", "2", 2, 3, 2, 0), evs[3].PrevKv)

		t.Logf("Step 2: a limit never splits a revision")
		evs, next, err = s.Events(2, 0, 2, false)
		require.NoError(t, err)
		require.Len(t, evs, 3, "revision 3's two events come together")
		require.Equal(t, int64(4), next)
		require.Nil(t, evs[1].PrevKv)

		t.Logf("Step 3: after compaction at 4, events from 4 remain and from 3 fail")
		compact(t, s, 4)
		s.WaitCompaction(4)
		evs, _, err = s.Events(4, 0, 0, false)
		require.NoError(t, err)
		require.Len(t, evs, 2)
		require.Equal(t, mvccpb.Event_DELETE, evs[0].Type, "the delete at the compaction revision is still replayed")
		_, _, err = s.Events(3, 0, 0, false)
		require.ErrorIs(t, err, ErrCompacted)
	})
}

// history writes the same operations to a store.
func history(t *testing.T, s *Store) {
	for i := 0; i < 30; i++ {
		put(t, s, fmt.Sprintf("key/%d", i%7), fmt.Sprintf("value-%d", i))
		if i%5 == 4 {
			del(t, s, fmt.Sprintf("key/%d", i%3), "", false)
		}
	}
}

func TestStore_HashKVSameOnEveryEngine(t *testing.T) {
	var hashes []uint32
	for _, ec := range engineCases {
		s := openStore(t, ec, Config{})
		history(t, s)
		h, rev, crev, err := s.HashKV(0)
		require.NoError(t, err)
		require.Equal(t, s.Rev(), rev)
		require.Equal(t, int64(-1), crev, "never compacted: -1, as etcd answers")
		hNone, _, _, err := openStore(t, ec, Config{}).HashKV(-1)
		require.NoError(t, err)
		hNeg, negRev, _, err := s.HashKV(-1)
		require.NoError(t, err)
		require.Equal(t, int64(-1), negRev, "a negative revision is hashed as asked, as etcd does")
		require.Equal(t, hNone, hNeg, "a negative revision hashes no version")
		require.NotEqual(t, h, hNeg)
		h20, _, _, err := s.HashKV(20)
		require.NoError(t, err)
		require.NotEqual(t, h, h20, "a different revision hashes differently")
		hashes = append(hashes, h)

		t.Logf("%s: the hash is the same before and after physical compaction", ec.name)
		compact(t, s, 20)
		before, _, crev, err := s.HashKV(0)
		require.NoError(t, err)
		require.Equal(t, int64(20), crev)
		s.WaitCompaction(20)
		after, _, _, err := s.HashKV(0)
		require.NoError(t, err)
		require.Equal(t, before, after)
		_, _, _, err = s.HashKV(19)
		require.ErrorIs(t, err, ErrCompacted)
		_, _, _, err = s.HashKV(s.Rev() + 1)
		require.ErrorIs(t, err, ErrFutureRev)

		h1, _, err := s.Hash()
		require.NoError(t, err)
		put(t, s, "more", "x")
		h2, _, err := s.Hash()
		require.NoError(t, err)
		require.NotEqual(t, h1, h2, "Hash changes after a put")
	}
	require.Equal(t, hashes[0], hashes[1], "memory and rocksdb hash the same history alike")
}

// openRocksStore opens a store on a RocksDB engine in dir, for tests that
// close and reopen it.
func openRocksStore(t *testing.T, dir string) (*Store, engine.Engine) {
	t.Helper()
	e := engineCases[1].open(t, dir)
	s, err := Open(e, Config{})
	require.NoError(t, err)
	return s, e
}

// requireCompactRefused asserts that Compact(rev) fails with want.
func requireCompactRefused(t *testing.T, s *Store, rev int64, want error) {
	t.Helper()
	a := s.NewApply()
	defer a.Abort()
	_, err := a.Compact(rev)
	require.ErrorIs(t, err, want, "Compact(%d)", rev)
}

// TestStore_CompactZero: as in etcd, a store never compacted reports
// compaction revision -1, accepts Compact(0) once (it removes nothing), and
// refuses it after that, also after a restart.
func TestStore_CompactZero(t *testing.T) {
	dir := t.TempDir()
	s, e := openRocksStore(t, dir)

	t.Logf("Step 1: a new store with one put reports compaction revision -1 and hashes it")
	put(t, s, "k", "v") // 2
	require.Equal(t, int64(-1), s.CompactRev())
	h, _, crev, err := s.HashKV(0)
	require.NoError(t, err)
	require.Equal(t, int64(-1), crev)

	t.Logf("Step 2: Compact(-1) is refused; Compact(0) is accepted and removes nothing")
	requireCompactRefused(t, s, -1, ErrCompacted)
	compact(t, s, 0)
	s.WaitCompaction(0)
	require.Equal(t, int64(0), s.CompactRev())
	h0, _, crev, err := s.HashKV(0)
	require.NoError(t, err)
	require.Equal(t, int64(0), crev)
	require.Equal(t, h, h0, "compacting at 0 removes nothing")
	requireKVs(t, []*mvccpb.KeyValue{kv("k", "v", 2, 2, 1, 0)}, get(t, s, &pb.RangeRequest{Key: []byte("k"), Revision: 2}).Kvs)

	t.Logf("Step 3: a second Compact(0) is refused, also after a restart")
	requireCompactRefused(t, s, 0, ErrCompacted)
	require.NoError(t, s.Close())
	require.NoError(t, e.Close())
	s, e = openRocksStore(t, dir)
	defer func() { s.Close(); e.Close() }()
	require.Equal(t, int64(0), s.CompactRev())
	requireCompactRefused(t, s, 0, ErrCompacted)

	t.Logf("Step 4: Compact(1) is still accepted")
	compact(t, s, 1)
	require.Equal(t, int64(1), s.CompactRev())
}

func TestStore_ReopenKeepsState(t *testing.T) {
	dir := t.TempDir()
	s, e := openRocksStore(t, dir)
	history(t, s)
	compact(t, s, 10)
	s.WaitCompaction(10)
	h, rev, _, err := s.HashKV(0)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, e.Close())

	s, e = openRocksStore(t, dir)
	defer func() { s.Close(); e.Close() }()
	require.Equal(t, rev, s.Rev())
	require.Equal(t, int64(10), s.CompactRev())
	h2, _, _, err := s.HashKV(0)
	require.NoError(t, err)
	require.Equal(t, h, h2)
	require.Equal(t, rev+1, put(t, s, "after-reopen", "v").Header.Revision)
}

// TestStore_CloseDuringCompaction: Close must return while a compaction is
// still running (it used to restart the cut-short compaction forever).
func TestStore_CloseDuringCompaction(t *testing.T) {
	for _, ec := range engineCases {
		t.Run(ec.name, func(t *testing.T) {
			e := ec.open(t, t.TempDir())
			defer e.Close()
			s, err := Open(e, Config{CompactionBatchLimit: 1})
			require.NoError(t, err)
			for i := 0; i < 300; i++ {
				put(t, s, fmt.Sprintf("k%d", i%3), "v")
			}
			compact(t, s, s.Rev())
			done := make(chan struct{})
			go func() {
				s.Close()
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Close did not return while a compaction was running")
			}
		})
	}
}

// TestStore_DeletedKeyStaysDeletedAcrossCompactions: a version kept by one
// compaction (it was the newest) must go in a later compaction once a
// newer version supersedes it, even though its change record went with the
// first compaction. Otherwise a delete whose tombstone is compacted away
// brings the old value back.
func TestStore_DeletedKeyStaysDeletedAcrossCompactions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *Store) {
		t.Logf("Step 1: k=v1 at 2, other writes, compact at 3 (v1 is the newest, kept)")
		put(t, s, "k", "v1")    // 2
		put(t, s, "other", "x") // 3
		put(t, s, "other", "y") // 4
		apply(t, s, func(a *Apply) { _, err := a.Compact(3); require.NoError(t, err) })
		s.WaitCompaction(3)

		t.Logf("Step 2: k=v2 at 5, then k deleted at 6, compact at 6 (the tombstone goes)")
		put(t, s, "k", "v2")      // 5
		del(t, s, "k", "", false) // 6
		apply(t, s, func(a *Apply) { _, err := a.Compact(6); require.NoError(t, err) })
		s.WaitCompaction(6)

		t.Logf("Step 3: k stays deleted; no version of it is left in the engine")
		require.Empty(t, get(t, s, &pb.RangeRequest{Key: []byte("k")}).Kvs)
		prefix := appendEscaped(nil, []byte("k"))
		it := s.eng.NewIterator(engine.Data, engine.IterOptions{Lower: prefix, Upper: skipKey(nil, prefix)})
		defer it.Close()
		var left []int64
		for ok := it.First(); ok; ok = it.Next() {
			_, rev, err := splitDataKey(it.Key())
			require.NoError(t, err)
			left = append(left, rev)
		}
		require.Empty(t, left, "versions of k left after compaction")

		t.Logf("Step 4: a key updated across compactions keeps only its newest version")
		put(t, s, "u", "1") // 7
		apply(t, s, func(a *Apply) { _, err := a.Compact(7); require.NoError(t, err) })
		s.WaitCompaction(7)
		put(t, s, "u", "2") // 8
		put(t, s, "u", "3") // 9
		apply(t, s, func(a *Apply) { _, err := a.Compact(9); require.NoError(t, err) })
		s.WaitCompaction(9)
		prefix = appendEscaped(nil, []byte("u"))
		it2 := s.eng.NewIterator(engine.Data, engine.IterOptions{Lower: prefix, Upper: skipKey(nil, prefix)})
		defer it2.Close()
		left = nil
		for ok := it2.First(); ok; ok = it2.Next() {
			_, rev, err := splitDataKey(it2.Key())
			require.NoError(t, err)
			left = append(left, rev)
		}
		require.Equal(t, []int64{9}, left)
		requireKVs(t, []*mvccpb.KeyValue{kv("u", "3", 7, 9, 3, 0)}, get(t, s, &pb.RangeRequest{Key: []byte("u")}).Kvs)
	})
}
