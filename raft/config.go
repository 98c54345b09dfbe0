package raft

import (
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/metastore/metastore/engine"
)

// Package sentinel errors. Callers test them with errors.Is; front ends map
// them to their own codes.
var (
	ErrStopped          = errors.New("raft: stopped")
	ErrNoLeader         = errors.New("raft: no leader")
	ErrNotLeader        = errors.New("raft: not leader")
	ErrLeaderChanged    = errors.New("raft: leader changed")
	ErrProposalDropped  = errors.New("raft: proposal dropped")
	ErrTimeout          = errors.New("raft: request timed out")
	ErrRemoved          = errors.New("raft: member has been removed from the cluster")
	ErrMemberExists     = errors.New("raft: member ID already exists")
	ErrMemberNotFound   = errors.New("raft: member not found")
	ErrMemberRemoved    = errors.New("raft: member ID was removed and cannot be reused")
	ErrPeerURLExists    = errors.New("raft: peer URL already in use by another member")
	ErrNotLearner       = errors.New("raft: member is not a learner")
	ErrLearnerNotReady  = errors.New("raft: learner is not in sync with the leader")
	ErrTooManyLearners  = errors.New("raft: too many learner members in cluster")
	ErrConfChangeFailed = errors.New("raft: configuration change was rejected")
	ErrBadConfig        = errors.New("raft: invalid configuration")
	ErrSnapshotCorrupt  = errors.New("raft: snapshot is corrupt")
	ErrClusterMismatch  = errors.New("raft: message from a different cluster")
)

// Default timings and limits, the same as etcd's.
const (
	DefaultHeartbeatInterval      = 100 * time.Millisecond
	DefaultElectionTimeout        = 1000 * time.Millisecond
	DefaultMaxSizePerMsg          = 1 << 20
	DefaultMaxInflightMsgs        = 512
	DefaultSnapshotCount          = 10000
	DefaultSnapshotCatchUpEntries = 5000
	// learnerReadyPercent is how close (as a fraction of the leader's Match) a
	// learner's Match must be before it may be promoted; etcd uses 0.9.
	learnerReadyPercent = 0.9
	// DefaultMaxLearners is how many learners the membership may hold at
	// once unless Config.MaxLearners says otherwise (etcd's --max-learners
	// default).
	DefaultMaxLearners = 1
)

// ClusterState says whether a member bootstraps a new cluster or joins an
// existing one (etcd's --initial-cluster-state).
type ClusterState string

const (
	ClusterStateNew      ClusterState = "new"
	ClusterStateExisting ClusterState = "existing"
)

