package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// kubeadm's etcd static Pod (Kubernetes 1.34 and later, etcd 3.6 and
// later) runs etcd with the flags below, and probes it over the metrics
// URL: /livez (liveness), /readyz (readiness and start-up); older kubeadm
// probes /health?exclude=NOSPACE&serializable=true. The same command line
// with `metastore serve` in etcd's place must start a cluster that the
// API server (a client with its own certificate) can use, and a member
// restarted by the kubelet must pass the initial corruption check.

// kubeadmFlags are kubeadm's etcd flags for member m, its certificates f
// (kubeadm's etcd/server and etcd/peer, one CA) and metricsURL; 127.0.0.1
// stands for the host's address.
func kubeadmFlags(m *member, f tlsFiles, metricsURL, initial string) []string {
	return []string{"serve",
		"--advertise-client-urls=" + m.clientURL,
		"--cert-file=" + f.cert,
		"--client-cert-auth=true",
		"--data-dir=" + m.dataDir,
		"--feature-gates=InitialCorruptCheck=true",
		"--initial-advertise-peer-urls=" + m.peerURL,
		"--initial-cluster=" + initial,
		"--key-file=" + f.key,
		"--listen-client-urls=" + m.clientURL,
		"--listen-metrics-urls=" + metricsURL,
		"--listen-peer-urls=" + m.peerURL,
		"--name=" + m.name,
		"--peer-cert-file=" + f.cert,
		"--peer-client-cert-auth=true",
		"--peer-key-file=" + f.key,
		"--peer-trusted-ca-file=" + f.ca,
		"--snapshot-count=10000",
		"--trusted-ca-file=" + f.ca,
		"--watch-progress-notify-interval=5s",
	}
}

// probeOK reports whether GET url answers 200 (a kubelet probe).
func probeOK(url string) bool {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// kubeletProbes are the paths kubeadm's manifests probe on the metrics URL.
var kubeletProbes = []string{"/livez", "/readyz", "/health?exclude=NOSPACE&serializable=true"}

func TestKubeadm_EtcdManifestFlags(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "etcd-ca")
	ms, initial := newTLSMembers(t, 3, "https")
	ports := freePorts(t, len(ms))
	metrics := make([]string, len(ms))
	for i, m := range ms {
		m.engine = engineRocksDB // kubeadm passes no --engine: the default
		m.dataDir = filepath.Join(dir, m.name)
		m.logPath = m.dataDir + ".log"
		metrics[i] = fmt.Sprintf("http://127.0.0.1:%d", ports[i])
		f := writeTLSFiles(t, dir, m.name, ca, int64(i+10))
		m.args = kubeadmFlags(m, f, metrics[i], initial)
	}

	t.Logf("Step 1: three members started with kubeadm's etcd flags (https client and peer URLs, both with certificate auth, InitialCorruptCheck)")
	for _, m := range ms {
		m.start()
	}

	t.Logf("Step 2: every member passes the kubelet's probes on its metrics URL")
	for i := range ms {
		for _, p := range kubeletProbes {
			waitFor(t, 60*time.Second, ms[i].name+" "+p, func() bool { return probeOK(metrics[i] + p) })
		}
	}

	t.Logf("Step 3: the API server's client (its own certificate from the same CA) writes, reads and watches")
	apiserver := writeTLSFiles(t, dir, "apiserver-etcd-client", ca, 99)
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.tlsEndpoint())
	}
	cli := newTLSClient(t, tlsClientConfig(t, ca, &apiserver), eps...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wch := cli.Watch(ctx, "/registry/pods/", clientv3.WithPrefix())
	put, err := cli.Put(ctx, "/registry/pods/default/p1", "v1")
	require.NoError(t, err)
	got, err := cli.Get(ctx, "/registry/pods/default/p1")
	require.NoError(t, err)
	require.Len(t, got.Kvs, 1)
	require.Equal(t, "v1", string(got.Kvs[0].Value))
	select {
	case wr := <-wch:
		require.NoError(t, wr.Err())
		require.Len(t, wr.Events, 1)
		require.Equal(t, put.Header.Revision, wr.Events[0].Kv.ModRevision)
	case <-ctx.Done():
		t.Fatal("no watch event")
	}
	anon := newTLSClient(t, tlsClientConfig(t, ca, nil), eps[0])
	actx, acancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err = anon.Get(actx, "/registry/pods/default/p1")
	acancel()
	require.Error(t, err, "a client without a certificate is refused (--client-cert-auth)")

	t.Logf("Step 4: the kubelet restarts %s (killed): the initial corruption check passes and the probes answer again", ms[1].name)
	ms[1].kill()
	ms[1].restart()
	for _, p := range kubeletProbes {
		waitFor(t, 60*time.Second, ms[1].name+" "+p+" after the restart", func() bool { return probeOK(metrics[1] + p) })
	}
	require.True(t, logContains(t, ms[1], "initial corruption check passed"), "the restarted member checked its data")
	got, err = cli.Get(ctx, "/registry/pods/default/p1", clientv3.WithSerializable())
	require.NoError(t, err)
	require.Len(t, got.Kvs, 1)
	require.False(t, strings.Contains(readLog(t, ms[1]), `"level":"fatal"`))
}
