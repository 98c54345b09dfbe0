package http

import (
	"bytes"
	"context"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"go.uber.org/zap"

	"github.com/metastore/metastore/server"
)

// Config configures the HTTP front end. Zero values take the defaults below.
type Config struct {
	// MaxRequestBytes and MaxTxnOps are the server's limits (etcd's
	// --max-request-bytes, --max-txn-ops), checked before proposing.
	MaxRequestBytes int
	MaxTxnOps       int
	// ReadTimeout bounds reading a whole request (and the protocol sniff of
	// a new connection on a shared client port); WriteTimeout bounds writing
	// a response; IdleTimeout bounds a keep-alive connection between
	// requests. Together they keep slow or silent clients from holding
	// connections and goroutines.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	// HealthTimeout bounds the reads /health, /livez and /readyz make.
	HealthTimeout time.Duration
	// EnablePprof serves /debug/pprof/ (etcd's --enable-pprof).
	EnablePprof bool
	// CORS lists the origins allowed to call the client URLs from a
	// browser (etcd's --cors); empty or "*" allows all (cors.go).
	CORS []string
	// HostWhitelist lists the host names a plain-HTTP request on the
	// client URLs may name (etcd's --host-whitelist); empty or "*" allows
	// all (hosts.go).
	HostWhitelist []string
	// DisableGateway stops serving etcd's JSON gateway, /v3/ (etcd's
	// --enable-grpc-gateway=false); the REST and operations paths stay.
	DisableGateway bool
	// Metrics, when set, counts requests per route and status
	// (metastore_http_*). Gatherer is what /metrics serves; nil disables it.
	Metrics  *Metrics
	Gatherer prometheus.Gatherer
	Logger   *zap.Logger
}

// Defaults.
const (
	DefaultReadTimeout   = 30 * time.Second
	DefaultWriteTimeout  = 30 * time.Second
	DefaultIdleTimeout   = 2 * time.Minute
	DefaultHealthTimeout = 3 * time.Second
)

func (c Config) withDefaults() Config {
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = server.DefaultMaxRequestBytes
	}
	if c.MaxTxnOps <= 0 {
		c.MaxTxnOps = server.DefaultMaxTxnOps
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.HealthTimeout <= 0 {
		c.HealthTimeout = DefaultHealthTimeout
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Handler serves MetaStore's HTTP API: etcd's JSON gateway (/v3/...), the
// REST API (/v1/...) and the operations endpoints. It holds no state but
// counters: every request goes to the server.
type Handler struct {
	cfg     Config
	kv      KV
	mt      Maintenance
	metrics *httpMetrics
	prom    fasthttp.RequestHandler
	pprof   fasthttp.RequestHandler

	// ctx is the context of every call into the server: cancelled by Close,
	// never by a client (fasthttp does not report disconnects). Requests
	// get the server's own timeout. NB: a *fasthttp.RequestCtx is a
	// context.Context too, but its Done channel is not a cancelCtx, so
	// deriving a timeout from it would start a goroutine per request.
	ctx    context.Context
	cancel context.CancelFunc
	// anon is ctx marked as an anonymous client's request (auth.go): what a
	// request without a token runs with while auth is disabled, made once.
	anon context.Context
	// streams ends the watch streams (watch.go).
	streams *streamStop
	// callCtx is the parent of the calls that may wait without bound
	// (Lock, Campaign, Observe: concurrency.go, over the in-process gRPC
	// connection conc): cancelled by StopStreams as well as Close, so a
	// graceful shutdown does not wait for them.
	callCtx   context.Context
	stopCalls context.CancelFunc
	conc      *concurrencyClients
	cors      corsPolicy
	hosts     hostPolicy
	upgrader  *websocket.FastHTTPUpgrader
	sessions  wsSessions // WebSocket sessions (websocket.go)
}

// NewHandler returns the HTTP front end over s. Limits not set in cfg are
// taken from the server's configuration.
func NewHandler(s *server.Server, cfg Config) *Handler {
	sc := s.Config()
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = sc.MaxRequestBytes
	}
	if cfg.MaxTxnOps <= 0 {
		cfg.MaxTxnOps = sc.MaxTxnOps
	}
	return newHandler(s, memberInfo{s}, cfg)
}

func newHandler(kv KV, mt Maintenance, cfg Config) *Handler {
	cfg = cfg.withDefaults()
	h := &Handler{cfg: cfg, kv: kv, mt: mt, streams: newStreamStop(), cors: newCORSPolicy(cfg.CORS),
		hosts: newHostPolicy(cfg.HostWhitelist)}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.callCtx, h.stopCalls = context.WithCancel(h.ctx)
	h.anon = h.ctx
	h.upgrader = h.newUpgrader()
	if g, ok := kv.(AuthGate); ok {
		h.anon = g.AnonymousContext(h.ctx)
	}
	if cfg.Metrics != nil {
		h.metrics = cfg.Metrics.http
	}
	if cfg.Gatherer != nil {
		h.prom = metricsHandler(cfg.Gatherer)
	}
	if cfg.EnablePprof {
		h.pprof = pprofHandler()
	}
	return h
}

// Close cancels the requests in flight in the server and ends the streams.
func (h *Handler) Close() {
	h.streams.stop()
	h.cancel()
	h.sessions.closeAndWait()
}

// Handle serves every endpoint: the client listeners (after the protocol
// sniff) and --listen-http-urls.
func (h *Handler) Handle(ctx *fasthttp.RequestCtx) { h.serve(ctx, false) }

// HandleOps serves only the operations endpoints (health, version,
// metrics, pprof): --listen-metrics-urls.
func (h *Handler) HandleOps(ctx *fasthttp.RequestCtx) { h.serve(ctx, true) }

// NewServer returns a fasthttp server for handler (Handle or HandleOps)
// with the configured timeouts and body limit.
func (h *Handler) NewServer(handler fasthttp.RequestHandler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:      handler,
		ErrorHandler: h.connError,
		Name:         "metastore",
		ReadTimeout:  h.cfg.ReadTimeout,
		WriteTimeout: h.cfg.WriteTimeout,
		IdleTimeout:  h.cfg.IdleTimeout,
		// A REST value is checked against MaxRequestBytes itself.
		MaxRequestBodySize:    h.maxBody(),
		NoDefaultContentType:  true,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
		Logger:                zapLogger{h.cfg.Logger},
	}
}

