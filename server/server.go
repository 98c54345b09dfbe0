package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/metastore/metastore/auth"
	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/engine/memory"
	"github.com/metastore/metastore/engine/rocksdb"
	"github.com/metastore/metastore/mvcc"
	"github.com/metastore/metastore/raft"
)

// Server is one MetaStore member.
type Server struct {
	cfg   Config
	lg    *zap.Logger
	eng   engine.Engine // the state
	log   engine.Engine // the raft log (eng itself for rocksdb)
	store *mvcc.Store
	tr    *raft.Transport
	node  *raft.Node

	// bg tracks the server's own goroutines; Stop waits for them.
	bg sync.WaitGroup
	// readyc is closed once the member's attributes are published.
	readyc    chan struct{}
	readyOnce sync.Once

	leases leaseState // lease.go
	ops    opsState   // alarm.go, quota.go, maintenance.go, autocompact.go

	watch *mvcc.WatchHub // watch.go; fed by the store's commit hook

	auth *auth.Store // auth.go: users, roles, permissions, tokens

	ids       *idGenerator
	waiters   *waiters
	deadlines *deadlines // request timeouts of propose (deadline.go)
	applied   atomic.Uint64
	// hadData: the member started with an applied index above 0 (it is
	// not a fresh member), which makes it run the initial corruption check.
	hadData bool
	// durable is the index of the last memory-engine checkpoint.
	durable         atomic.Uint64
	checkpointEvery uint64
	// checkpointing is set while a background checkpoint runs (apply.go);
	// checkpoints tracks it, for the synchronous checkpoints to wait on.
	checkpointing atomic.Bool
	checkpoints   sync.WaitGroup
	// nextCheckpoint is the earliest time (Unix ns) the next background
	// checkpoint may start.
	nextCheckpoint atomic.Int64
}

// New opens the member's data directory (creating it) and its engines. It
// does not start raft: call Start.
func New(c Config) (*Server, error) {
	cfg, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: creating data dir: %w", err)
	}
	if err := checkRoomToOpen(cfg); err != nil { // quota.go
		return nil, err
	}
	s := &Server{cfg: cfg, lg: cfg.Logger, waiters: newWaiters(), readyc: make(chan struct{})}
	rcfg := cfg.RocksDB
	rcfg.DisableFsync = cfg.UnsafeNoFsync
	if cfg.UnsafeNoFsync {
		s.lg.Warn("--unsafe-no-fsync is set: the raft log is not fsynced; a crash can lose acknowledged writes. Use it for tests only.")
	}
	switch cfg.Engine {
	case EngineRocksDB:
		db, err := rocksdb.Open(filepath.Join(cfg.DataDir, "db"), rcfg)
		if err != nil {
			return nil, err
		}
		s.eng, s.log = db, db
	case EngineMemory:
		logDB, err := rocksdb.Open(filepath.Join(cfg.DataDir, "raft"), rcfg)
		if err != nil {
			return nil, err
		}
		// Persist's state directory (memory.Open takes back state.old if a
		// swap of a new base was interrupted).
		state, err := memory.Open(filepath.Join(cfg.DataDir, "state"))
		if err != nil {
			logDB.Close()
			return nil, err
		}
		s.eng, s.log = state, logDB
	}
	s.leases.lessor = newLessor(cfg)
	// The read cache saves a one-key range its RocksDB iterator; the memory
	// engine's reads cost less than keeping a second copy of the values.
	readCache := 0
	if cfg.Engine == EngineMemory {
		readCache = -1
	}
	s.store, err = mvcc.Open(s.eng, mvcc.Config{MaxRequestBytes: cfg.MaxRequestBytes, MaxTxnOps: cfg.MaxTxnOps,
		Leases: s.leases.lessor, ReadCacheBytes: readCache})
	if err != nil {
		s.closeEngines()
		return nil, err
	}
	if err := s.loadLeases(); err != nil {
		s.store.Close()
		s.closeEngines()
		return nil, err
	}
	if err := s.loadOps(); err != nil { // alarm.go
		s.store.Close()
		s.closeEngines()
		return nil, err
	}
	if err := s.loadAuth(); err != nil { // auth.go
		s.store.Close()
		s.closeEngines()
		return nil, err
	}
	idx, err := readAppliedIndex(s.eng)
	if err != nil {
		s.closeEngines()
		return nil, err
	}
	s.applied.Store(idx)
	s.durable.Store(idx)
	s.hadData = idx > 0
	s.checkpointEvery = max(cfg.SnapshotCount/2, 1)
	if cfg.SnapshotCount == 0 {
		s.checkpointEvery = raft.DefaultSnapshotCount / 2
	}
	s.watch = mvcc.NewWatchHub(s.store, mvcc.WatchConfig{})
	s.store.SetCommitHook(s.watch.Notify) // before raft starts applying
	return s, nil
}

