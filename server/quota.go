package server

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
)

// The space quota, as etcd's --quota-backend-bytes: before a request that
// adds data (Put, a Txn with a put, LeaseGrant) is proposed, the member
// checks that its database size plus the request's cost stays below the
// quota. If not, it refuses the request with ErrNoSpace and proposes a
// NOSPACE alarm for itself; once the alarm is applied the whole cluster
// refuses such requests at apply time (alarm.go) until an operator frees
// space (compact, defragment) and disarms the alarm. Deletes, compaction and
// reads always pass.
//
// The size is the engine's DiskSize (files on disk for RocksDB, live bytes
// for the memory engine). RocksDB's is sampled in the background every
// sizeInterval (it stats every file), so the check costs one atomic load
// per request and a fast writer may pass the quota by up to an interval's
// writes; the memory engine's costs an atomic load and is read each time.

// The disk's free space is a second quota. A full disk fails the synced
// raft log write, and RocksDB (Debian's build keeps its assertions) aborts
// the process on the next write after such a failure. So the member also
// samples the free space of the data directory's filesystem with the size,
// and treats a write that would leave less than DiskFreeMinBytes free as
// over the quota: ErrNoSpace and a NOSPACE alarm, with a warning that names
// the free space. Deletes, compaction and defragmentation still run, and
// the reserve leaves RocksDB room for its memtable flushes.

// DefaultDiskFreeMinBytes is the free space kept on the data directory's
// filesystem when none is configured.
const DefaultDiskFreeMinBytes = 256 << 20

// DefaultQuotaBackendBytes is the quota when none is configured. etcd's
// default is 2 GiB and its recommended maximum 8 GiB; MetaStore's storage
// has no such ceiling, so the default is the larger figure.
const DefaultQuotaBackendBytes = 8 << 30

const sizeInterval = 250 * time.Millisecond

// Costs as etcd's storage quota estimates them.
const (
	kvOverhead    = 256
	leaseOverhead = 64
)

// QuotaBytes is the effective quota (negative: disabled).
func (s *Server) QuotaBytes() int64 {
	if s.cfg.QuotaBackendBytes == 0 {
		return DefaultQuotaBackendBytes
	}
	return s.cfg.QuotaBackendBytes
}

// checkQuota refuses a request that would add data beyond the quota (or
// while a NOSPACE alarm is active: the apply path would refuse it anyway).
func (s *Server) checkQuota(r *pb.InternalRaftRequest) error {
	cost := requestCost(r)
	if cost == 0 {
		return nil
	}
	if s.ops.nospace.Load() && !s.ops.corrupt.Load() { // CORRUPT takes precedence at apply
		return ErrNoSpace
	}
	q := s.QuotaBytes()
	if s.cfg.Engine == EngineMemory {
		s.sampleSize() // O(1) there: no lag behind a fast writer
	}
	if s.lowOnDisk(cost) {
		s.raiseAlarm(s.node.ID(), pb.AlarmType_NOSPACE)
		return ErrNoSpace
	}
	if q < 0 || s.ops.size.Load()+cost < q {
		return nil
	}
	s.raiseAlarm(s.node.ID(), pb.AlarmType_NOSPACE)
	return ErrNoSpace
}

// diskFreeMin is the effective free-space minimum (negative: none).
func (c Config) diskFreeMin() int64 {
	if c.DiskFreeMinBytes == 0 {
		return DefaultDiskFreeMinBytes
	}
	return c.DiskFreeMinBytes
}

// openFreeMin caps the free space a member needs to open its engines:
// RocksDB writes a new MANIFEST and WAL when it opens, and flushes what it
// recovered from the old WAL (up to its memtables' size).
const openFreeMin = 64 << 20

// ErrDiskFull is a start refused for lack of free space.
var ErrDiskFull = errors.New("server: not enough free disk space")

