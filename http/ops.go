package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/metastore/metastore/version"
)

// Operations endpoints, as etcd serves them: /health (JSON, for etcdctl
// endpoint health and load balancers), /livez and /readyz (Kubernetes-style
// probes with named checks), /version, /metrics and /debug/pprof/.

// healthKey is the key the health reads range over (etcd ranges from the
// empty key; any key works, the read's success is what is measured).
var healthKey = []byte("health")

// health is etcd's /health: {"health":"true","reason":""}, or 503 with
// "false" and why: an active alarm ("ALARM NOSPACE", "ALARM CORRUPT"; each
// ?exclude=<ALARM> ignores one), no leader ("RAFT NO LEADER"), or a failed
// read ("RANGE ERROR:..."). Without ?serializable=true it needs a leader
// and a linearizable read; with it, only a local read.
func (h *Handler) health(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	serializable := string(args.Peek("serializable")) == "true"
	reason := alarmReason(h.mt.Alarms(), args)
	switch {
	case reason != "":
	case !serializable && h.mt.Leader() == 0:
		reason = "RAFT NO LEADER"
	default:
		if err := h.readCheck(serializable); err != nil {
			reason = "RANGE ERROR:" + toAPIError(err).message
		}
	}
	healthy := "true"
	status := fasthttp.StatusOK
	if reason != "" {
		healthy, status = "false", fasthttp.StatusServiceUnavailable
	}
	b := getBuf()
	defer putBuf(b)
	buf := append((*b)[:0], `{"health":`...)
	buf = appendJSONString(buf, healthy)
	buf = append(buf, `,"reason":`...)
	buf = appendJSONString(buf, reason)
	buf = append(buf, '}')
	*b = buf
	ctx.SetStatusCode(status)
	ctx.SetContentType(contentJSON)
	ctx.SetBody(buf)
}

// alarmReason is etcd's reason for the first active alarm not excluded.
func alarmReason(alarms []*pb.AlarmMember, args *fasthttp.Args) string {
	for _, a := range alarms {
		if excluded(args, a.Alarm.String()) {
			continue
		}
		switch a.Alarm {
		case pb.AlarmType_NOSPACE:
			return "ALARM NOSPACE"
		case pb.AlarmType_CORRUPT:
			return "ALARM CORRUPT"
		}
		return "ALARM UNKNOWN"
	}
	return ""
}

func (h *Handler) readCheck(serializable bool) error {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.HealthTimeout)
	defer cancel()
	_, err := h.kv.Range(ctx, &pb.RangeRequest{Key: healthKey, KeysOnly: true, Limit: 1, Serializable: serializable})
	return err
}

// check is one named probe of /livez or /readyz.
type check struct {
	name string
	run  func(h *Handler) error
}

var (
	errLearner = errors.New("not supported for learner")
	errCorrupt = errors.New("alarm activated: CORRUPT")
)

var (
	serializableRead = check{"serializable_read", func(h *Handler) error { return h.readCheck(true) }}
	linearizableRead = check{"linearizable_read", func(h *Handler) error { return h.readCheck(false) }}
	nonLearner       = check{"non_learner", func(h *Handler) error {
		if h.mt.IsLearner() {
			return errLearner
		}
		return nil
	}}
	// dataCorruption fails while a CORRUPT alarm is active.
	dataCorruption = check{"data_corruption", func(h *Handler) error {
		for _, a := range h.mt.Alarms() {
			if a.Alarm == pb.AlarmType_CORRUPT {
				return errCorrupt
			}
		}
		return nil
	}}
	livezChecks  = []check{serializableRead}
	readyzChecks = []check{dataCorruption, serializableRead, linearizableRead, nonLearner}
)

func (h *Handler) livez(ctx *fasthttp.RequestCtx)  { h.runChecks(ctx, livezChecks, true) }
func (h *Handler) readyz(ctx *fasthttp.RequestCtx) { h.runChecks(ctx, readyzChecks, true) }

// livezCheck and readyzCheck serve one named check: /readyz/linearizable_read.
func (h *Handler) livezCheck(ctx *fasthttp.RequestCtx) {
	h.oneCheck(ctx, livezChecks, bytes.TrimPrefix(ctx.Path(), []byte("/livez/")))
}

func (h *Handler) readyzCheck(ctx *fasthttp.RequestCtx) {
	h.oneCheck(ctx, readyzChecks, bytes.TrimPrefix(ctx.Path(), []byte("/readyz/")))
}

func (h *Handler) oneCheck(ctx *fasthttp.RequestCtx, checks []check, name []byte) {
	for _, c := range checks {
		if c.name == string(name) {
			h.runChecks(ctx, []check{c}, false)
			return
		}
	}
	writeError(ctx, errNotFound)
}

// runChecks runs the checks (less those named by ?exclude= when
// excludable) and answers etcd's way: 200 "ok\n" (preceded by one
// "[+]name ok" line per check with ?verbose), or 503 with a "[+]"/"[-]"
// line per check, failures with their reason.
func (h *Handler) runChecks(ctx *fasthttp.RequestCtx, checks []check, excludable bool) {
	args := ctx.QueryArgs()
	var out strings.Builder
	failed := false
	for _, c := range checks {
		if excludable && excluded(args, c.name) {
			continue
		}
		if err := c.run(h); err != nil {
			failed = true
			fmt.Fprintf(&out, "[-]%s failed: %s\n", c.name, checkReason(err))
		} else {
			fmt.Fprintf(&out, "[+]%s ok\n", c.name)
		}
	}
	ctx.SetContentType(contentText)
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	if failed {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString(out.String())
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	if args.Has("verbose") {
		out.WriteString("ok\n")
		ctx.SetBodyString(out.String())
		return
	}
	ctx.SetBodyString("ok\n")
}

func checkReason(err error) string {
	if errors.Is(err, errLearner) || errors.Is(err, errCorrupt) {
		return err.Error()
	}
	return toAPIError(err).message
}

func excluded(args *fasthttp.Args, name string) bool {
	for _, v := range args.PeekMulti("exclude") {
		if string(v) == name {
			return true
		}
	}
	return false
}

// version is etcd's /version (server, cluster and storage versions) plus
// MetaStore's own version.
func (h *Handler) version(ctx *fasthttp.RequestCtx) {
	b := getBuf()
	defer putBuf(b)
	buf := append((*b)[:0], `{"etcdserver":`...)
	buf = appendJSONString(buf, version.EtcdAPIVersion)
	buf = append(buf, `,"etcdcluster":`...)
	buf = appendJSONString(buf, clusterVersion(version.EtcdAPIVersion))
	buf = append(buf, `,"storage":`...)
	buf = appendJSONString(buf, version.EtcdStorageVersion)
	buf = append(buf, `,"metastore":`...)
	buf = appendJSONString(buf, version.Version)
	buf = append(buf, '}')
	*b = buf
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(contentJSON)
	ctx.SetBody(buf)
}

// clusterVersion is major.minor.0 of a server version, as etcd reports the
// cluster version.
func clusterVersion(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1] + ".0"
}

func (h *Handler) serveMetrics(ctx *fasthttp.RequestCtx) {
	if h.prom == nil {
		writeError(ctx, errNotFound)
		return
	}
	h.prom(ctx)
}

func pprofHandler() fasthttp.RequestHandler { return pprofhandler.PprofHandler }

func (h *Handler) servePprof(ctx *fasthttp.RequestCtx) { h.pprof(ctx) }
