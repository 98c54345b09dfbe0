// Package raft is MetaStore's consensus layer: a raft member built on
// go.etcd.io/raft/v3, its log storage over an engine.Engine, membership, and
// the gRPC peer transport. It hands committed entries to an Applier that it
// defines and server/ implements; it never imports server/, mvcc/ or the
// front ends.
//
// # Usage
//
//	tr := raft.NewTransport(lg)
//	tr.Serve(peerListener)
//	n, err := raft.Start(raft.Config{Name: "m1", InitialCluster: ..., ClusterToken: ...,
//		LogEngine: logDB, DataDir: dir, Logger: lg}, applier, tr)
//	err = n.Propose(ctx, data)      // returns once raft took it; wait for Apply by request id
//	err = n.ProposeAsync(data, done) // queues it; done(err) says whether raft took it
//	idx, err := n.ReadIndex(ctx)    // linearizable read point, batched
//	err = n.WaitApplied(ctx, idx)   // then read local state
//	n.Stop(); tr.Close()
//
// # Goroutines and the Ready loop
//
// One goroutine (run) owns the raft.RawNode. Every API call reaches it over a
// channel, except proposals: they wait in a mutex-guarded queue, and the
// first one queued wakes the goroutine (propSig), which steps the whole
// queue into raft as one MsgProp and answers each proposer through its done
// callback. A proposer that waits for its apply anyway (server/ does, by
// request id) thus costs no extra hand-off. Everything else comes as a
// closure on actc. Each loop iteration first drains everything queued — so
// every proposal that arrived while the previous fsync was running rides in
// the next Ready — then handles one Ready in this order:
//
//  1. Send the messages that do not depend on this Ready's persistence.
//     These are all messages except MsgAppResp, MsgVoteResp and
//     MsgPreVoteResp: exactly the split raft makes internally between msgs
//     and msgsAfterAppend (with AsyncStorageWrites those go out without
//     waiting for storage). In particular the leader's MsgApp leaves before
//     its own fsync (Raft thesis §10.2.1): the leader's self-acknowledgement
//     is only counted at Advance, after the write.
//  2. Apply the committed conf changes to raft (ApplyConfChange) and to the
//     membership, so that the new ConfState is persisted in step 3's batch.
//  3. Persist HardState, entries (truncating a conflicting suffix), the
//     snapshot metadata and the membership as ONE engine batch, committed
//     with sync (Ready.MustSync, or whenever entries, a snapshot or
//     membership are in it): group commit, one fsync per Ready.
//  4. Send the remaining messages (acknowledgements of what is now durable).
//  5. Hand CommittedEntries, as one slice, to the apply goroutine.
//  6. Resolve ReadStates, Advance, and compact the log if due.
//
// The apply goroutine calls Applier.Apply in log order and answers conf
// change proposers. Entries at or below the Applier's applied index (replay
// after a restart or after restoring a snapshot whose state is newer than its
// raft index) are skipped.
//
// # Log storage
//
// logStore implements raft.Storage over the engine.RaftLog keyspace (layout
// in logstore.go): entries under 'e'+8-byte big-endian index, HardState,
// snapshot metadata, membership and a restore marker under fixed keys. The
// recent tail (up to 8192 entries / 64 MiB) is cached so raft's Term and
// Entries calls rarely read the engine. After SnapshotCount applied entries
// the log is compacted with one DeleteRange, keeping SnapshotCatchUpEntries
// for slow followers and never passing Applier.DurableIndex (a memory-engine
// state machine checkpoints periodically and replays the log from its
// checkpoint after a crash).
//
// A raft "snapshot" here is only metadata (index, term, ConfState) of the
// compaction point. The state itself is streamed from the Applier when raft
// sends MsgSnap; the stream carries its own applied index, which may be past
// the snapshot's raft index, and the receiver skips the entries it already
// has.
//
// # Restart
//
// raft restarts with Applied = min(Applier.AppliedIndex(), commit): the log
// is replayed from there. Conf changes at or below the stored membership
// record's index are already in the stored ConfState and are not re-applied to
// raft; since a conf change is persisted in the same batch as, or before,
// any entry after it reaches the Applier, the Applier can never be ahead of
// an unpersisted conf change.
//
// # Membership
//
// Member IDs are derived as etcd does (SHA-1 of sorted peer URLs + cluster
// token, plus the time for members added at runtime); the cluster ID from the
// sorted initial member IDs. Membership (ID, name, peer and client URLs,
// learner flag, removed IDs) lives in the raft log keyspace ("m/conf") as a
// short history of records since the last compaction, so that a snapshot at
// any index carries the membership valid at that index. Conf changes are
// ConfChangeV2 with a JSON context (the member record and the proposer's
// request id). Every member validates a change against the replicated
// membership at apply time and cancels invalid ones identically (raft sees a
// NodeId-0 no-op; the Applier sees an empty entry). At most Config.MaxLearners
// learners may exist at once. Promoting a learner is
// refused unless its Match is within 90% of the leader's (etcd's rule). The
// bootstrap records hold names and peer URLs only (they are written locally on
// every member, so they must be identical); once running, a member publishes
// its name and client URLs with UpdateMember, as etcd publishes its
// attributes. A
// member that applies its own removal — or whose peer refuses it as removed —
// logs "this member has been removed from the cluster; stopping" and stops
// (Err returns ErrRemoved).
//
// # Transport and snapshots
//
// Transport is a hand-written gRPC service (raw byte frames, no protoc): one
// client stream per peer pair and direction carries batches of marshalled
// raftpb.Messages; a full queue or a broken stream drops messages and reports
// the peer unreachable; streams reopen with exponential backoff (50 ms to
// 1 s). Streams carry the sender's ID, cluster ID and peer URLs, so a
// receiver refuses other clusters and removed members and learns a joining
// member's address. SetDropFilter lets tests partition members.
//
// A snapshot goes on its own stream: a header (the MsgSnap and the membership
// at its index), the Applier's WriteSnapshot output in 1 MiB chunks each with
// a CRC-32C, and an end frame with the total length and CRC-32C. The
// receiver verifies every chunk as it arrives (a corrupt one aborts the
// transfer with ErrSnapshotCorrupt; nothing is applied), saves the frames to
// DataDir/snap/<term>-<index>.snap (fsynced, renamed into place) and only
// then steps the MsgSnap into raft. When raft accepts it, the Ready's batch
// replaces the log and stores a restore marker; the apply goroutine restores
// the Applier from the file (re-verifying every chunk), then deletes marker
// and file. If the process dies in between, Start finds the marker and, if
// the Applier's applied index is still below the snapshot's, redoes the
// restore from the saved file before raft starts.
package raft