// Start starts raft, serving peer traffic on peerListener.
func (s *Server) Start(peerListener net.Listener) error {
	tr, err := raft.NewTLSTransport(s.lg, s.cfg.PeerTLS) // tls.go
	if err != nil {
		return err
	}
	if s.cfg.PeerLocalAddr != "" {
		ip := net.ParseIP(s.cfg.PeerLocalAddr)
		if ip == nil {
			tr.Close()
			return fmt.Errorf("server: peer local address %q is not an IP address", s.cfg.PeerLocalAddr)
		}
		tr.SetLocalAddr(ip)
	}
	s.tr = tr
	s.tr.Serve(peerListener)
	state := raft.ClusterState(s.cfg.ClusterState)
	node, err := raft.Start(raft.Config{
		Name: s.cfg.Name, InitialCluster: s.cfg.InitialCluster, ClusterToken: s.cfg.ClusterToken,
		ClusterState: state, MemberID: s.cfg.MemberID, ClientURLs: s.cfg.ClientURLs,
		HeartbeatInterval: s.cfg.HeartbeatInterval, ElectionTimeout: s.cfg.ElectionTimeout,
		SnapshotCount: s.cfg.SnapshotCount, SnapshotCatchUpEntries: s.cfg.SnapshotCatchUpEntries,
		LogEngine: s.log, DataDir: s.cfg.DataDir, Logger: s.lg,
		OnLeaderChange: s.cfg.Metrics.leaderHook(), OnLogSync: s.cfg.Metrics.LogSynced,
		DisablePreVote: s.cfg.DisablePreVote, MaxLearners: s.cfg.MaxLearners,
		ForceNewCluster: s.cfg.ForceNewCluster, DisableElectionTickAdvance: s.cfg.DisableElectionTickAdvance,
	}, applier{s}, s.tr)
	if err != nil {
		s.tr.Close()
		return err
	}
	s.node = node
	s.ids = newIDGenerator(node.ID(), time.Now())
	s.deadlines = newDeadlines(deadlineTick(s.cfg.RequestTimeout))
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.deadlines.run(node.Done())
	}()
	s.startLeases()
	s.startOps() // maintenance.go
	// As etcd, only a member that starts with data checks it, and before
	// it serves clients (its attributes are published after): the caller
	// stops the server when this fails.
	if s.cfg.InitialCorruptCheck && s.hadData {
		if err := s.initialCorruptCheck(); err != nil { // corrupt.go
			return err
		}
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.publishAttributes()
	}()
	return nil
}

// WaitLeader blocks until the member knows a leader or ctx ends.
func (s *Server) WaitLeader(ctx context.Context) error {
	return s.waitLeader(ctx, nil)
}

// waitLeader is WaitLeader that also gives up when timeout closes (then
// with context.DeadlineExceeded).
func (s *Server) waitLeader(ctx context.Context, timeout <-chan struct{}) error {
	for s.node.Leader() == 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return context.DeadlineExceeded
		case <-s.node.LeaderChanged():
		case <-s.node.Done():
			return raft.ErrStopped
		}
	}
	return nil
}

// Stop stops raft and closes the engines. In-flight requests fail with
// "stopped".
func (s *Server) Stop() {
	s.stopOps() // maintenance.go
	s.stopLeases()
	if s.node != nil {
		s.node.Stop()
	}
	s.bg.Wait()
	if s.tr != nil {
		s.tr.Close()
	}
	s.checkpoints.Wait() // a background checkpoint reads the engine: apply.go
	if s.cfg.Engine == EngineMemory && s.applied.Load() > s.durable.Load() {
		if err := s.checkpoint(s.applied.Load()); err != nil {
			s.lg.Error("final checkpoint of the memory state failed", zap.Error(err))
		}
	}
	s.watch.Close() // after the last Apply: ends every watch stream
	s.store.Close()
	s.closeEngines()
}

func (s *Server) closeEngines() {
	if s.log != nil && s.log != s.eng {
		s.log.Close()
	}
	if s.eng != nil {
		s.eng.Close()
	}
}

// Done is closed when raft stops (Stop, or a fatal error, or removal).
func (s *Server) Done() <-chan struct{} { return s.node.Done() }

// Err is why raft stopped.
func (s *Server) Err() error { return s.node.Err() }

// Store exposes the state machine to the read paths of front ends that
// need it (watch).
func (s *Server) Store() *mvcc.Store { return s.store }

// Node exposes the raft member for cluster and maintenance services.
func (s *Server) Node() *raft.Node { return s.node }

// Config returns the effective configuration.
func (s *Server) Config() Config { return s.cfg }
