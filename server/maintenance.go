package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/coreos/go-semver/semver"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.uber.org/zap"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/mvcc"
	"github.com/metastore/metastore/raft"
	"github.com/metastore/metastore/version"
)

// Errors of the maintenance operations, named after etcd's (grpc/ maps them
// to etcd's gRPC errors).
var (
	ErrBadLeaderTransferee           = errors.New("server: bad leader transferee")
	ErrTimeoutLeaderTransfer         = errors.New("server: request timed out, leader transfer took too long")
	ErrWrongDowngradeVersionFormat   = errors.New("server: wrong downgrade target version format")
	ErrInvalidDowngradeTargetVersion = errors.New("server: invalid downgrade target version")
	ErrDowngradeInProcess            = errors.New("server: cluster has a downgrade job in progress")
	ErrNoInflightDowngrade           = errors.New("server: no inflight downgrade job")
)

// startOps starts the operational background loops (size sampling,
// auto-compaction, corruption check). Called by Start.
func (s *Server) startOps() {
	s.ops.stopc = make(chan struct{})
	s.sampleSize()
	s.sampleDiskFree()
	s.ops.wg.Add(1)
	go s.sizeLoop()
	s.startAutoCompaction()
	s.startCorruptCheck()
}

// stopOps stops them; it is harmless when they never started.
func (s *Server) stopOps() {
	if s.ops.stopc == nil {
		return
	}
	close(s.ops.stopc)
	s.ops.wg.Wait()
	s.ops.stopc = nil
}

// defragMu serialises Defragment calls: two full compactions at once only
// compete for the same disk.
var defragMu sync.Mutex

// Defragment reclaims the space of deleted and compacted data: with RocksDB
// a manual compaction of every keyspace (it runs alongside reads, writes and
// RocksDB's own compactions: nothing is stopped); with the memory engine
// there is nothing to reclaim, only the raft log's RocksDB is compacted.
func (s *Server) Defragment(ctx context.Context) error {
	defragMu.Lock()
	defer defragMu.Unlock()
	start := time.Now()
	before := s.DBSize()
	for _, e := range s.engines() {
		for ks := engine.Keyspace(0); ks < engine.NumKeyspaces; ks++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := e.Compact(ks, nil, nil); err != nil {
				return fmt.Errorf("server: defragment: %w", err)
			}
		}
	}
	s.sampleSize()
	s.lg.Info("defragmented", zap.Int64("size-before", before), zap.Int64("size-after", s.DBSize()),
		zap.Duration("took", time.Since(start)))
	return nil
}

func (s *Server) engines() []engine.Engine {
	if s.log != nil && s.log != s.eng {
		return []engine.Engine{s.eng, s.log}
	}
	return []engine.Engine{s.eng}
}

// propertyReader is what RocksDB offers beyond the engine contract.
type propertyReader interface {
	Property(ks engine.Keyspace, name string) (uint64, error)
}

// DBSizeInUse is the size of the live data: for RocksDB RocksDB's estimate
// of the live data in SST files plus the memtables, at most DBSize (about
// what a full compaction would leave); for the memory engine the live
// bytes, as DBSize.
func (s *Server) DBSizeInUse() int64 {
	pr, ok := s.eng.(propertyReader)
	if !ok {
		return s.DBSize()
	}
	var n uint64
	for ks := engine.Keyspace(0); ks < engine.NumKeyspaces; ks++ {
		for _, p := range []string{"rocksdb.estimate-live-data-size", "rocksdb.cur-size-all-mem-tables"} {
			v, err := pr.Property(ks, p)
			if err != nil {
				return s.DBSize()
			}
			n += v
		}
	}
	return min(int64(n), s.DBSize())
}

// EngineMemory is what the storage engine holds in memory outside the Go
// heap, in bytes by kind: "memtables", "block_cache", "block_cache_pinned"
// and "table_readers" (index and filter blocks not in the block cache).
// Empty for engines without such memory (the memory engine's state is Go
// heap; its raft log's RocksDB counts).
func (s *Server) EngineMemory() map[string]uint64 {
	out := map[string]uint64{}
	for _, e := range s.engines() {
		pr, ok := e.(propertyReader)
		if !ok {
			continue
		}
		for ks := engine.Keyspace(0); ks < engine.NumKeyspaces; ks++ {
			for kind, p := range map[string]string{"memtables": "rocksdb.size-all-mem-tables", "table_readers": "rocksdb.estimate-table-readers-mem"} {
				if v, err := pr.Property(ks, p); err == nil {
					out[kind] += v
				}
			}
		}
		// NB: one block cache serves every column family: read it once.
		for kind, p := range map[string]string{"block_cache": "rocksdb.block-cache-usage", "block_cache_pinned": "rocksdb.block-cache-pinned-usage"} {
			if v, err := pr.Property(0, p); err == nil {
				out[kind] += v
			}
		}
	}
	return out
}

