package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/lease"
	"github.com/metastore/metastore/mvcc"
)

var metaAppliedIndex = []byte("server/applied_index")

// applier implements raft.Applier over the mvcc store.
type applier struct{ s *Server }

// Apply applies a slice of committed entries as one engine batch, with the
// applied index in the same batch, then answers the waiters.
func (ap applier) Apply(entries []*raftpb.Entry) error {
	s := ap.s
	if len(entries) == 0 {
		return nil
	}
	a := s.store.NewApply()
	type answer struct {
		id uint64
		r  result
	}
	answers := make([]answer, 0, len(entries))
	var noopTerm uint64 // a new leader's first entry is empty (lease.go)
	isRequest := func(e *raftpb.Entry) bool { return e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 }
	finalReq := len(entries) - 1 // the last request: mvcc.Apply.FinalRequest
	for finalReq >= 0 && !isRequest(entries[finalReq]) {
		finalReq--
	}
	for i, e := range entries {
		if !isRequest(e) {
			if e.GetType() == raftpb.EntryNormal {
				noopTerm = e.GetTerm() // an empty normal entry
			}
			continue
		}
		var req pb.InternalRaftRequest
		if err := proto.Unmarshal(e.GetData(), &req); err != nil {
			a.Abort()
			return fmt.Errorf("server: entry %d is not a request: %w", e.GetIndex(), err)
		}
		if i == finalReq {
			a.FinalRequest() // nothing reads through the Apply after it
		}
		began := time.Now()
		resp, err := s.applyAuth(a, &req) // auth.go, then alarm.go: alarms, downgrade, NOSPACE/CORRUPT gate
		if d := time.Since(began); d > s.cfg.WarningApplyDuration {
			s.logSlowApply(&req, d) // slowlog.go
		}
		answers = append(answers, answer{req.GetHeader().GetID(), result{resp: resp, err: err}})
	}
	last := entries[len(entries)-1].GetIndex()
	// Nothing reads the applied index back before the commit.
	a.Batch().PutUnindexed(engine.Meta, metaAppliedIndex, binary.BigEndian.AppendUint64(nil, last))
	size, records := a.Batch().Size(), a.Batch().Count()
	start := time.Now()
	if _, err := a.Commit(false); err != nil {
		return fmt.Errorf("server: committing entries up to %d: %w", last, err)
	}
	s.cfg.Metrics.stateCommitted(start)
	s.applied.Store(last)
	for _, an := range answers {
		s.waiters.trigger(an.id, an.r)
	}
	if noopTerm != 0 {
		s.noopApplied(noopTerm)
	}
	if size >= releaseAfterBytes || records >= releaseAfterRecords {
		releaseMemory(s.engines(), s.lg)
	}
	if s.cfg.Engine == EngineMemory {
		s.maybeCheckpoint(last)
	}
	return nil
}

// applyRequest dispatches one request to the state machine. Errors here are
// the client's (a failed compare is not an error; an unknown lease is) and
// go back to the waiter; they never stop the apply loop.
func applyRequest(a *mvcc.Apply, le *lease.Lessor, r *pb.InternalRaftRequest) (any, error) {
	switch {
	case r.Put != nil:
		return a.Put(r.Put)
	case r.DeleteRange != nil:
		return a.DeleteRange(r.DeleteRange)
	case r.Txn != nil:
		return a.Txn(r.Txn)
	case r.Compaction != nil:
		return a.Compact(r.Compaction.Revision)
	case r.LeaseGrant != nil, r.LeaseRevoke != nil, r.LeaseCheckpoint != nil:
		return applyLease(a, le, r)
	}
	return nil, errUnknownRequest
}

// releaseAfterBytes: after applying a batch this large (a DeleteRange of
// many keys builds one), the memory it took is handed back to the OS at
// once rather than kept by the Go heap until the scavenger gets to it.
const releaseAfterBytes = 64 << 20

// releaseAfterRecords: the same for a batch of this many records, however
// small (a DeleteRange of 100,000 short keys writes 200,000: a tombstone
// and a change record each). The memtable and the apply's Go heap grow
// with the records as much as with their bytes.
const releaseAfterRecords = 200_000

// releasing is set while a release runs: big batches in a row start one.
var releasing atomic.Bool

// cHeapReleaser is an engine with memtables and a C heap (RocksDB).
type cHeapReleaser interface {
	Flush() error
	ReleaseFreeMemory()
}

