package http

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestOps_HealthLivezReadyz(t *testing.T) {
	h, _, mt := newTestHandler(t, Config{})

	t.Logf("Step 1: with a leader everything is healthy")
	r := do(h, "GET", "/health", "")
	require.Equal(t, 200, r.StatusCode())
	require.Equal(t, `{"health":"true","reason":""}`, string(r.Body()))
	r = do(h, "GET", "/readyz", "")
	require.Equal(t, 200, r.StatusCode())
	require.Equal(t, "ok\n", string(r.Body()))
	r = do(h, "GET", "/readyz?verbose", "")
	require.Equal(t, "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\nok\n", string(r.Body()))
	r = do(h, "GET", "/livez?verbose&exclude=serializable_read", "")
	require.Equal(t, "ok\n", string(r.Body()))
	r = do(h, "GET", "/readyz/non_learner", "")
	require.Equal(t, 200, r.StatusCode())
	require.Equal(t, 404, do(h, "GET", "/readyz/nosuch", "").StatusCode())

	t.Logf("Step 2: without a leader /health fails unless serializable")
	mt.leader = 0
	r = do(h, "GET", "/health", "")
	require.Equal(t, 503, r.StatusCode())
	require.Equal(t, `{"health":"false","reason":"RAFT NO LEADER"}`, string(r.Body()))
	r = do(h, "GET", "/health?serializable=true", "")
	require.Equal(t, 200, r.StatusCode())

	t.Logf("Step 3: a learner is live but not ready")
	mt.leader, mt.learner = 7, true
	r = do(h, "GET", "/readyz", "")
	require.Equal(t, 503, r.StatusCode())
	require.Equal(t, "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[-]non_learner failed: not supported for learner\n", string(r.Body()))
	require.Equal(t, 200, do(h, "GET", "/livez", "").StatusCode())
	require.Equal(t, 200, do(h, "GET", "/readyz?exclude=non_learner", "").StatusCode())

	t.Logf("Step 4: alarms fail /health unless excluded; CORRUPT fails readyz's data_corruption")
	mt.learner = false
	mt.alarms = []*pb.AlarmMember{{MemberID: 7, Alarm: pb.AlarmType_NOSPACE}}
	r = do(h, "GET", "/health", "")
	require.Equal(t, 503, r.StatusCode())
	require.Equal(t, `{"health":"false","reason":"ALARM NOSPACE"}`, string(r.Body()))
	require.Equal(t, 200, do(h, "GET", "/health?exclude=NOSPACE", "").StatusCode())
	require.Equal(t, 200, do(h, "GET", "/readyz", "").StatusCode(), "NOSPACE does not make a member unready")
	mt.alarms = append(mt.alarms, &pb.AlarmMember{MemberID: 7, Alarm: pb.AlarmType_CORRUPT})
	r = do(h, "GET", "/health?exclude=NOSPACE", "")
	require.Equal(t, `{"health":"false","reason":"ALARM CORRUPT"}`, string(r.Body()))
	r = do(h, "GET", "/readyz/data_corruption", "")
	require.Equal(t, 503, r.StatusCode())
	require.Equal(t, "[-]data_corruption failed: alarm activated: CORRUPT\n", string(r.Body()))
	require.Equal(t, 200, do(h, "GET", "/livez", "").StatusCode())
}

func TestOps_VersionMetricsPprof(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	h, _, _ := newTestHandler(t, Config{Metrics: m, Gatherer: reg})

	r := do(h, "GET", "/version", "")
	require.Equal(t, 200, r.StatusCode())
	require.Equal(t, `{"etcdserver":"3.7.3","etcdcluster":"3.7.0","storage":"3.7.0","metastore":"v0.0.0-dev"}`, string(r.Body()))

	do(h, "PUT", "/v1/kv/a", "1")
	do(h, "GET", "/v1/kv/missing", "")
	do(h, "GET", "/nosuch", "")
	r = do(h, "GET", "/metrics", "")
	require.Equal(t, 200, r.StatusCode())
	body := string(r.Body())
	for _, want := range []string{
		`metastore_http_requests_total{code="200",route="v1_kv"} 1`,
		`metastore_http_requests_total{code="404",route="v1_kv"} 1`,
		`metastore_http_requests_total{code="404",route="not_found"} 1`,
		"etcd_server_has_leader 0", // no server attached
		"etcd_disk_wal_fsync_duration_seconds_bucket",
		"etcd_server_proposals_failed_total 0",
	} {
		require.Contains(t, body, want)
	}

	t.Logf("pprof is 404 unless enabled; ops-only serving hides the APIs")
	require.Equal(t, 404, do(h, "GET", "/debug/pprof/", "").StatusCode())
	hp, _, _ := newTestHandler(t, Config{EnablePprof: true})
	r = do(hp, "GET", "/debug/pprof/", "")
	require.Equal(t, 200, r.StatusCode())
	require.True(t, strings.Contains(string(r.Body()), "goroutine"))
}
