package raft

// Hooks for metrics. The raft package exports no metrics itself (it imports
// no metrics library); front ends read these and Config.OnLeaderChange and
// Config.OnLogSync, and turn them into etcd's metric names:
//
//	etcd_server_proposals_committed_total  CommitIndex
//	etcd_server_proposals_applied_total    AppliedIndex
//	etcd_server_leader_changes_seen_total  Config.OnLeaderChange
//	etcd_disk_wal_fsync_duration_seconds   Config.OnLogSync

// CommitIndex is the highest log index known to be committed, as of the last
// Ready the raft goroutine handled. Lock-free.
func (n *Node) CommitIndex() uint64 { return n.commit.Load() }