// maxBody is the largest body a valid request can have: a maximal request
// in JSON, where bytes grow by a third in base64, plus the envelope.
func (h *Handler) maxBody() int { return h.cfg.MaxRequestBytes/3*4 + 64<<10 }

// connError answers requests fasthttp could not parse: too large (413),
// too slow (408), malformed (400). None of them is the server's fault.
func (h *Handler) connError(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case err == fasthttp.ErrBodyTooLarge:
		writeError(ctx, errBodyTooLarge)
	case isTimeout(err):
		writeError(ctx, errRequestTimeout)
	default:
		writeError(ctx, badRequest("malformed HTTP request: "+err.Error()))
	}
}

func isTimeout(err error) bool {
	t, ok := err.(interface{ Timeout() bool })
	return ok && t.Timeout()
}

type zapLogger struct{ lg *zap.Logger }

func (l zapLogger) Printf(format string, args ...any) { l.lg.Sugar().Debugf(format, args...) }

// route is one endpoint. Adding an endpoint is one line in routes.
type route struct {
	name    string // the metrics label
	methods methodSet
	ops     bool // also served by HandleOps
	serve   func(h *Handler, ctx *fasthttp.RequestCtx)
	// ws serves a stream over a WebSocket (websocket.go); nil for the
	// other gateway paths, which are served one message each.
	ws  func(h *Handler, ctx *fasthttp.RequestCtx) wsSession
	idx int
}