// StateSnapshot is a consistent point-in-time copy of the member's state for
// a backup (Maintenance.Snapshot). Its byte stream is the state snapshot
// format of snapshot.go, zero-padded to a multiple of 512 bytes; the backup
// file appends a SHA-256 of the stream. NB: the padding is for etcdctl,
// which refuses a download whose length is not 512*k + 32 (it checks for
// the digest that way); Restore stops reading at the stream's end record.
type StateSnapshot struct {
	snap engine.Snapshot
	size int64
	rev  int64
}

// NewStateSnapshot pins the current state. Its size is measured by encoding
// it once (the stream is not stored anywhere), so that the sender can report
// the remaining bytes as etcd does. Close it when done.
func (s *Server) NewStateSnapshot() (*StateSnapshot, error) {
	rev := s.store.Rev()
	snap := s.eng.NewSnapshot()
	var cw countingWriter
	if err := writeState(snap, &cw); err != nil {
		snap.Close()
		return nil, err
	}
	return &StateSnapshot{snap: snap, size: (cw.n + snapshotAlign - 1) / snapshotAlign * snapshotAlign, rev: rev}, nil
}

// Size is the length of the stream WriteTo writes.
func (ss *StateSnapshot) Size() int64 { return ss.size }

// Revision is (at least) the revision the snapshot holds.
func (ss *StateSnapshot) Revision() int64 { return ss.rev }

// WriteTo streams the state.
func (ss *StateSnapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	if err := writeState(ss.snap, cw); err != nil {
		return cw.n, err
	}
	if pad := ss.size - cw.n; pad > 0 {
		if _, err := cw.Write(make([]byte, pad)); err != nil {
			return cw.n, err
		}
	}
	if cw.n != ss.size {
		return cw.n, fmt.Errorf("server: snapshot stream of %d bytes, measured %d", cw.n, ss.size)
	}
	return cw.n, nil
}

const snapshotAlign = 512

// Close releases the pinned state.
func (ss *StateSnapshot) Close() error { return ss.snap.Close() }

// SnapshotReader reads what ss.WriteTo writes, through a pipe: WriteTo
// runs in its own goroutine. Close closes the pipe's read side (so a
// WriteTo still writing returns), waits until WriteTo has returned, and
// only then closes ss, which reads its pinned engine state until then: also
// after its last byte was read, and when a stream ends early. Both front
// ends stream snapshots through it.
func SnapshotReader(ss interface {
	io.WriterTo
	io.Closer
}) io.ReadCloser {
	pr, pw := io.Pipe()
	r := &snapshotReader{pr: pr, ss: ss, written: make(chan struct{})}
	go func() {
		defer close(r.written)
		_, err := ss.WriteTo(pw)
		pw.CloseWithError(err)
	}()
	return r
}

type snapshotReader struct {
	pr      *io.PipeReader
	ss      io.Closer
	written chan struct{}
	once    sync.Once
	err     error
}

func (r *snapshotReader) Read(p []byte) (int, error) { return r.pr.Read(p) }

func (r *snapshotReader) Close() error {
	r.once.Do(func() {
		r.pr.Close()
		<-r.written
		r.err = r.ss.Close()
	})
	return r.err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if c.w == nil {
		return len(p), nil
	}
	return c.w.Write(p)
}

