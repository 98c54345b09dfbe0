// Package lease implements etcd's leases: the Lessor keeps every lease (its
// granted TTL, checkpointed remaining TTL and attached keys), decides on the
// leader when a lease has expired, and persists lease records next to the
// state so that they commit atomically with it.
//
// # Two sides
//
// The replicated side runs on every member, from the server's apply
// goroutine, in log order: Grant, Revoke and Checkpoint change the lease
// set and write their records through a Writer (the apply batch, so a lease
// and the keys it deletes commit in one engine batch and travel in raft
// snapshots); Attach and Detach (the mvcc.LeaseIndex methods) keep the
// key sets in step with the keyspace. Nothing on this side reads the clock:
// every member ends in the same lease set.
//
// The primary side runs only on the leader ("primary" lessor, as etcd
// calls it). Expiry is local state: Promote gives every lease a deadline of
// now + extend + (checkpointed remaining TTL, or the full TTL); Renew (a
// keep-alive) moves it to now + TTL without going through raft; Demote
// forgets every deadline. Followers keep leases without deadlines and never
// act on them.
//
// # Expiry, rate limit and checkpoints
//
// The loop started by Start wakes every Config.Tick. On the primary it takes
// the leases past their deadline, oldest first, at most Config.RevokeRate per
// second, and asks the Proposer to revoke each through raft; a lease handed
// out is looked at again after Config.RetryInterval if its revoke never
// applied. So a storm of expiries becomes a steady stream of revokes that
// cannot starve client writes.
//
// Every Config.CheckpointInterval the primary also proposes, for each lease
// whose remaining TTL is longer than the interval, a checkpoint of that
// remaining TTL (in batches). Applied checkpoints are persisted; a new
// leader's Promote starts from them instead of the full TTL, so a leader
// change does not reset a long lease. A keep-alive clears a checkpoint (one
// proposal, only when a checkpoint is set), since the lease is full again.
//
// # Recovery
//
// Load replaces the lease set with the persisted records (at start and
// after a raft snapshot restore); the server then re-attaches keys by
// scanning the keyspace for live keys with a lease. Loaded leases have no
// deadline until the next Promote, as in etcd.
//
// # Locking
//
// One mutex guards all state. The Lessor never calls out (the DeleteFunc
// of Revoke, the Proposer) while holding it: mvcc calls Detach during the
// deletes a revoke makes.
package lease
