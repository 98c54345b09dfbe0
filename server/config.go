package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/metastore/metastore/engine/rocksdb"
	"github.com/metastore/metastore/raft"
)

// Engine kinds.
const (
	EngineRocksDB = "rocksdb"
	EngineMemory  = "memory"
)

// ErrBadConfig is wrapped by every configuration error.
var ErrBadConfig = errors.New("server: bad configuration")

// Config configures a member. Zero values take etcd's defaults.
type Config struct {
	Name    string
	DataDir string
	// Engine is "rocksdb" (default) or "memory".
	Engine  string
	RocksDB rocksdb.Config

	// InitialCluster maps member names to peer URLs; ClusterToken and
	// ClusterState ("new" or "existing") as etcd's --initial-cluster-*.
	InitialCluster map[string][]string
	ClusterToken   string
	ClusterState   string
	// MemberID is set when joining with the id MemberAdd returned.
	MemberID   uint64
	ClientURLs []string

	HeartbeatInterval      time.Duration
	ElectionTimeout        time.Duration
	SnapshotCount          uint64
	SnapshotCatchUpEntries uint64

	MaxRequestBytes int
	MaxTxnOps       int
	// MaxPendingProposals bounds the proposals waiting to be applied; past
	// it, requests fail at once with "too many requests".
	MaxPendingProposals int
	// MaxApplyLag is how far (in log entries) apply may trail commit before
	// new requests fail at once with "too many requests", as etcd's
	// maxGapBetweenApplyAndCommitIndex (5,000) does: memory stays bounded
	// when apply cannot keep up, instead of queueing without limit.
	MaxApplyLag int
	// PriorityRequests lets a LeaseRevoke in while apply trails commit by
	// up to twice MaxApplyLag (etcd's PriorityRequest feature gate).
	PriorityRequests bool
	// WarningRequestDuration: KV requests slower than this are logged with
	// their kind and duration (default 100 ms).
	WarningRequestDuration time.Duration
	// WarningApplyDuration: requests whose apply takes longer are logged
	// (etcd's --warning-apply-duration; 0: 100 ms).
	WarningApplyDuration time.Duration
	// MaxConcurrentStreams bounds the gRPC streams per client connection
	// (etcd's --max-concurrent-streams); MaxWatchersPerStream the watchers
	// per watch stream (0: no limit).
	MaxConcurrentStreams uint32
	MaxWatchersPerStream int
	// WatchBatchDelay is how long a watch stream (gRPC, or the JSON
	// gateway's) that just sent 64 responses or more waits before sending
	// again, so that what commits meanwhile goes out as one response per
	// watcher (0: never waits).
	WatchBatchDelay time.Duration
	// RequestTimeout bounds how long a request waits when its context has
	// no deadline (etcd: 5 s plus twice the election timeout).
	RequestTimeout time.Duration
	// UnsafeNoFsync turns off fsync of the raft log. For tests only.
	UnsafeNoFsync bool
	// NoStrictReconfigCheck turns off etcd's strict reconfiguration check
	// (--strict-reconfig-check=false): membership changes that would leave
	// too few started or connected voters for a quorum are then accepted
	// (cluster.go).
	NoStrictReconfigCheck bool
	// DisablePreVote turns raft's pre-vote off (--pre-vote=false).
	DisablePreVote bool
	// ExtensiveMetrics adds gRPC latency histograms to /metrics (etcd's
	// --metrics extensive).
	ExtensiveMetrics bool
	// MaxLearners is how many learners MemberAdd may bring the membership
	// to (--max-learners; 0: 1, etcd's default).
	MaxLearners int
	// ForceNewCluster restarts a member of a cluster that lost its quorum
	// as that cluster's only member, with its data (--force-new-cluster).
	ForceNewCluster bool
	// DisableElectionTickAdvance makes a one-member cluster wait out an
	// election timeout before it leads (--initial-election-tick-advance=false).
	DisableElectionTickAdvance bool
	// GRPCKeepAliveMinTime, GRPCKeepAliveInterval and GRPCKeepAliveTimeout
	// are etcd's gRPC keep-alive policy for client connections (the
	// shortest ping interval a client may use; how often a quiet
	// connection is pinged; how long an answer is awaited); 0 takes etcd's
	// defaults (5 s, 2 h, 20 s).
	GRPCKeepAliveMinTime, GRPCKeepAliveInterval, GRPCKeepAliveTimeout time.Duration
	// LeaseCheckpointInterval is how often the leader checkpoints remaining
	// lease TTLs (0: 5 minutes; negative: never). LeaseRevokeRate bounds the
	// expired leases revoked per second (0: 1000). See lease/.
	LeaseCheckpointInterval time.Duration
	LeaseRevokeRate         int
	// QuotaBackendBytes is the space quota (0: DefaultQuotaBackendBytes;
	// negative: none); see quota.go.
	QuotaBackendBytes int64
	// DiskFreeMinBytes is the free space the data directory's filesystem
	// must keep: below it writes are refused as over the quota (0:
	// DefaultDiskFreeMinBytes; negative: no check); see quota.go.
	DiskFreeMinBytes int64
	// freeSpace reads the free bytes of the filesystem holding a directory
	// (statfsFree; tests replace it).
	freeSpace func(dir string) (int64, error)
	// AutoCompactionMode is "periodic" or "revision" and
	// AutoCompactionRetention its retention as etcd's flags ("" or "0":
	// off); AutoCompactionInterval overrides how often the leader checks
	// (0: etcd's). See autocompact.go.
	AutoCompactionMode      string
	AutoCompactionRetention string
	AutoCompactionInterval  time.Duration
	// CorruptCheckTime is how often the leader compares its HashKV with the
	// other members' (0: never); a mismatch raises a CORRUPT alarm.
	CorruptCheckTime time.Duration
	// InitialCorruptCheck makes a member that starts with data compare its
	// HashKV with its peers' before it serves, and refuse to start on a
	// mismatch (etcd's InitialCorruptCheck feature gate). See corrupt.go.
	InitialCorruptCheck bool
	// CompactHashCheck makes the leader compare the members' hashes at the
	// newest compaction revision every CompactHashCheckTime (0: a minute)
	// and raise CORRUPT for the members outside the majority (etcd's
	// CompactHashCheck feature gate and --compact-hash-check-time).
	CompactHashCheck     bool
	CompactHashCheckTime time.Duration
	// PeerLocalAddr, an IP address, is the source address of connections
	// to peers (etcd's SetMemberLocalAddr feature gate; "": the system's
	// choice).
	PeerLocalAddr string
	// WatchProgressNotifyInterval is how often watches created with
	// progress_notify hear from a quiet stream (etcd's
	// --watch-progress-notify-interval; 0: 10 minutes). See watch.go.
	WatchProgressNotifyInterval time.Duration
	// Metrics are optional measurement callbacks (metrics.go).
	Metrics Metrics
	// Auth configures tokens and password hashing (auth.go).
	Auth AuthConfig
	// PeerTLS configures the peer transport (etcd's --peer-* TLS flags);
	// zero: plaintext. ClientTLS dials other members' https client URLs
	// (nil: the system roots); see tls.go.
	PeerTLS   raft.TLSInfo
	ClientTLS *tls.Config

	Logger *zap.Logger
}

