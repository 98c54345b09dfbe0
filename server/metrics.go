package server

import "time"

// Metrics are callbacks through which the server reports what only it can
// measure; a front end (http/) turns them into Prometheus metrics with
// etcd's names. Every field may be nil. They are called on the raft and
// apply goroutines (and on request goroutines for ProposalFailed), so they
// must be cheap and must never block.
type Metrics struct {
	// LeaderChanged is called when the known leader changes (newLeader is 0
	// when leadership is lost): etcd_server_leader_changes_seen_total.
	LeaderChanged func(oldLeader, newLeader uint64)
	// LogSynced gets the duration of each synced write of the raft log:
	// etcd_disk_wal_fsync_duration_seconds.
	LogSynced func(time.Duration)
	// StateCommitted gets the duration of each committed apply batch:
	// etcd_disk_backend_commit_duration_seconds.
	StateCommitted func(time.Duration)
	// ProposalFailed is called when a proposal fails before it is applied
	// (raft did not take it, it timed out, or the member stopped):
	// etcd_server_proposals_failed_total. Errors of the request itself (a
	// compacted revision, an unknown lease) are not proposal failures.
	ProposalFailed func()
}

func (m *Metrics) leaderHook() func(oldLeader, newLeader, term uint64) {
	if m.LeaderChanged == nil {
		return nil
	}
	return func(oldLeader, newLeader, _ uint64) { m.LeaderChanged(oldLeader, newLeader) }
}

func (m *Metrics) stateCommitted(start time.Time) {
	if m.StateCommitted != nil {
		m.StateCommitted(time.Since(start))
	}
}

func (m *Metrics) proposalFailed() {
	if m.ProposalFailed != nil {
		m.ProposalFailed()
	}
}

// PendingProposals is the number of proposals waiting to be applied on this
// member: etcd_server_proposals_pending.
func (s *Server) PendingProposals() int { return s.waiters.pending() }
