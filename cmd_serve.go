package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"
	"golang.org/x/net/netutil"

	"github.com/metastore/metastore/engine/rocksdb"
	mgrpc "github.com/metastore/metastore/grpc"
	mhttp "github.com/metastore/metastore/http"
	"github.com/metastore/metastore/server"
)

// serveFlags are etcd's flag names where etcd has the setting. Each can also
// come from METASTORE_<FLAG> (upper case, dashes as underscores).
func serveFlags() []cli.Flag {
	return withEnv(append([]cli.Flag{
		&cli.StringFlag{Name: "name", Value: "default", Usage: "human-readable name for this member"},
		&cli.StringFlag{Name: "data-dir", Usage: "path to the data directory (default \"<name>.metastore\")"},
		&cli.StringFlag{Name: "engine", Value: server.EngineRocksDB, Usage: "storage engine: rocksdb or memory"},
		&cli.StringFlag{Name: "listen-client-urls", Value: "http://127.0.0.1:2379", Usage: "URLs to listen on for client traffic"},
		&cli.StringFlag{Name: "advertise-client-urls", Usage: "client URLs to publish to the cluster (default: --listen-client-urls)"},
		&cli.StringFlag{Name: "listen-peer-urls", Value: "http://127.0.0.1:2380", Usage: "URLs to listen on for peer traffic"},
		&cli.StringFlag{Name: "listen-http-urls", Aliases: []string{"listen-client-http-urls"}, Usage: "additional URLs that serve only the HTTP API (client URLs serve gRPC and HTTP on one port)"},
		&cli.StringFlag{Name: "listen-metrics-urls", Usage: "URLs that serve only /metrics, /health, /livez, /readyz and /version"},
		&cli.BoolFlag{Name: "enable-pprof", Usage: "serve runtime profiling data at /debug/pprof/ on the client and metrics URLs"},
		&cli.StringFlag{Name: "host-whitelist", Value: "*", Usage: "comma-separated host names a plain-HTTP request on the client URLs may name in its Host header (against DNS rebinding); empty or * allows all"},
		&cli.StringFlag{Name: "cors", Value: "*", Usage: "comma-separated white list of origins for CORS (cross-origin resource sharing) on the client URLs; empty or * allows all"},
		&cli.StringFlag{Name: "initial-advertise-peer-urls", Usage: "this member's peer URLs to advertise (default: --listen-peer-urls)"},
		&cli.StringFlag{Name: "initial-cluster", Usage: "initial cluster: name=peerURL,... (default: <name>=<initial-advertise-peer-urls>)"},
		&cli.StringFlag{Name: "initial-cluster-state", Value: "new", Usage: "new or existing"},
		&cli.StringFlag{Name: "initial-cluster-token", Value: "etcd-cluster", Usage: "initial cluster token"},
		&cli.StringFlag{Name: "member-id", Usage: "when joining (--initial-cluster-state existing), the member ID MemberAdd returned, in hex as etcdctl prints it (0x optional)"},
		&cli.IntFlag{Name: "heartbeat-interval", Value: 100, Usage: "time (in milliseconds) of a heartbeat interval"},
		&cli.IntFlag{Name: "election-timeout", Value: 1000, Usage: "time (in milliseconds) for an election to timeout"},
		&cli.Uint64Flag{Name: "snapshot-count", Value: 10000, Usage: "number of applied entries that trigger a log compaction"},
		&cli.Uint64Flag{Name: "snapshot-catchup-entries", Value: 5000, Usage: "entries kept after a log compaction for slow followers"},
		&cli.IntFlag{Name: "max-request-bytes", Value: server.DefaultMaxRequestBytes, Usage: "maximum client request size in bytes"},
		&cli.IntFlag{Name: "max-txn-ops", Value: server.DefaultMaxTxnOps, Usage: "maximum number of operations per txn"},
		&cli.IntFlag{Name: "max-pending-proposals", Value: server.DefaultMaxPendingProposals, Usage: "proposals waiting to apply before requests fail with 'too many requests'"},
		&cli.IntFlag{Name: "max-connections", Value: 0, Usage: "open client connections per client listener (0: no limit); more wait to be accepted"},
		&cli.UintFlag{Name: "max-concurrent-streams", Value: 0, Usage: "gRPC streams per client connection (0: no limit, as etcd's default)"},
		&cli.IntFlag{Name: "max-watchers-per-stream", Value: 0, Usage: "watchers one watch stream may hold (0: no limit); more are refused with a reason"},
		&cli.DurationFlag{Name: "warning-unary-request-duration", Value: server.DefaultWarningRequestDuration, Usage: "log KV requests slower than this, with their kind and duration"},
		&cli.DurationFlag{Name: "warning-apply-duration", Value: server.DefaultWarningApplyDuration, Usage: "log requests whose apply takes longer than this, with their kind and duration"},
		&cli.IntFlag{Name: "max-apply-lag", Value: server.DefaultMaxApplyLag, Usage: "log entries apply may trail commit before requests fail with 'too many requests'"},
		&cli.DurationFlag{Name: "shutdown-timeout", Value: 10 * time.Second, Usage: "how long a graceful stop waits for in-flight requests"},
		&cli.DurationFlag{Name: "lease-checkpoint-interval", Value: 5 * time.Minute, Usage: "how often the leader checkpoints remaining lease TTLs, so a leader change does not reset them (negative: never)"},
		&cli.IntFlag{Name: "lease-revoke-rate", Value: 1000, Usage: "expired leases revoked per second at most"},
		&cli.DurationFlag{Name: "watch-batch-delay", Value: server.DefaultWatchBatchDelay, Usage: "after a watch stream sent 64 responses or more at once, wait this long so the next revisions' events go out merged (0: never wait)"},
		&cli.DurationFlag{Name: "watch-progress-notify-interval", Value: server.DefaultWatchProgressNotifyInterval, Usage: "how often watches created with progress_notify hear from a quiet stream (at least 100ms)"},
		&cli.BoolFlag{Name: "strict-reconfig-check", Value: true, Usage: "refuse membership changes that could leave the cluster without a quorum of started, connected voters"},
		&cli.BoolFlag{Name: "unsafe-no-fsync", Usage: "disables fsync of the raft log: unsafe, may lose data (tests only)"},
		&cli.Uint64Flag{Name: "rocksdb-block-cache-bytes", Value: 64 << 20, Usage: "RocksDB block cache size (data blocks and the partitions of index and filter blocks)"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "log-format", Value: "json", Usage: "json or console"},
	}, append(append(append(opsFlags(), tlsFlags()...), authFlags()...), etcdCompatFlags()...)...)) // cmd_ops.go, cmd_tls.go, cmd_auth.go, cmd_etcdflags.go
}