// routes are the exact paths.
var routes = map[string]*route{
	"/v3/kv/range":                        {name: "v3_kv_range", methods: post, serve: (*Handler).gwRange},
	"/v3/kv/put":                          {name: "v3_kv_put", methods: post, serve: (*Handler).gwPut},
	"/v3/kv/deleterange":                  {name: "v3_kv_deleterange", methods: post, serve: (*Handler).gwDeleteRange},
	"/v3/kv/txn":                          {name: "v3_kv_txn", methods: post, serve: (*Handler).gwTxn},
	"/v3/kv/compaction":                   {name: "v3_kv_compaction", methods: post, serve: (*Handler).gwCompact},
	"/v3/cluster/member/list":             {name: "v3_cluster_member_list", methods: post, serve: (*Handler).gwMemberList},
	"/v3/cluster/member/add":              {name: "v3_cluster_member_add", methods: post, serve: adminRoute(memberAdd)},
	"/v3/cluster/member/remove":           {name: "v3_cluster_member_remove", methods: post, serve: adminRoute(memberRemove)},
	"/v3/cluster/member/update":           {name: "v3_cluster_member_update", methods: post, serve: adminRoute(memberUpdate)},
	"/v3/cluster/member/promote":          {name: "v3_cluster_member_promote", methods: post, serve: adminRoute(memberPromote)},
	"/v3/maintenance/defragment":          {name: "v3_maintenance_defragment", methods: post, serve: adminRoute(defragment)},
	"/v3/maintenance/transfer-leadership": {name: "v3_maintenance_transfer_leadership", methods: post, serve: adminRoute(moveLeader)},
	"/v3/maintenance/status":              {name: "v3_maintenance_status", methods: post, serve: (*Handler).gwStatus},
	"/v3/maintenance/hash":                {name: "v3_maintenance_hash", methods: post, serve: (*Handler).gwHash},
	"/v3/maintenance/hashkv":              {name: "v3_maintenance_hashkv", methods: post, serve: (*Handler).gwHashKV},
	"/v3/maintenance/snapshot":            {name: "v3_maintenance_snapshot", methods: post, serve: (*Handler).gwSnapshot},
	"/v3/maintenance/downgrade":           {name: "v3_maintenance_downgrade", methods: post, serve: adminRoute(downgrade)},
	"/v3/maintenance/alarm":               {name: "v3_maintenance_alarm", methods: post, serve: (*Handler).gwAlarm},
	"/v3/watch":                           {name: "v3_watch", methods: post, serve: (*Handler).gwWatch, ws: wsWatch},
	"/v3/lease/grant":                     {name: "v3_lease_grant", methods: post, serve: leaseRoute(LeaseAPI.LeaseGrant)},
	"/v3/lease/revoke":                    {name: "v3_lease_revoke", methods: post, serve: leaseRoute(LeaseAPI.LeaseRevoke)},
	"/v3/kv/lease/revoke":                 {name: "v3_kv_lease_revoke", methods: post, serve: leaseRoute(LeaseAPI.LeaseRevoke)},
	"/v3/lease/timetolive":                {name: "v3_lease_timetolive", methods: post, serve: leaseRoute(leaseTimeToLive)},
	"/v3/kv/lease/timetolive":             {name: "v3_kv_lease_timetolive", methods: post, serve: leaseRoute(leaseTimeToLive)},
	"/v3/lease/leases":                    {name: "v3_lease_leases", methods: post, serve: leaseRoute(LeaseAPI.LeaseLeases)},
	"/v3/kv/lease/leases":                 {name: "v3_kv_lease_leases", methods: post, serve: leaseRoute(LeaseAPI.LeaseLeases)},
	"/v3/lease/keepalive":                 {name: "v3_lease_keepalive", methods: post, serve: (*Handler).gwLeaseKeepAlive, ws: wsLeaseKeepAlive},
	"/v3/lock/lock":                       {name: "v3_lock_lock", methods: post, serve: grpcRoute(lockClient, v3lockpb.LockClient.Lock)},
	"/v3/lock/unlock":                     {name: "v3_lock_unlock", methods: post, serve: grpcRoute(lockClient, v3lockpb.LockClient.Unlock)},
	"/v3/election/campaign":               {name: "v3_election_campaign", methods: post, serve: grpcRoute(electionClient, epb.ElectionClient.Campaign)},
	"/v3/election/proclaim":               {name: "v3_election_proclaim", methods: post, serve: grpcRoute(electionClient, epb.ElectionClient.Proclaim)},
	"/v3/election/leader":                 {name: "v3_election_leader", methods: post, serve: grpcRoute(electionClient, epb.ElectionClient.Leader)},
	"/v3/election/resign":                 {name: "v3_election_resign", methods: post, serve: grpcRoute(electionClient, epb.ElectionClient.Resign)},
	"/v3/election/observe":                {name: "v3_election_observe", methods: post, serve: (*Handler).gwObserve, ws: wsObserve},
	"/v3/auth/enable":                     {name: "v3_auth_enable", methods: post, serve: authRoute(AuthAPI.AuthEnable)},
	"/v3/auth/disable":                    {name: "v3_auth_disable", methods: post, serve: authRoute(AuthAPI.AuthDisable)},
	"/v3/auth/status":                     {name: "v3_auth_status", methods: post, serve: authRoute(AuthAPI.AuthStatus)},
	"/v3/auth/authenticate":               {name: "v3_auth_authenticate", methods: post, serve: authRoute(AuthAPI.Authenticate)},
	"/v3/auth/user/add":                   {name: "v3_auth_user_add", methods: post, serve: authRoute(AuthAPI.UserAdd)},
	"/v3/auth/user/get":                   {name: "v3_auth_user_get", methods: post, serve: authRoute(AuthAPI.UserGet)},
	"/v3/auth/user/list":                  {name: "v3_auth_user_list", methods: post, serve: authRoute(AuthAPI.UserList)},
	"/v3/auth/user/delete":                {name: "v3_auth_user_delete", methods: post, serve: authRoute(AuthAPI.UserDelete)},
	"/v3/auth/user/changepw":              {name: "v3_auth_user_changepw", methods: post, serve: authRoute(AuthAPI.UserChangePassword)},
	"/v3/auth/user/grant":                 {name: "v3_auth_user_grant", methods: post, serve: authRoute(AuthAPI.UserGrantRole)},
	"/v3/auth/user/revoke":                {name: "v3_auth_user_revoke", methods: post, serve: authRoute(AuthAPI.UserRevokeRole)},
	"/v3/auth/role/add":                   {name: "v3_auth_role_add", methods: post, serve: authRoute(AuthAPI.RoleAdd)},
	"/v3/auth/role/get":                   {name: "v3_auth_role_get", methods: post, serve: authRoute(AuthAPI.RoleGet)},
	"/v3/auth/role/list":                  {name: "v3_auth_role_list", methods: post, serve: authRoute(AuthAPI.RoleList)},
	"/v3/auth/role/delete":                {name: "v3_auth_role_delete", methods: post, serve: authRoute(AuthAPI.RoleDelete)},
	"/v3/auth/role/grant":                 {name: "v3_auth_role_grant", methods: post, serve: authRoute(AuthAPI.RoleGrantPermission)},
	"/v3/auth/role/revoke":                {name: "v3_auth_role_revoke", methods: post, serve: authRoute(AuthAPI.RoleRevokePermission)},
	"/health":                             {name: "health", methods: get, ops: true, serve: (*Handler).health},
	"/livez":                              {name: "livez", methods: get, ops: true, serve: (*Handler).livez},
	"/readyz":                             {name: "readyz", methods: get, ops: true, serve: (*Handler).readyz},
	"/version":                            {name: "version", methods: get, ops: true, serve: (*Handler).version},
	"/metrics":                            {name: "metrics", methods: get, ops: true, serve: (*Handler).serveMetrics},
	"/debug/pprof/":                       pprofRoute,
}

