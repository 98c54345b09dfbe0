package http

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/metastore/metastore/server"
)

// Metrics are the member's Prometheus metrics: etcd's names where etcd has
// the metric (so etcd's dashboards and alerts work), metastore_* for the
// rest. The server reports through the callbacks of ServerHooks; gauges are
// read from the attached server at scrape time.
type Metrics struct {
	srv atomic.Pointer[server.Server]

	leaderChanges   prometheus.Counter
	proposalsFailed prometheus.Counter
	walFsync        prometheus.Histogram
	backendCommit   prometheus.Histogram
	http            *httpMetrics
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "server", Name: "leader_changes_seen_total",
			Help: "The number of leader changes seen.",
		}),
		proposalsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd", Subsystem: "server", Name: "proposals_failed_total",
			Help: "The total number of failed proposals seen.",
		}),
		// etcd's buckets: 1 ms to 8 s.
		walFsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "disk", Name: "wal_fsync_duration_seconds",
			Help:    "The latency distributions of fsync called by WAL (MetaStore: the synced raft log batch).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		backendCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "etcd", Subsystem: "disk", Name: "backend_commit_duration_seconds",
			Help:    "The latency distributions of commit called by backend (MetaStore: one apply batch).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		http: newHTTPMetrics(),
	}
	gauge := func(sub, name, help string, f func(s *server.Server) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: sub, Name: name, Help: help},
			func() float64 {
				if s := m.srv.Load(); s != nil && s.Node() != nil {
					return f(s)
				}
				return 0
			})
	}
	cs := []prometheus.Collector{
		m.leaderChanges, m.proposalsFailed, m.walFsync, m.backendCommit, m.http,
		gauge("server", "has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.", func(s *server.Server) float64 {
			return b2f(s.Node().Leader() != 0)
		}),
		gauge("server", "is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.", func(s *server.Server) float64 {
			return b2f(s.Node().Leader() == s.Node().ID())
		}),
		gauge("server", "proposals_committed_total", "The total number of consensus proposals committed.", func(s *server.Server) float64 {
			return float64(s.Node().CommitIndex())
		}),
		gauge("server", "proposals_applied_total", "The total number of consensus proposals applied.", func(s *server.Server) float64 {
			return float64(s.Node().AppliedIndex())
		}),
		gauge("server", "proposals_pending", "The current number of pending proposals to commit.", func(s *server.Server) float64 {
			return float64(s.PendingProposals())
		}),
		gauge("mvcc", "db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.", func(s *server.Server) float64 {
			return float64(s.DBSize())
		}),
		gauge("mvcc", "db_total_size_in_use_in_bytes", "Total size of the underlying database logically in use in bytes.", func(s *server.Server) float64 {
			return float64(s.DBSizeInUse())
		}),
		gauge("server", "quota_backend_bytes", "Current backend storage quota size in bytes.", func(s *server.Server) float64 {
			return float64(s.QuotaBytes())
		}),
	}
	cs = append(cs, engineMemoryCollector{m: m}, activePeersCollector{m: m})
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// ServerHooks returns the callbacks to set as server.Config.Metrics.
func (m *Metrics) ServerHooks() server.Metrics {
	return server.Metrics{
		LeaderChanged:  func(_, _ uint64) { m.leaderChanges.Inc() },
		LogSynced:      func(d time.Duration) { m.walFsync.Observe(d.Seconds()) },
		StateCommitted: func(d time.Duration) { m.backendCommit.Observe(d.Seconds()) },
		ProposalFailed: m.proposalsFailed.Inc,
	}
}

// Attach makes the gauges read s (once it has started).
func (m *Metrics) Attach(s *server.Server) { m.srv.Store(s) }

// httpMetrics counts requests per route and status code without allocating
// on the request path: counters are atomics in a fixed table, turned into
// metastore_http_requests_total samples at scrape time, and the latency
// histograms are resolved per route up front.
type httpMetrics struct {
	counts    [][len(trackedCodes) + 1]atomic.Uint64
	durations []prometheus.Observer
	durVec    *prometheus.HistogramVec
	desc      *prometheus.Desc
}

