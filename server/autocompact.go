package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"

	"github.com/metastore/metastore/mvcc"
)

// Auto-compaction, as etcd's --auto-compaction-mode/-retention. Only the
// leader acts: it proposes an ordinary Compact request, which every member
// applies.
//
//   - periodic: keep `retention` of history. The leader samples the current
//     revision every retention/10 and, once per compaction period (the
//     retention, at most one hour), compacts to the newest sample taken at
//     least `retention` ago. A plain integer retention means hours.
//   - revision: keep the last `retention` revisions: every 5 minutes the
//     leader compacts to current revision - retention.
//
// A new leader starts sampling from scratch, so after a leader change the
// first compaction comes one retention later, as with etcd.

// Auto-compaction modes.
const (
	CompactionPeriodic = "periodic"
	CompactionRevision = "revision"
)

// revisionCheckInterval is etcd's check period in revision mode.
const revisionCheckInterval = 5 * time.Minute

// autoCompaction is the parsed configuration (zero: off).
type autoCompaction struct {
	mode      string
	retention time.Duration // periodic
	revisions int64         // revision
	interval  time.Duration // how often the leader looks
}

// parseAutoCompaction validates the mode and retention as etcd reads them.
func parseAutoCompaction(mode, retention string, interval time.Duration) (autoCompaction, error) {
	var ac autoCompaction
	if retention == "" || retention == "0" {
		return ac, nil
	}
	switch mode {
	case CompactionPeriodic, "":
		ac.mode = CompactionPeriodic
		if h, err := strconv.ParseInt(retention, 10, 64); err == nil {
			ac.retention = time.Duration(h) * time.Hour
		} else {
			d, err := time.ParseDuration(retention)
			if err != nil {
				return ac, fmt.Errorf("%w: --auto-compaction-retention %q: want a duration or a number of hours", ErrBadConfig, retention)
			}
			ac.retention = d
		}
		if ac.retention <= 0 {
			return autoCompaction{}, nil
		}
		ac.interval = ac.retention / 10
	case CompactionRevision:
		n, err := strconv.ParseInt(retention, 10, 64)
		if err != nil || n < 0 {
			return ac, fmt.Errorf("%w: --auto-compaction-retention %q: want a number of revisions", ErrBadConfig, retention)
		}
		if n == 0 {
			return autoCompaction{}, nil
		}
		ac.mode, ac.revisions, ac.interval = CompactionRevision, n, revisionCheckInterval
	default:
		return ac, fmt.Errorf("%w: --auto-compaction-mode %q: want periodic or revision", ErrBadConfig, mode)
	}
	if interval > 0 {
		ac.interval = interval
	}
	ac.interval = max(ac.interval, 10*time.Millisecond)
	return ac, nil
}

func (s *Server) startAutoCompaction() {
	ac, err := parseAutoCompaction(s.cfg.AutoCompactionMode, s.cfg.AutoCompactionRetention, s.cfg.AutoCompactionInterval)
	if err != nil || ac.mode == "" {
		return // New validated the configuration
	}
	s.lg.Info("auto-compaction enabled", zap.String("mode", ac.mode), zap.Duration("retention", ac.retention),
		zap.Int64("revisions", ac.revisions), zap.Duration("interval", ac.interval))
	s.ops.wg.Add(1)
	go s.autoCompactLoop(ac)
}

type revSample struct {
	at  time.Time
	rev int64
}

func (s *Server) autoCompactLoop(ac autoCompaction) {
	defer s.ops.wg.Done()
	t := time.NewTicker(ac.interval)
	defer t.Stop()
	var samples []revSample
	var lastCompact time.Time
	period := min(ac.retention, time.Hour)
	for {
		select {
		case <-s.ops.stopc:
			return
		case <-t.C:
		}
		if s.node.Leader() != s.node.ID() {
			samples, lastCompact = nil, time.Time{}
			continue
		}
		now := time.Now()
		rev := s.store.Rev()
		var target int64
		switch ac.mode {
		case CompactionPeriodic:
			samples = append(samples, revSample{now, rev})
			if lastCompact.IsZero() {
				lastCompact = now // the first compaction comes one period after leadership began
			}
			i := -1
			for j, sm := range samples {
				if now.Sub(sm.at) >= ac.retention {
					i = j
				}
			}
			if i < 0 || now.Sub(lastCompact) < period {
				continue
			}
			target = samples[i].rev
			samples = samples[i:]
		case CompactionRevision:
			target = rev - ac.revisions
		}
		if target <= s.store.CompactRev() || target <= 0 {
			continue
		}
		lastCompact = now
		s.autoCompact(target)
	}
}

func (s *Server) autoCompact(rev int64) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	_, err := s.Compact(ctx, &pb.CompactionRequest{Revision: rev})
	switch {
	case err == nil:
		s.lg.Info("auto-compaction: compacted", zap.Int64("revision", rev))
	case errors.Is(err, mvcc.ErrCompacted):
	default:
		s.lg.Warn("auto-compaction failed", zap.Int64("revision", rev), zap.Error(err))
	}
}