// Config configures a Node. Zero durations and counts take the defaults above.
type Config struct {
	// Name is this member's name; it must appear in InitialCluster.
	Name string
	// InitialCluster maps member name to peer URLs (etcd's --initial-cluster).
	// Used only when the log is empty; afterwards membership comes from the log.
	InitialCluster map[string][]string
	// ClusterToken is etcd's --initial-cluster-token; it seeds member and cluster IDs.
	ClusterToken string
	// ClusterState is new (bootstrap from InitialCluster) or existing (join:
	// start with an empty log and wait for the leader to send it).
	ClusterState ClusterState
	// MemberID overrides the derived ID; set it when joining with an ID that an
	// AddMember call returned (members added at runtime get time-salted IDs).
	MemberID uint64
	// ClientURLs are not part of the bootstrap records (see InitialMembers):
	// the member publishes them with UpdateMember once it runs.
	ClientURLs []string

	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration
	MaxSizePerMsg     uint64
	MaxInflightMsgs   int
	// SnapshotCount is how many applied entries trigger a log compaction;
	// SnapshotCatchUpEntries is how many entries stay behind for slow followers.
	SnapshotCount          uint64
	SnapshotCatchUpEntries uint64

	// LogEngine holds the raft log (the engine.RaftLog keyspace). It must be
	// durable (RocksDB) in production; a memory engine is fine for tests.
	LogEngine engine.Engine
	// DataDir holds received snapshot files (DataDir/snap). Required.
	DataDir string
	// Logger; nil means zap.NewNop().
	Logger *zap.Logger
	// OnLeaderChange, if set, is called from the raft goroutine whenever the
	// known leader changes (to 0 when leadership is lost). It must not block.
	OnLeaderChange func(oldLeader, newLeader, term uint64)
	// OnLogSync, if set, is called from the raft goroutine after each synced
	// write of the log with how long it took (see metrics.go). It must not block.
	OnLogSync func(time.Duration)
	// DisablePreVote turns raft's pre-vote off (etcd's --pre-vote=false).
	DisablePreVote bool
	// MaxLearners is how many learners a MemberAdd proposed here may bring
	// the membership to (etcd's --max-learners; 0: DefaultMaxLearners).
	// The limit travels with the proposal, so every member applies the
	// proposer's.
	MaxLearners int
	// ForceNewCluster restarts a member whose cluster lost its quorum as
	// the only member of that cluster (etcd's --force-new-cluster; see
	// forceNewCluster). It does nothing on an empty log.
	ForceNewCluster bool
	// DisableElectionTickAdvance makes a member wait out a whole election
	// timeout before its first election, also when it is its cluster's
	// only voter (etcd's --initial-election-tick-advance=false; see
	// advanceElection).
	DisableElectionTickAdvance bool
}

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.ElectionTimeout == 0 {
		cfg.ElectionTimeout = DefaultElectionTimeout
	}
	if cfg.MaxSizePerMsg == 0 {
		cfg.MaxSizePerMsg = DefaultMaxSizePerMsg
	}
	if cfg.MaxInflightMsgs == 0 {
		cfg.MaxInflightMsgs = DefaultMaxInflightMsgs
	}
	if cfg.SnapshotCount == 0 {
		cfg.SnapshotCount = DefaultSnapshotCount
	}
	if cfg.SnapshotCatchUpEntries == 0 {
		cfg.SnapshotCatchUpEntries = DefaultSnapshotCatchUpEntries
	}
	if cfg.ClusterState == "" {
		cfg.ClusterState = ClusterStateNew
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	switch {
	case cfg.LogEngine == nil:
		return cfg, fmt.Errorf("%w: LogEngine is required", ErrBadConfig)
	case cfg.DataDir == "":
		return cfg, fmt.Errorf("%w: DataDir is required", ErrBadConfig)
	case cfg.ElectionTimeout < 3*cfg.HeartbeatInterval:
		return cfg, fmt.Errorf("%w: election timeout %v must be at least 3x the heartbeat interval %v",
			ErrBadConfig, cfg.ElectionTimeout, cfg.HeartbeatInterval)
	case cfg.ClusterState != ClusterStateNew && cfg.ClusterState != ClusterStateExisting:
		return cfg, fmt.Errorf("%w: initial cluster state %q (want new or existing)", ErrBadConfig, cfg.ClusterState)
	case cfg.SnapshotCatchUpEntries > cfg.SnapshotCount:
		return cfg, fmt.Errorf("%w: snapshot catch-up entries %d exceed snapshot count %d",
			ErrBadConfig, cfg.SnapshotCatchUpEntries, cfg.SnapshotCount)
	}
	if cfg.MemberID == 0 {
		urls, ok := cfg.InitialCluster[cfg.Name]
		if !ok {
			return cfg, fmt.Errorf("%w: member %q is not in the initial cluster", ErrBadConfig, cfg.Name)
		}
		cfg.MemberID = MemberID(urls, cfg.ClusterToken, nil)
	}
	return cfg, nil
}

// electionTicks is the election timeout in heartbeat ticks (raft ticks once
// per heartbeat interval, HeartbeatTick = 1).
func (c *Config) electionTicks() int {
	return int(c.ElectionTimeout / c.HeartbeatInterval)
}

// InitialMembers returns the members InitialCluster describes, with their
// derived IDs, sorted by ID.
func (c *Config) InitialMembers() []*Member {
	ms := make([]*Member, 0, len(c.InitialCluster))
	for name, urls := range c.InitialCluster {
		// NB: no client URLs, not even our own. raft.Bootstrap writes these
		// records locally on every member, unreplicated, so they must be
		// identical everywhere; each member publishes its own client URLs
		// through raft once it runs (UpdateMember; server/publish.go).
		m := &Member{ID: MemberID(urls, c.ClusterToken, nil), Name: name, PeerURLs: sortedCopy(urls)}
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *Member) int { return cmpUint64(a.ID, b.ID) })
	return ms
}

// MemberID derives a member ID the way etcd does: the first 8 bytes of the
// SHA-1 of the sorted peer URLs, the cluster token and, for members added at
// runtime, the time (so a re-added member with the same URLs gets a new ID).
func MemberID(peerURLs []string, token string, now *time.Time) uint64 {
	var b []byte
	for _, u := range sortedCopy(peerURLs) {
		b = append(b, u...)
	}
	b = append(b, token...)
	if now != nil {
		b = append(b, fmt.Sprintf("%d", now.Unix())...)
	}
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}

// ClusterID derives the cluster ID from the initial member IDs as etcd does:
// SHA-1 over the sorted IDs in big-endian.
func ClusterID(memberIDs []uint64) uint64 {
	ids := slices.Clone(memberIDs)
	slices.Sort(ids)
	b := make([]byte, 8*len(ids))
	for i, id := range ids {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// hostOf turns a peer URL ("http://127.0.0.1:2380") into a dial target.
func hostOf(url string) string {
	if i := strings.Index(url, "://"); i >= 0 {
		url = url[i+3:]
	}
	return strings.TrimSuffix(url, "/")
}
