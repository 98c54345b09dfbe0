package server

import (
	"time"

	"go.uber.org/zap"
)

// DefaultWarningRequestDuration is how long a request may take before it is
// logged as slow.
const DefaultWarningRequestDuration = 100 * time.Millisecond

// logSlow logs a request that took longer than the configured threshold,
// with its kind and duration, as etcd's "request took too long" warning.
// Use: defer s.logSlow("put", time.Now()).
func (s *Server) logSlow(kind string, start time.Time) {
	if d := time.Since(start); d > s.cfg.WarningRequestDuration {
		s.lg.Warn("request took too long", zap.String("kind", kind), zap.Duration("took", d),
			zap.Duration("expected-duration", s.cfg.WarningRequestDuration))
	}
}