// MoveLeader hands leadership to target, as etcd's: only the leader may
// (raft.ErrNotLeader), the target must be a voting member
// (ErrBadLeaderTransferee), and it returns once target leads or fails with
// ErrTimeoutLeaderTransfer when ctx (or the request timeout) ends first.
func (s *Server) MoveLeader(ctx context.Context, target uint64) error {
	if s.node.Leader() != s.node.ID() {
		return raft.ErrNotLeader
	}
	var found *raft.Member
	for _, m := range s.node.Members() {
		if m.ID == target {
			found = m
		}
	}
	if found == nil || found.IsLearner {
		return ErrBadLeaderTransferee
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	s.lg.Info("leadership transfer starting", zap.String("transferee", idString(target)))
	if err := s.node.TransferLeadership(ctx, target); err != nil {
		if ctx.Err() != nil {
			return ErrTimeoutLeaderTransfer
		}
		return err
	}
	s.lg.Info("leadership transfer finished", zap.String("new-leader", idString(target)), zap.Duration("took", time.Since(start)))
	return nil
}

// GracefulStop stops the member; when it leads a cluster with other
// voters, it first hands leadership to the most caught-up one (bounded by
// timeout), so the cluster does not wait an election timeout for a new
// leader.
func (s *Server) GracefulStop(timeout time.Duration) {
	if s.node != nil && s.node.Leader() == s.node.ID() {
		s.transferOnStop(min(timeout, s.cfg.RequestTimeout))
	}
	s.Stop()
}

func (s *Server) transferOnStop(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := s.node.Status(ctx)
	if err != nil {
		return
	}
	voters := map[uint64]bool{}
	for _, m := range s.node.Members() {
		if !m.IsLearner && m.ID != s.node.ID() {
			voters[m.ID] = true
		}
	}
	var best uint64
	var bestMatch uint64
	for id, pr := range st.Progress {
		if voters[id] && pr.RecentActive && (best == 0 || pr.Match > bestMatch) {
			best, bestMatch = id, pr.Match
		}
	}
	if best == 0 {
		return
	}
	s.lg.Info("stopping leader: transferring leadership", zap.String("transferee", idString(best)))
	if err := s.node.TransferLeadership(ctx, best); err != nil {
		s.lg.Warn("leadership transfer before stopping failed", zap.Error(err))
	}
}

// metaDowngrade holds the replicated downgrade target version.
var metaDowngrade = []byte("server/downgrade")

func (s *Server) loadDowngrade() error {
	v, err := s.eng.Get(engine.Meta, metaDowngrade)
	if errors.Is(err, engine.ErrNotFound) {
		s.ops.downgrade.Store(nil)
		return nil
	}
	if err != nil {
		return err
	}
	ver := string(v)
	s.ops.downgrade.Store(&ver)
	return nil
}

func (s *Server) applyDowngrade(a *mvcc.Apply, r *membershippb.DowngradeInfoSetRequest) *pb.DowngradeResponse {
	if r.Enabled {
		a.Batch().Put(engine.Meta, metaDowngrade, []byte(r.Ver))
		ver := r.Ver
		s.ops.downgrade.Store(&ver)
	} else {
		a.Batch().Delete(engine.Meta, metaDowngrade)
		s.ops.downgrade.Store(nil)
	}
	return &pb.DowngradeResponse{}
}

// DowngradeInfo reports the downgrade in progress (enabled false: none).
func (s *Server) DowngradeInfo() *pb.DowngradeInfo {
	if v := s.ops.downgrade.Load(); v != nil {
		return &pb.DowngradeInfo{Enabled: true, TargetVersion: *v}
	}
	return &pb.DowngradeInfo{}
}

// ClusterVersion is the cluster version MetaStore reports: etcd's API
// version, major.minor. Every member runs the same.
func ClusterVersion() *semver.Version {
	v := semver.New(version.EtcdAPIVersion)
	return &semver.Version{Major: v.Major, Minor: v.Minor}
}

// Downgrade answers etcd's downgrade requests as etcd answers for a cluster
// whose members all run one version: VALIDATE accepts exactly the previous
// minor version; ENABLE records that target (replicated; Status reports it)
// and CANCEL clears it. Nothing else changes: a MetaStore member serves the
// same API whatever the target.
func (s *Server) Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	cv := ClusterVersion()
	resp := &pb.DowngradeResponse{Version: fmt.Sprintf("%d.%d", cv.Major, cv.Minor)}
	switch r.Action {
	case pb.DowngradeRequest_VALIDATE, pb.DowngradeRequest_ENABLE:
		target, err := parseClusterVersion(r.Version)
		if err != nil {
			return nil, err
		}
		if err := s.linearizableBarrier(ctx); err != nil {
			return nil, err
		}
		if target.Major != cv.Major || target.Minor+1 != cv.Minor {
			return nil, ErrInvalidDowngradeTargetVersion
		}
		if s.ops.downgrade.Load() != nil {
			return nil, ErrDowngradeInProcess
		}
		if r.Action == pb.DowngradeRequest_ENABLE {
			if _, err := s.propose(ctx, &pb.InternalRaftRequest{DowngradeInfoSet: &membershippb.DowngradeInfoSetRequest{
				Enabled: true, Ver: target.String()}}); err != nil {
				return nil, err
			}
		}
	case pb.DowngradeRequest_CANCEL:
		if err := s.linearizableBarrier(ctx); err != nil {
			return nil, err
		}
		// NB: etcd logs a cancel without a downgrade in progress
		// (ErrNoInflightDowngrade) and answers success; so do we.
		if s.ops.downgrade.Load() != nil {
			if _, err := s.propose(ctx, &pb.InternalRaftRequest{DowngradeInfoSet: &membershippb.DowngradeInfoSetRequest{}}); err != nil {
				return nil, err
			}
		}
	default:
		return nil, ErrUnknownMethod
	}
	resp.Header = &pb.ResponseHeader{Revision: s.store.Rev()}
	s.fillHeader(resp.Header)
	return resp, nil
}

// ErrUnknownMethod is etcd's answer to an action it does not know (a
// downgrade or alarm action outside the enum).
var ErrUnknownMethod = errors.New("server: unknown method")

// parseClusterVersion accepts major.minor or major.minor.patch, keeping
// major.minor, as etcd.
func parseClusterVersion(v string) (*semver.Version, error) {
	ver, err := semver.NewVersion(v)
	if err != nil {
		if ver, err = semver.NewVersion(v + ".0"); err != nil {
			return nil, ErrWrongDowngradeVersionFormat
		}
	}
	return &semver.Version{Major: ver.Major, Minor: ver.Minor}, nil
}