// Routes matched by prefix.
var (
	restKVPrefix = []byte("/v1/kv/")
	restKV       = &route{name: "v1_kv", methods: get | put | del, serve: (*Handler).rest}
	restWatchPfx = []byte("/v1/watch/")
	restWatchRt  = &route{name: "v1_watch", methods: get, serve: (*Handler).restWatch}
	livezCheck   = &route{name: "livez_check", methods: get, ops: true, serve: (*Handler).livezCheck}
	readyzCheck  = &route{name: "readyz_check", methods: get, ops: true, serve: (*Handler).readyzCheck}
	pprofRoute   = &route{name: "pprof", methods: get | post, ops: true, serve: (*Handler).servePprof}
	notFound     = &route{name: "not_found"}
)

// allRoutes numbers the routes for the per-route metrics.
var allRoutes = func() []*route {
	rs := []*route{notFound, restKV, restWatchRt, livezCheck, readyzCheck}
	for _, r := range routes {
		if r != pprofRoute {
			rs = append(rs, r)
		}
	}
	rs = append(rs, pprofRoute)
	for i, r := range rs {
		r.idx = i
	}
	return rs
}()

func (h *Handler) lookup(ctx *fasthttp.RequestCtx) *route {
	// REST keys may hold any bytes, '/' and "%2F" included, so /v1/kv/ is
	// matched on the raw path and the key decoded by the handler; fasthttp's
	// normalised Path() would collapse "//" and resolve "..".
	if bytes.HasPrefix(ctx.URI().PathOriginal(), restKVPrefix) {
		return restKV
	}
	if bytes.HasPrefix(ctx.URI().PathOriginal(), restWatchPfx) {
		return restWatchRt
	}
	path := ctx.Path()
	if r, ok := routes[string(path)]; ok {
		return r
	}
	switch {
	case bytes.HasPrefix(path, []byte("/livez/")):
		return livezCheck
	case bytes.HasPrefix(path, []byte("/readyz/")):
		return readyzCheck
	case bytes.HasPrefix(path, []byte("/debug/pprof/")):
		return pprofRoute
	}
	return nil
}