func withEnv(flags []cli.Flag) []cli.Flag {
	for _, f := range flags {
		setFlagEnvVars(f, []string{envName(f.Names()[0])}) // any flag type: see config_file.go
	}
	return flags
}

func serveCommand() *cli.Command {
	return withConfigFile(&cli.Command{ // --config-file: config_file.go
		Name:   "serve",
		Usage:  "run a MetaStore member",
		Flags:  serveFlags(),
		Action: serveAction,
	})
}

func serveAction(c *cli.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("serve takes no arguments, got %q", c.Args().First())
	}
	lg, err := newLogger(c) // cmd_etcdflags.go
	if err != nil {
		return err
	}
	defer lg.Sync()
	cfg, clientURLs, peerURLs, err := serveConfig(c, lg)
	if err != nil {
		return err
	}
	tuneGC(lg, cfg.Engine) // gc.go: after the flags are checked, so a bad flag's error stays one line
	tuneProcs(lg)          // procs.go: at least 2 Ps on a one-CPU allowance
	if c.Bool("memory-mlock") {
		if err := lockMemory(lg); err != nil { // cmd_etcdflags.go
			return err
		}
	}
	mets, err := mhttp.NewMetrics(prometheus.DefaultRegisterer)
	if err != nil {
		return err
	}
	cfg.Metrics = mets.ServerHooks()
	peerLis, err := listenAll(listenConfig(c), peerURLs)
	if err != nil {
		return err
	}
	clientLis, err := listenClient(c, clientURLs, "http/1.1", "h2") // https: cmd_tls.go
	if err != nil {
		closeAll(peerLis)
		return err
	}
	if n := c.Int("max-connections"); n > 0 {
		// Past n open client connections, new ones wait in the kernel's
		// accept queue instead of exhausting file descriptors.
		for i, l := range clientLis {
			clientLis[i] = netutil.LimitListener(l, n)
		}
	}
	httpLis, err := listenFlag(c, "listen-http-urls")
	if err != nil {
		closeAll(peerLis)
		closeAll(clientLis)
		return err
	}
	metricsLis, err := listenFlag(c, "listen-metrics-urls")
	if err != nil {
		closeAll(peerLis)
		closeAll(clientLis)
		closeAll(httpLis)
		return err
	}
	srv, err := server.New(cfg)
	if err != nil {
		closeAll(peerLis)
		closeAll(clientLis)
		closeAll(httpLis)
		closeAll(metricsLis)
		return err
	}
	if len(peerLis) > 1 {
		lg.Warn("only the first --listen-peer-urls entry is served", zap.String("url", peerURLs[0].String()))
	}
	if err := srv.Start(peerLis[0]); err != nil {
		srv.Stop()
		closeAll(clientLis)
		closeAll(httpLis)
		closeAll(metricsLis)
		return err
	}
	mets.Attach(srv)
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigc)
	// As etcd: clients are served only once this member is part of the
	// replicated membership with its client URLs (server/publish.go).
	select {
	case <-srv.ReadyNotify():
	case sig := <-sigc:
		lg.Info("received signal before serving; stopping", zap.String("signal", sig.String()))
		srv.Stop()
		closeAll(clientLis)
		closeAll(httpLis)
		closeAll(metricsLis)
		return nil
	case <-srv.Done():
		err := srv.Err()
		srv.Stop()
		closeAll(clientLis)
		closeAll(httpLis)
		closeAll(metricsLis)
		if err != nil {
			return fmt.Errorf("member stopped: %w", err)
		}
		return nil
	}
	gs := mgrpc.NewServer(srv)
	hh := mhttp.NewHandler(srv, mhttp.Config{EnablePprof: c.Bool("enable-pprof"), CORS: strings.Split(c.String("cors"), ","), DisableGateway: !c.Bool("enable-grpc-gateway"),
		HostWhitelist: strings.Split(c.String("host-whitelist"), ","), Metrics: mets,
		Gatherer: prometheus.DefaultGatherer, Logger: lg})
	front := mhttp.Serve(hh, gs, mhttp.Listeners{Client: clientLis, HTTP: httpLis, Metrics: metricsLis})
	lg.Info("serving", zap.String("name", cfg.Name), zap.String("engine", cfg.Engine),
		zap.String("member-id", fmt.Sprintf("%x", srv.Node().ID())),
		zap.Strings("client-urls", urlStrings(clientURLs)), zap.Strings("peer-urls", urlStrings(peerURLs)))

	sd := startSystemdNotify(srv, lg) // systemd READY=1, watchdog: notify.go
	select {
	case sig := <-sigc:
		lg.Info("received signal; stopping", zap.String("signal", sig.String()))
		sd.Stop() // STOPPING=1
		ctx, cancel := context.WithTimeout(context.Background(), c.Duration("shutdown-timeout"))
		httpDone := make(chan struct{})
		go func() { front.Shutdown(ctx); close(httpDone) }()
		// Watch streams never end on their own: end them first so that
		// clients reconnect elsewhere instead of holding the stop for the
		// whole shutdown timeout.
		srv.WatchHub().Close()
		gracefulStop(gs, c.Duration("shutdown-timeout"))
		<-httpDone
		cancel()
		srv.GracefulStop(c.Duration("shutdown-timeout")) // leadership transfer first: server/maintenance.go
		return nil
	case <-srv.Done():
		sd.Stop()
		gs.Stop()
		front.Close()
		err := srv.Err()
		srv.Stop()
		if err != nil {
			return fmt.Errorf("member stopped: %w", err)
		}
		return nil
	}
}