// Defaults as etcd's.
const (
	DefaultMaxRequestBytes     = 1572864
	DefaultMaxTxnOps           = 128
	DefaultMaxPendingProposals = 5000
	DefaultMaxApplyLag         = 5000
)

func (c Config) withDefaults() (Config, error) {
	if c.freeSpace == nil {
		c.freeSpace = statfsFree
	}
	if c.Engine == "" {
		c.Engine = EngineRocksDB
	}
	if c.Engine != EngineRocksDB && c.Engine != EngineMemory {
		return c, fmt.Errorf("%w: --engine %q (want rocksdb or memory)", ErrBadConfig, c.Engine)
	}
	if c.DataDir == "" {
		return c, fmt.Errorf("%w: --data-dir is required", ErrBadConfig)
	}
	if c.Name == "" {
		c.Name = "default"
	}
	if c.RocksDB == (rocksdb.Config{}) {
		c.RocksDB = rocksdb.DefaultConfig()
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxTxnOps <= 0 {
		c.MaxTxnOps = DefaultMaxTxnOps
	}
	if c.MaxPendingProposals <= 0 {
		c.MaxPendingProposals = DefaultMaxPendingProposals
	}
	if c.MaxApplyLag <= 0 {
		c.MaxApplyLag = DefaultMaxApplyLag
	}
	if c.WarningRequestDuration <= 0 {
		c.WarningRequestDuration = DefaultWarningRequestDuration
	}
	if c.WarningApplyDuration <= 0 {
		c.WarningApplyDuration = DefaultWarningApplyDuration
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = 1000 * time.Millisecond
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 100 * time.Millisecond
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5*time.Second + 2*c.ElectionTimeout
	}
	if c.WatchProgressNotifyInterval <= 0 {
		c.WatchProgressNotifyInterval = DefaultWatchProgressNotifyInterval
	}
	if c.CompactHashCheckTime < 0 {
		return c, fmt.Errorf("server: --compact-hash-check-time must not be negative (got %v)", c.CompactHashCheckTime)
	}
	if c.CompactHashCheckTime == 0 {
		c.CompactHashCheckTime = DefaultCompactHashCheckTime
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if _, err := parseAutoCompaction(c.AutoCompactionMode, c.AutoCompactionRetention, c.AutoCompactionInterval); err != nil {
		return c, err // autocompact.go
	}
	return c, nil
}