var v3beta = []byte("/v3beta/")

// writeNotFound answers a path nothing serves as etcd does: under /v3/
// (and the REST API's /v1/) grpc-gateway's JSON error, elsewhere Go's
// plain "404 page not found".
func writeNotFound(ctx *fasthttp.RequestCtx) {
	p := ctx.Path()
	if bytes.HasPrefix(p, []byte("/v3/")) || bytes.HasPrefix(p, []byte("/v1/")) {
		writeError(ctx, errNotFound)
		return
	}
	ctx.ResetBody()
	ctx.SetStatusCode(fasthttp.StatusNotFound)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.SetBodyString("404 page not found\n")
}

func (h *Handler) serve(ctx *fasthttp.RequestCtx, opsOnly bool) {
	var start time.Time
	if h.metrics != nil {
		start = time.Now()
	}
	// NB: the raw path first: the REST paths are matched raw, and the
	// normalised one would be made for them only here.
	if !opsOnly && bytes.HasPrefix(ctx.URI().PathOriginal(), v3beta) && bytes.HasPrefix(ctx.Path(), v3beta) {
		// etcd's old gateway prefix, served as /v3/ (as etcd 3.7 does).
		ctx.URI().SetPathBytes(append([]byte("/v3/"), ctx.Path()[len(v3beta):]...))
	}
	r := h.lookup(ctx)
	// NB: the normalised path, as lookup matched the gateway's routes on it
	// ("//v3/kv/range" is /v3/kv/range).
	if h.cfg.DisableGateway && r != nil && bytes.HasPrefix(ctx.Path(), []byte("/v3/")) {
		r = nil // not found
	}
	// As etcd: the host check first, then the CORS headers.
	refused := !opsOnly && (h.hosts.refuse(ctx, h.cfg.Logger) || h.refuseGatewayCert(ctx))
	if !opsOnly && !refused {
		h.cors.apply(ctx)
	}
	switch {
	case refused:
		if r == nil {
			r = notFound
		}
	case !opsOnly && ctx.IsOptions():
		if r == nil {
			r = notFound
		}
		ctx.SetStatusCode(fasthttp.StatusOK) // a CORS preflight, on any path
	case !opsOnly && r != nil && r.serve != nil && isWebSocket(ctx):
		h.serveWebSocket(ctx, r)
	case r == nil || (opsOnly && !r.ops) || (r == pprofRoute && h.pprof == nil) || (r.serve == nil):
		r = notFound
		writeNotFound(ctx)
	case !r.methods.has(ctx):
		ctx.Response.Header.Set("Allow", r.methods.String())
		e := errMethodNotAllowed
		if bytes.HasPrefix(ctx.Path(), []byte("/v3/")) {
			e.status = fasthttp.StatusNotImplemented // grpc-gateway's status for its code 12, as etcd
		}
		writeError(ctx, e)
	default:
		r.serve(h, ctx)
	}
	if h.metrics != nil {
		h.metrics.observe(r.idx, ctx.Response.StatusCode(), time.Since(start))
	}
}

// methodSet is a set of HTTP methods.
type methodSet uint8

const (
	get methodSet = 1 << iota
	post
	put
	del
)

func (m methodSet) has(ctx *fasthttp.RequestCtx) bool {
	switch {
	case ctx.IsGet(), ctx.IsHead():
		return m&get != 0
	case ctx.IsPost():
		return m&post != 0
	case ctx.IsPut():
		return m&put != 0
	case ctx.IsDelete():
		return m&del != 0
	}
	return false
}

// String is the Allow header value.
func (m methodSet) String() string {
	var b []byte
	add := func(s string) {
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = append(b, s...)
	}
	if m&get != 0 {
		add("GET")
		add("HEAD")
	}
	if m&post != 0 {
		add("POST")
	}
	if m&put != 0 {
		add("PUT")
	}
	if m&del != 0 {
		add("DELETE")
	}
	return string(b)
}
