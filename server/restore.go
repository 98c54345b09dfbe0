package server

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/engine"
)

// Backup files (metastore snapshot save, etcdctl snapshot save against a
// MetaStore member) are the state snapshot stream of snapshot.go followed by
// the SHA-256 of that stream (32 bytes), as etcd appends one to its bolt
// file. The stream carries its own record count and CRC-32C as well.

// ErrBadSnapshotFile is wrapped by every failure to read a backup file.
var ErrBadSnapshotFile = errors.New("server: not a valid snapshot file")

// SnapshotInfo describes a backup file.
type SnapshotInfo struct {
	// Hash is the HashKV of the state at Revision, comparable with a live
	// member's HashKV at the same revision.
	Hash           uint32
	Revision       int64
	CompactRev     int64
	TotalKeys      int64 // live keys at Revision
	TotalSize      int64 // bytes of the file
	RaftIndex      uint64
	SHA256Verified bool
}

// verifySnapshotFile checks the trailing SHA-256 and returns the file,
// positioned at the start, and the length of the stream before the digest.
func verifySnapshotFile(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	n := st.Size() - sha256.Size
	if n < int64(len(snapMagic)) {
		f.Close()
		return nil, 0, fmt.Errorf("%w: %s is too short (%d bytes)", ErrBadSnapshotFile, path, st.Size())
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, n)); err != nil {
		f.Close()
		return nil, 0, err
	}
	want := make([]byte, sha256.Size)
	if _, err := f.ReadAt(want, n); err != nil {
		f.Close()
		return nil, 0, err
	}
	if !bytes.Equal(h.Sum(nil), want) {
		f.Close()
		return nil, 0, fmt.Errorf("%w: %s: SHA-256 mismatch (truncated or damaged)", ErrBadSnapshotFile, path)
	}
	return f, n, nil
}

// VerifySnapshotFile checks a backup file's trailing SHA-256.
func VerifySnapshotFile(path string) error {
	f, _, err := verifySnapshotFile(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// RestoreDataDir writes the state held in the backup file at path into
// cfg.DataDir, which must not exist or be empty, for cfg.Engine. It keeps
// the keys, revisions and leases and drops what belonged to the old cluster
// (the applied raft index, the alarms): a member started on the directory
// with ClusterState "new" bootstraps a new cluster, with cfg's initial
// cluster, holding that state. Restore every member of the new cluster from
// the same file. On failure the data directory is removed.
func RestoreDataDir(cfg Config, path string) error {
	if err := checkFreshDataDir(cfg); err != nil {
		return err
	}
	f, n, err := verifySnapshotFile(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return initDataDir(cfg, func(s *Server) error {
		if err := (applier{s}).Restore(io.NewSectionReader(f, 0, n)); err != nil {
			return fmt.Errorf("%w: %v", ErrBadSnapshotFile, err)
		}
		return nil
	})
}

// ImportDataDir writes a fresh data directory, as RestoreDataDir does, from
// state that fill writes into the member's (empty) engine: the keyspace
// through mvcc.Importer, leases through lease.ImportRecord (migrate/ fills
// it from an etcd snapshot). A member started on the directory with
// ClusterState "new" bootstraps a new cluster holding that state. On
// failure the data directory is removed.
func ImportDataDir(cfg Config, fill func(eng engine.Engine) error) error {
	if err := checkFreshDataDir(cfg); err != nil {
		return err
	}
	return initDataDir(cfg, func(s *Server) error {
		if err := fill(s.eng); err != nil {
			return err
		}
		if err := s.store.Reload(); err != nil {
			return err
		}
		return s.loadLeases()
	})
}

func checkFreshDataDir(cfg Config) error {
	if cfg.DataDir == "" {
		return fmt.Errorf("%w: --data-dir is required", ErrBadConfig)
	}
	if ents, err := os.ReadDir(cfg.DataDir); err == nil && len(ents) > 0 {
		return fmt.Errorf("server: data-dir %q exists and is not empty", cfg.DataDir)
	}
	return nil
}

// initDataDir creates cfg.DataDir with the member's engines, lets fill write
// the state, and leaves nothing of a cluster behind (no applied index, no
// alarms), so that the next start bootstraps raft from cfg's initial
// cluster. The memory engine's state is checkpointed into the directory.
func initDataDir(cfg Config, fill func(s *Server) error) (err error) {
	if err := checkFreshDataDir(cfg); err != nil {
		return err
	}
	s, err := New(cfg)
	if err != nil {
		return err
	}
	defer func() {
		s.store.Close()
		s.closeEngines()
		if err != nil {
			os.RemoveAll(cfg.DataDir)
		}
	}()
	if err := fill(s); err != nil {
		return err
	}
	b := s.eng.NewBatch()
	defer b.Close()
	b.Delete(engine.Meta, metaAppliedIndex)
	b.DeleteRange(engine.Meta, alarmPrefix, prefixEnd(alarmPrefix))
	if err := b.Commit(true); err != nil {
		return err
	}
	s.applied.Store(0)
	if s.cfg.Engine == EngineMemory {
		return s.checkpoint(0)
	}
	return nil
}

// ReadSnapshotInfo verifies a backup file and describes its state. It loads
// the state into a memory engine under tmpDir (which it removes).
func ReadSnapshotInfo(path, tmpDir string) (SnapshotInfo, error) {
	f, n, err := verifySnapshotFile(path)
	if err != nil {
		return SnapshotInfo{}, err
	}
	defer f.Close()
	dir, err := os.MkdirTemp(tmpDir, "metastore-snapshot-status")
	if err != nil {
		return SnapshotInfo{}, err
	}
	defer os.RemoveAll(dir)
	s, err := New(Config{DataDir: dir, Engine: EngineMemory, UnsafeNoFsync: true})
	if err != nil {
		return SnapshotInfo{}, err
	}
	defer func() {
		s.store.Close()
		s.closeEngines()
	}()
	s.checkpointEvery = ^uint64(0) >> 1
	if err := (applier{s}).Restore(io.NewSectionReader(f, 0, n)); err != nil {
		return SnapshotInfo{}, fmt.Errorf("%w: %v", ErrBadSnapshotFile, err)
	}
	info := SnapshotInfo{TotalSize: n + sha256.Size, SHA256Verified: true, RaftIndex: s.applied.Load()}
	info.Hash, info.Revision, info.CompactRev, err = s.store.HashKV(0)
	if err != nil {
		return SnapshotInfo{}, err
	}
	r, err := s.store.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, CountOnly: true})
	if err != nil {
		return SnapshotInfo{}, err
	}
	info.TotalKeys = r.Count
	return info, nil
}