// releaseMemory runs a GC and returns the freed Go heap to the OS; then
// it flushes the engine's memtables and returns the C heap they held. All
// in the background: the apply loop does not wait for it.
//
// The flush is what frees the memory: RocksDB flushes a full memtable only
// when the next write comes, so after a DeleteRange of 300,000 keys (check
// perf's last request) an idle member kept the memtable that took them,
// about 250 MB that RocksDB's memtable counters did not even report.
func releaseMemory(engs []engine.Engine, lg *zap.Logger) {
	if !releasing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer releasing.Store(false)
		debug.FreeOSMemory()
		for _, e := range engs {
			r, ok := e.(cHeapReleaser)
			if !ok {
				continue
			}
			if err := r.Flush(); err != nil {
				lg.Warn("flushing memtables after a large batch", zap.Error(err))
			}
			r.ReleaseFreeMemory() // NB: a process-wide malloc_trim
			// The flushed memtables are freed once their last reader lets
			// go of them, a moment after the flush: trim again then.
			// NB: malloc_trim does not use the engine: safe after it closed.
			time.AfterFunc(releaseDelay, r.ReleaseFreeMemory)
		}
	}()
}

// releaseDelay is when the C heap is trimmed a second time after the flush.
const releaseDelay = 3 * time.Second

var errUnknownRequest = errors.New("server: unknown request in log entry")

func (ap applier) AppliedIndex() uint64 { return ap.s.applied.Load() }

func (ap applier) DurableIndex() uint64 {
	if ap.s.cfg.Engine == EngineMemory {
		return ap.s.durable.Load()
	}
	return ap.s.applied.Load()
}

func readAppliedIndex(r engine.Reader) (uint64, error) {
	b, err := r.Get(engine.Meta, metaAppliedIndex)
	if errors.Is(err, engine.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("server: applied index of %d bytes", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// maybeCheckpoint starts a checkpoint of the memory engine's state into
// data-dir/state every checkpointEvery entries, in the background: the apply
// loop goes on meanwhile. Writing the whole state took 22% of the member's
// CPU under etcdctl check perf when the apply loop waited for it, and every
// write waited with it. One runs at a time.
//
// The memory engine checkpoints the state current when the write starts,
// which is the state at index or later: it holds its own applied index
// (metaAppliedIndex, written with every batch), which is where a restart
// replays the raft log from. durable, which bounds how far the raft log may
// be compacted, becomes index: at or below what the file holds. A failed
// checkpoint is logged and retried at the next batch; durable stays, so the
// raft log keeps every entry since the last good one.
//
// A checkpoint writes the changes since the last one (a delta file) while
// those stay under half the full state's size, and then a full checkpoint
// (engine/memory/persist.go). The next one starts no sooner after the last
// one ended than that one took, which keeps checkpointing to at most about
// half of a core even when each is a full one.
func (s *Server) maybeCheckpoint(index uint64) {
	if index < s.durable.Load()+s.checkpointEvery || time.Now().UnixNano() < s.nextCheckpoint.Load() ||
		!s.checkpointing.CompareAndSwap(false, true) {
		return
	}
	s.checkpoints.Add(1) // only the apply goroutine adds: no Wait runs concurrently with it
	go func() {
		defer s.checkpoints.Done()
		defer s.checkpointing.Store(false)
		start := time.Now()
		if err := s.writeCheckpoint(index); err != nil {
			s.lg.Error("background checkpoint of the memory state failed; the raft log is kept from the last good one",
				zap.Uint64("index", index), zap.Error(err))
		}
		end := time.Now()
		s.nextCheckpoint.Store(end.Add(end.Sub(start)).UnixNano())
	}()
}

// checkpoint writes the memory engine's state at index into data-dir/state
// and waits for it, after any background checkpoint has finished (both use
// the same files, and this one, the newer, must land last). Callers: Stop,
// a snapshot Restore (both with the apply loop stopped or on it) and the
// offline restore.
func (s *Server) checkpoint(index uint64) error {
	s.checkpoints.Wait()
	return s.writeCheckpoint(index)
}

// statePersister is the memory engine's Persist (engine/memory/persist.go):
// it brings the state directory up to date, with a file of the changes
// since the last call when those are small, else with a new full
// checkpoint swapped in.
type statePersister interface {
	Persist(dir string) error
}

func (s *Server) writeCheckpoint(index uint64) error {
	p, ok := s.eng.(statePersister)
	if !ok {
		return fmt.Errorf("server: the %s engine keeps no state directory", s.eng.Name())
	}
	if err := p.Persist(filepath.Join(s.cfg.DataDir, "state")); err != nil {
		return fmt.Errorf("server: checkpointing the memory state: %w", err)
	}
	s.durable.Store(index)
	return nil
}