// checkRoomToOpen refuses to open the engines when the data directory's
// filesystem has less free space than the minimum (capped at openFreeMin):
// on a full disk RocksDB stops the process on a failed assertion while it
// recovers, where a clear error lets the operator free space and retry.
func checkRoomToOpen(cfg Config) error {
	need := min(cfg.diskFreeMin(), openFreeMin)
	if need <= 0 {
		return nil
	}
	free, err := cfg.freeSpace(cfg.DataDir)
	if err != nil || free >= need {
		return nil // unknown: the engine reports what it finds
	}
	return fmt.Errorf("%w: the filesystem of %s has %d bytes free, %d are needed to open the database (--disk-free-min-bytes); free some space and start again",
		ErrDiskFull, cfg.DataDir, free, need)
}

// statfsFree is the space an unprivileged writer may still use on the
// filesystem holding dir.
func statfsFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// lowOnDisk reports whether a write of cost bytes would leave the data
// directory's filesystem with less free space than the minimum.
func (s *Server) lowOnDisk(cost int64) bool {
	minFree := s.cfg.diskFreeMin()
	free := s.ops.diskFree.Load()
	if minFree < 0 || free < 0 || free-cost >= minFree {
		return false
	}
	if s.ops.lowDisk.CompareAndSwap(false, true) {
		s.lg.Warn("refusing writes: the data directory's filesystem is nearly full",
			zap.String("data-dir", s.cfg.DataDir), zap.Int64("free-bytes", free), zap.Int64("disk-free-min-bytes", minFree))
	}
	return true
}

// sampleDiskFree refreshes the cached free space of the data directory's
// filesystem (the space an unprivileged writer may use).
func (s *Server) sampleDiskFree() {
	free, err := s.cfg.freeSpace(s.cfg.DataDir)
	if err != nil {
		s.lg.Debug("reading the data directory's free space failed", zap.Error(err))
		s.ops.diskFree.Store(-1)
		return
	}
	s.ops.diskFree.Store(free)
	if minFree := s.cfg.diskFreeMin(); minFree >= 0 && free >= minFree && s.ops.lowDisk.CompareAndSwap(true, false) {
		s.lg.Info("the data directory's filesystem has room again", zap.Int64("free-bytes", free))
	}
}

func requestCost(r *pb.InternalRaftRequest) int64 {
	switch {
	case r.Put != nil:
		return kvOverhead + int64(len(r.Put.Key)+len(r.Put.Value))
	case r.Txn != nil:
		return txnPutBytes(r.Txn)
	case r.LeaseGrant != nil:
		return leaseOverhead
	}
	return 0
}

// txnPutBytes is the cost of the puts of a txn, in both branches and nested
// txns (0 when it has none).
func txnPutBytes(t *pb.TxnRequest) int64 {
	var n int64
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			switch v := op.GetRequest().(type) {
			case *pb.RequestOp_RequestPut:
				n += kvOverhead + int64(len(v.RequestPut.Key)+len(v.RequestPut.Value))
			case *pb.RequestOp_RequestTxn:
				n += txnPutBytes(v.RequestTxn)
			}
		}
	}
	return n
}

// DBSize samples the engine's size now (one stat per RocksDB file; O(1)
// for the memory engine) and returns it.
func (s *Server) DBSize() int64 {
	s.sampleSize()
	return s.ops.size.Load()
}

// sampleSize refreshes the cached engine size.
func (s *Server) sampleSize() {
	n, err := s.eng.DiskSize()
	if err != nil {
		s.lg.Debug("sampling the database size failed", zap.Error(err))
		return
	}
	s.ops.size.Store(int64(n))
}

// sizeLoop samples the size until the server stops.
func (s *Server) sizeLoop() {
	defer s.ops.wg.Done()
	t := time.NewTicker(sizeInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ops.stopc:
			return
		case <-t.C:
			s.sampleSize()
			s.sampleDiskFree()
		}
	}
}
