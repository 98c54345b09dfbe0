package server

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/mvcc"
)

// Alarms, as etcd has them:
//
//   - An alarm is (member ID, type): NOSPACE when a member's database passed
//     --quota-backend-bytes, CORRUPT when the periodic hash check found a
//     member whose data differs from the leader's.
//   - Activation and deactivation are raft requests (InternalRaftRequest's
//     Alarm), applied on every member into the same batch as the state: the
//     alarm records live in the Meta keyspace, so they survive restarts and
//     travel in raft snapshots.
//   - While any NOSPACE alarm is active the apply path refuses Put, a Txn
//     with a put and LeaseGrant with ErrNoSpace (reads, deletes, compaction
//     and revokes still work, so an operator can free space); while any
//     CORRUPT alarm is active it refuses every write with ErrCorrupt. The
//     decision is made at apply time from replicated state, so every member
//     decides alike.

// Errors of the alarm machinery (grpc/ maps them to etcd's).
var (
	ErrNoSpace = errors.New("server: mvcc: database space exceeded")
	ErrCorrupt = errors.New("server: corrupt cluster")
	// ErrBadAlarm is an ACTIVATE of an alarm type other than NOSPACE and
	// CORRUPT.
	ErrBadAlarm = errors.New("server: only NOSPACE and CORRUPT alarms can be activated")
)

// alarmPrefix keys the alarm records in the Meta keyspace:
// prefix + member ID (8 bytes) + alarm type (4 bytes), empty value.
var alarmPrefix = []byte("server/alarm/")

// opsState is the server's operational state: alarms, quota, downgrade,
// auto-compaction and the corruption check (alarm.go, quota.go,
// maintenance.go, autocompact.go).
type opsState struct {
	// mu guards the alarm set. It is written only by the apply goroutine.
	mu struct {
		sync.Mutex
		alarms map[alarmKey]struct{}
	}
	// nospace and corrupt say whether any alarm of that type is active;
	// the apply path and the quota check read them on every request.
	nospace atomic.Bool
	corrupt atomic.Bool
	// raising is set while this member's NOSPACE activation is in flight,
	// so that a burst of refused writes proposes it once.
	raising atomic.Bool
	// size caches the engine's DiskSize (quota.go).
	size atomic.Int64
	// diskFree caches the free bytes of the data directory's filesystem
	// (-1 until sampled or when it cannot be read; quota.go).
	diskFree atomic.Int64
	// lowDisk is set while diskFree is under the minimum, so that the
	// warning is logged once per episode.
	lowDisk atomic.Bool
	// downgrade is the replicated downgrade target ("" when none).
	downgrade atomic.Pointer[string]

	stopc chan struct{}
	wg    sync.WaitGroup
}

type alarmKey struct {
	member uint64
	typ    pb.AlarmType
}

func alarmRecordKey(k alarmKey) []byte {
	b := append([]byte(nil), alarmPrefix...)
	b = binary.BigEndian.AppendUint64(b, k.member)
	return binary.BigEndian.AppendUint32(b, uint32(k.typ))
}

// loadOps (re)reads the replicated operational state from the engine: at
// New and after a snapshot restore.
func (s *Server) loadOps() error {
	it := s.eng.NewIterator(engine.Meta, engine.IterOptions{Lower: alarmPrefix, Upper: prefixEnd(alarmPrefix)})
	defer it.Close()
	alarms := map[alarmKey]struct{}{}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()[len(alarmPrefix):]
		if len(k) != 12 {
			return errors.New("server: malformed alarm record")
		}
		alarms[alarmKey{binary.BigEndian.Uint64(k), pb.AlarmType(binary.BigEndian.Uint32(k[8:]))}] = struct{}{}
	}
	if err := it.Err(); err != nil {
		return err
	}
	s.ops.mu.Lock()
	s.ops.mu.alarms = alarms
	s.refreshAlarmFlagsLocked()
	s.ops.mu.Unlock()
	return s.loadDowngrade()
}

func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	end[len(end)-1]++
	return end
}

// REQUIRES: s.ops.mu held.
func (s *Server) refreshAlarmFlagsLocked() {
	var nospace, corrupt bool
	for k := range s.ops.mu.alarms {
		switch k.typ {
		case pb.AlarmType_NOSPACE:
			nospace = true
		case pb.AlarmType_CORRUPT:
			corrupt = true
		}
	}
	s.ops.nospace.Store(nospace)
	s.ops.corrupt.Store(corrupt)
}

// Alarms lists the active alarms of type typ (NONE: all), sorted by member
// then type.
func (s *Server) Alarms(typ pb.AlarmType) []*pb.AlarmMember {
	s.ops.mu.Lock()
	defer s.ops.mu.Unlock()
	out := make([]*pb.AlarmMember, 0, len(s.ops.mu.alarms))
	for k := range s.ops.mu.alarms {
		if typ == pb.AlarmType_NONE || k.typ == typ {
			out = append(out, &pb.AlarmMember{MemberID: k.member, Alarm: k.typ})
		}
	}
	slices.SortFunc(out, func(a, b *pb.AlarmMember) int {
		if a.MemberID != b.MemberID {
			if a.MemberID < b.MemberID {
				return -1
			}
			return 1
		}
		return int(a.Alarm) - int(b.Alarm)
	})
	return out
}