// trackedCodes are the statuses the front end answers; any other is
// counted under "other".
var trackedCodes = [...]int{200, 400, 401, 403, 404, 405, 408, 409, 412, 413, 429, 499, 500, 501, 503, 504}

func codeIndex(code int) int {
	for i, c := range trackedCodes {
		if c == code {
			return i
		}
	}
	return len(trackedCodes)
}

func newHTTPMetrics() *httpMetrics {
	m := &httpMetrics{
		counts: make([][len(trackedCodes) + 1]atomic.Uint64, len(allRoutes)),
		durVec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "metastore", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"route"}),
		desc: prometheus.NewDesc("metastore_http_requests_total",
			"HTTP requests served, by route and status code.", []string{"route", "code"}, nil),
	}
	for _, r := range allRoutes {
		m.durations = append(m.durations, m.durVec.WithLabelValues(r.name))
	}
	return m
}

func (m *httpMetrics) observe(route, code int, d time.Duration) {
	m.counts[route][codeIndex(code)].Add(1)
	m.durations[route].Observe(d.Seconds())
}

func (m *httpMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.desc
	m.durVec.Describe(ch)
}

func (m *httpMetrics) Collect(ch chan<- prometheus.Metric) {
	for ri := range m.counts {
		for ci := range m.counts[ri] {
			n := m.counts[ri][ci].Load()
			if n == 0 {
				continue
			}
			code := "other"
			if ci < len(trackedCodes) {
				code = strconv.Itoa(trackedCodes[ci])
			}
			ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(n), allRoutes[ri].name, code)
		}
	}
	m.durVec.Collect(ch)
}

// metricsHandler serves g in Prometheus' text format (or OpenMetrics when
// the scraper asks). Scrapes are rare: net/http's handler through the
// adaptor is fine here.
func metricsHandler(g prometheus.Gatherer) fasthttp.RequestHandler {
	return fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
}

// engineMemoryDesc is metastore_engine_memory_bytes{kind}.
var engineMemoryDesc = prometheus.NewDesc("metastore_engine_memory_bytes",
	"Memory the storage engine (RocksDB) holds outside the Go heap, by kind.", []string{"kind"}, nil)

// engineMemoryKinds are the kinds always reported (0 for an engine without them).
var engineMemoryKinds = []string{"memtables", "block_cache", "block_cache_pinned", "table_readers"}

// engineMemoryCollector reads the engine's memory once per scrape for
// every kind (each read is a few cgo calls per column family).
type engineMemoryCollector struct{ m *Metrics }

func (c engineMemoryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- engineMemoryDesc }

func (c engineMemoryCollector) Collect(ch chan<- prometheus.Metric) {
	var mem map[string]uint64
	if s := c.m.srv.Load(); s != nil {
		mem = s.EngineMemory()
	}
	for _, kind := range engineMemoryKinds {
		ch <- prometheus.MustNewConstMetric(engineMemoryDesc, prometheus.GaugeValue, float64(mem[kind]), kind)
	}
}

// activePeersDesc is etcd's etcd_network_active_peers{Local,Remote}: 1 for
// each other member this member hears from now, 0 for the others (members
// in hex, as etcd writes them).
var activePeersDesc = prometheus.NewDesc("etcd_network_active_peers",
	"The current number of active peer connections.", []string{"Local", "Remote"}, nil)

type activePeersCollector struct{ m *Metrics }

func (c activePeersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- activePeersDesc }

func (c activePeersCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.srv.Load()
	if s == nil || s.Node() == nil {
		return
	}
	n := s.Node()
	local := strconv.FormatUint(n.ID(), 16)
	for _, mb := range n.Members() {
		if mb.ID == n.ID() {
			continue
		}
		active := b2f(!n.PeerActiveSince(mb.ID).IsZero())
		ch <- prometheus.MustNewConstMetric(activePeersDesc, prometheus.GaugeValue, active, local, strconv.FormatUint(mb.ID, 16))
	}
}