// gracefulStop stops accepting and lets in-flight requests finish, up to
// timeout.
func gracefulStop(gs interface {
	GracefulStop()
	Stop()
}, timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		gs.Stop()
	}
}

func serveConfig(c *cli.Context, lg *zap.Logger) (server.Config, []*url.URL, []*url.URL, error) {
	name := c.String("name")
	clientURLs, err := parseURLs("listen-client-urls", c.String("listen-client-urls"))
	if err != nil {
		return server.Config{}, nil, nil, err
	}
	peerURLs, err := parseURLs("listen-peer-urls", c.String("listen-peer-urls"))
	if err != nil {
		return server.Config{}, nil, nil, err
	}
	advClient := c.String("advertise-client-urls")
	if advClient == "" {
		advClient = c.String("listen-client-urls")
	}
	advClientURLs, err := parseURLs("advertise-client-urls", advClient)
	if err != nil {
		return server.Config{}, nil, nil, err
	}
	advPeer := c.String("initial-advertise-peer-urls")
	if advPeer == "" {
		advPeer = c.String("listen-peer-urls")
	}
	if _, err := parseURLs("initial-advertise-peer-urls", advPeer); err != nil {
		return server.Config{}, nil, nil, err
	}
	ic := c.String("initial-cluster")
	if ic == "" {
		ic = name + "=" + advPeer
	}
	cluster, err := parseInitialCluster(ic)
	if err != nil {
		return server.Config{}, nil, nil, err
	}
	state := c.String("initial-cluster-state")
	if state != "new" && state != "existing" {
		return server.Config{}, nil, nil, fmt.Errorf("--initial-cluster-state %q: want new or existing", state)
	}
	memberID, err := parseMemberID(c.String("member-id"))
	if err != nil {
		return server.Config{}, nil, nil, err
	}
	if _, ok := cluster[name]; !ok && memberID == 0 {
		return server.Config{}, nil, nil, fmt.Errorf("--initial-cluster has no member named %q (--name)", name)
	}
	dataDir := c.String("data-dir")
	if dataDir == "" {
		dataDir = name + ".metastore"
	}
	hb := time.Duration(c.Int("heartbeat-interval")) * time.Millisecond
	et := time.Duration(c.Int("election-timeout")) * time.Millisecond
	if hb <= 0 || et < 3*hb {
		return server.Config{}, nil, nil, fmt.Errorf("--election-timeout (%v) must be at least 3x --heartbeat-interval (%v), both positive", et, hb)
	}
	cfg := server.Config{
		Name: name, DataDir: dataDir, Engine: c.String("engine"),
		InitialCluster: cluster, ClusterToken: c.String("initial-cluster-token"), ClusterState: state,
		MemberID: memberID, ClientURLs: urlStrings(advClientURLs),
		HeartbeatInterval: hb, ElectionTimeout: et,
		SnapshotCount: c.Uint64("snapshot-count"), SnapshotCatchUpEntries: c.Uint64("snapshot-catchup-entries"),
		MaxRequestBytes: c.Int("max-request-bytes"), MaxTxnOps: c.Int("max-txn-ops"),
		MaxPendingProposals:    c.Int("max-pending-proposals"),
		MaxApplyLag:            c.Int("max-apply-lag"),
		WarningRequestDuration: c.Duration("warning-unary-request-duration"),
		WarningApplyDuration:   c.Duration("warning-apply-duration"),
		MaxConcurrentStreams:   uint32(c.Uint("max-concurrent-streams")),
		MaxWatchersPerStream:   c.Int("max-watchers-per-stream"),
		UnsafeNoFsync:          c.Bool("unsafe-no-fsync"), NoStrictReconfigCheck: !c.Bool("strict-reconfig-check"), Logger: lg,
		LeaseCheckpointInterval: c.Duration("lease-checkpoint-interval"), LeaseRevokeRate: c.Int("lease-revoke-rate"),
		WatchProgressNotifyInterval: c.Duration("watch-progress-notify-interval"),
		WatchBatchDelay:             c.Duration("watch-batch-delay"),
		DisablePreVote:              !c.Bool("pre-vote"),
		MaxLearners:                 c.Int("max-learners"),
		ForceNewCluster:             c.Bool("force-new-cluster"),
		DisableElectionTickAdvance:  !c.Bool("initial-election-tick-advance"),
		ExtensiveMetrics:            c.String("metrics") == "extensive",
		GRPCKeepAliveMinTime:        c.Duration("grpc-keepalive-min-time"),
		GRPCKeepAliveInterval:       c.Duration("grpc-keepalive-interval"),
		GRPCKeepAliveTimeout:        c.Duration("grpc-keepalive-timeout"),
	}
	if m := c.String("metrics"); m != "basic" && m != "extensive" {
		return server.Config{}, nil, nil, fmt.Errorf("--metrics %q: want basic or extensive", m)
	}
	if cfg.MaxLearners < 1 {
		return server.Config{}, nil, nil, fmt.Errorf("--max-learners must be at least 1 (got %d)", cfg.MaxLearners)
	}
	if cfg.WatchBatchDelay < 0 {
		return server.Config{}, nil, nil, fmt.Errorf("--watch-batch-delay must not be negative (got %s)", cfg.WatchBatchDelay)
	}
	applyOpsFlags(c, &cfg) // cmd_ops.go
	// cmd_etcdflags.go
	if err := checkV2Deprecation(c, lg); err != nil {
		return server.Config{}, nil, nil, err
	}
	// cmd_featuregates.go
	if err := applyFeatureGates(c, advPeer, &cfg); err != nil {
		return server.Config{}, nil, nil, err
	}
	// cmd_auth.go
	if err := applyAuthFlags(c, &cfg); err != nil {
		return server.Config{}, nil, nil, err
	}
	// TLS flags: cmd_tls.go
	if err := applyTLSFlags(c, &cfg, lg); err != nil {
		return server.Config{}, nil, nil, err
	}
	cfg.RocksDB = defaultRocksDB()
	cfg.RocksDB.BlockCacheBytes = c.Uint64("rocksdb-block-cache-bytes")
	if cfg.Engine != server.EngineRocksDB && cfg.Engine != server.EngineMemory {
		return server.Config{}, nil, nil, fmt.Errorf("--engine %q: want rocksdb or memory", cfg.Engine)
	}
	return cfg, clientURLs, peerURLs, nil
}