// Alarm gets, activates or deactivates alarms with etcd's semantics. GET is
// answered locally at a linearizable point; the others go through raft.
func (s *Server) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	switch {
	case r.Action != pb.AlarmRequest_GET && r.Action != pb.AlarmRequest_ACTIVATE && r.Action != pb.AlarmRequest_DEACTIVATE:
		return nil, ErrUnknownMethod
	case r.Action == pb.AlarmRequest_ACTIVATE && r.Alarm != pb.AlarmType_NOSPACE && r.Alarm != pb.AlarmType_CORRUPT:
		// etcd stops the member on such a request; it is refused here
		// before anything is stored.
		return nil, ErrBadAlarm
	}
	var out *pb.AlarmResponse
	if r.Action == pb.AlarmRequest_GET {
		if err := s.linearizableBarrier(ctx); err != nil {
			return nil, err
		}
		out = &pb.AlarmResponse{Alarms: s.Alarms(r.Alarm)}
	} else {
		resp, err := s.propose(ctx, &pb.InternalRaftRequest{Alarm: r})
		if err != nil {
			return nil, err
		}
		out = resp.(*pb.AlarmResponse)
	}
	out.Header = &pb.ResponseHeader{Revision: s.store.Rev()}
	s.fillHeader(out.Header)
	return out, nil
}

// applyOps is the apply path's gate: it applies the operational requests
// (alarms, downgrade) and refuses writes while an alarm says so; everything
// else goes to applyRequest.
func (s *Server) applyOps(a *mvcc.Apply, r *pb.InternalRaftRequest) (any, error) {
	switch {
	case r.Alarm != nil:
		return s.applyAlarm(a, r.Alarm), nil
	case r.DowngradeInfoSet != nil:
		return s.applyDowngrade(a, r.DowngradeInfoSet), nil
	}
	if s.ops.corrupt.Load() && (r.Put != nil || r.DeleteRange != nil || r.Txn != nil || r.Compaction != nil ||
		r.LeaseGrant != nil || r.LeaseRevoke != nil) {
		return nil, ErrCorrupt
	}
	if s.ops.nospace.Load() && (r.Put != nil || (r.Txn != nil && txnPutBytes(r.Txn) > 0) || r.LeaseGrant != nil) {
		return nil, ErrNoSpace
	}
	return applyRequest(a, s.leases.lessor, r)
}

// applyAlarm applies an alarm request on every member, as etcd's applier:
// ACTIVATE answers the alarm (also when it was already active), DEACTIVATE
// answers the alarm removed (nothing when it was not active).
func (s *Server) applyAlarm(a *mvcc.Apply, r *pb.AlarmRequest) *pb.AlarmResponse {
	resp := &pb.AlarmResponse{}
	if r.Action == pb.AlarmRequest_GET {
		resp.Alarms = s.Alarms(r.Alarm)
		return resp
	}
	k := alarmKey{r.MemberID, r.Alarm}
	s.ops.mu.Lock()
	defer s.ops.mu.Unlock()
	switch r.Action {
	case pb.AlarmRequest_ACTIVATE:
		if r.Alarm == pb.AlarmType_NONE {
			break
		}
		if _, ok := s.ops.mu.alarms[k]; !ok {
			s.ops.mu.alarms[k] = struct{}{}
			a.Batch().Put(engine.Meta, alarmRecordKey(k), nil)
			s.lg.Warn("alarm raised", zap.String("member", idString(k.member)), zap.String("alarm", k.typ.String()))
		}
		resp.Alarms = append(resp.Alarms, &pb.AlarmMember{MemberID: k.member, Alarm: k.typ})
	case pb.AlarmRequest_DEACTIVATE:
		if _, ok := s.ops.mu.alarms[k]; !ok {
			break
		}
		delete(s.ops.mu.alarms, k)
		a.Batch().Delete(engine.Meta, alarmRecordKey(k))
		s.lg.Info("alarm cleared", zap.String("member", idString(k.member)), zap.String("alarm", k.typ.String()))
		resp.Alarms = append(resp.Alarms, &pb.AlarmMember{MemberID: k.member, Alarm: k.typ})
	}
	s.refreshAlarmFlagsLocked()
	if k.member == s.node.ID() && k.typ == pb.AlarmType_NOSPACE {
		s.ops.raising.Store(false)
	}
	return resp
}

// raiseAlarm proposes an alarm activation in the background (the caller is
// a request that is being refused; it must not wait for the alarm).
func (s *Server) raiseAlarm(member uint64, typ pb.AlarmType) {
	if typ == pb.AlarmType_NOSPACE && member == s.node.ID() && !s.ops.raising.CompareAndSwap(false, true) {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		defer cancel()
		_, err := s.propose(ctx, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{
			Action: pb.AlarmRequest_ACTIVATE, MemberID: member, Alarm: typ}})
		if err != nil {
			if typ == pb.AlarmType_NOSPACE && member == s.node.ID() {
				s.ops.raising.Store(false)
			}
			s.lg.Warn("raising alarm failed", zap.String("alarm", typ.String()), zap.Error(err))
		}
	}()
}

func idString(id uint64) string { return strconv.FormatUint(id, 16) }