func parseURLs(flag, s string) ([]*url.URL, error) {
	var out []*url.URL
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		u, err := url.Parse(part)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" {
			return nil, fmt.Errorf("--%s: %q is not a URL of the form http://host:port", flag, part)
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--%s is empty", flag)
	}
	return out, nil
}

// parseInitialCluster parses etcd's name=url[,name=url...]; a name may
// repeat to give a member several peer URLs.
func parseInitialCluster(s string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, part := range strings.Split(s, ",") {
		name, u, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--initial-cluster: %q is not name=URL", part)
		}
		if _, err := parseURLs("initial-cluster", u); err != nil {
			return nil, err
		}
		out[name] = append(out[name], u)
	}
	return out, nil
}

// parseMemberID parses a member ID in hex, the way etcd prints IDs; empty is 0.
func parseMemberID(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	id, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("--member-id %q: want a non-zero member ID in hex", s)
	}
	return id, nil
}

// listenFlag listens on the URLs of an optional flag (none when unset).
func listenFlag(c *cli.Context, flag string) ([]net.Listener, error) {
	if strings.TrimSpace(c.String(flag)) == "" {
		return nil, nil
	}
	urls, err := parseURLs(flag, c.String(flag))
	if err != nil {
		return nil, err
	}
	return listenClient(c, urls, "http/1.1") // https: cmd_tls.go
}

func listenAll(lc net.ListenConfig, urls []*url.URL) ([]net.Listener, error) {
	var ls []net.Listener
	for _, u := range urls {
		l, err := listen(lc, u.Host)
		if err != nil {
			closeAll(ls)
			return nil, fmt.Errorf("listening on %s: %w", u, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

func urlStrings(us []*url.URL) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.String()
	}
	return out
}

func defaultRocksDB() rocksdb.Config { return rocksdb.DefaultConfig() }
