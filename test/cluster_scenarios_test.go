package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The etcd API suites (etcd_compatibility, etcd_{memory,rocksdb}_integration,
// etcd_{memory,rocksdb}_consistency, etcdctl) start their members through
// startAPICluster. Normally that is startCluster with an engine. With
// METASTORE_TEST_ETCD_BIN set to a real etcd binary, they start real etcd
// instead, with the same flags: the expectations in these files are etcd's,
// and running them against etcd itself is how they were checked:
//
//	METASTORE_TEST_ETCD_BIN=/tmp/etcdpeer/bin/etcd go test -run 'TestEtcd' ./test/
const etcdBinEnv = "METASTORE_TEST_ETCD_BIN"

// apiCluster is the client-facing view of a started cluster.
type apiCluster struct {
	engine  string // "etcd" when running against the reference
	members []apiMember
}

// apiMember is one member as clients see it.
type apiMember struct {
	name      string
	clientURL string
	peerURL   string
}

func (m apiMember) endpoint() string { return strings.TrimPrefix(m.clientURL, "http://") }

func (c *apiCluster) endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.endpoint())
	}
	return eps
}

// clients returns one client per member, each pinned to that member's
// endpoint, so a read on clients[i] is answered by member i.
func (c *apiCluster) clients(t *testing.T) []*clientv3.Client {
	t.Helper()
	var out []*clientv3.Client
	for _, m := range c.members {
		out = append(out, newClient(t, m.endpoint()))
	}
	return out
}

// startAPICluster starts n members on engine (or n real etcd members, see
// etcdBinEnv) with extra serve flags and waits until all know the leader.
func startAPICluster(t *testing.T, engine string, n int, extraFlags ...string) *apiCluster {
	t.Helper()
	if bin := os.Getenv(etcdBinEnv); bin != "" {
		return startReferenceEtcd(t, bin, n, extraFlags)
	}
	c := startCluster(t, engine, n, memberOpts{extraFlags: extraFlags})
	out := &apiCluster{engine: engine}
	for _, m := range c.members {
		out.members = append(out.members, apiMember{name: m.name, clientURL: m.clientURL, peerURL: m.peerURL})
	}
	return out
}

// startReferenceEtcd starts n real etcd members with etcd's flags.
func startReferenceEtcd(t *testing.T, bin string, n int, extraFlags []string) *apiCluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	c := &apiCluster{engine: "etcd"}
	var initial []string
	for i := 0; i < n; i++ {
		m := apiMember{name: fmt.Sprintf("m%d", i+1),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])}
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	dir := t.TempDir()
	for _, m := range c.members {
		args := []string{"--name", m.name, "--data-dir", filepath.Join(dir, m.name),
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-token", "ref",
			"--initial-cluster-state", "new", "--log-level", "error"}
		cmd := exec.Command(bin, append(args, extraFlags...)...)
		logf, err := os.Create(filepath.Join(dir, m.name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting reference etcd: %v", err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			logf.Close()
		})
	}
	waitFor(t, 30*time.Second, "every reference etcd member to know the leader", func() bool {
		var leader uint64
		for _, m := range c.members {
			st, err := statusOf(m.endpoint())
			if err != nil || st.Leader == 0 || (leader != 0 && st.Leader != leader) {
				return false
			}
			leader = st.Leader
		}
		return true
	})
	return c
}

// statusOf asks one endpoint for its Maintenance status, briefly.
func statusOf(ep string) (*clientv3.StatusResponse, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return cli.Status(ctx, ep)
}

// opTimeout bounds every single client call in the etcd API suites.
const opTimeout = 5 * time.Second

// opCtx is a context for one client call.
func opCtx(t *testing.T) context.Context { return ctxT(t, opTimeout) }

// kvString renders a key-value with its revisions, so a whole range result
// is asserted in one exact comparison: "key=value c<create> m<mod> v<version>".
func kvString(kv *mvccpb.KeyValue) string {
	return fmt.Sprintf("%s=%s c%d m%d v%d", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
}

func kvStrings(kvs []*mvccpb.KeyValue) []string {
	out := []string{}
	for _, kv := range kvs {
		out = append(out, kvString(kv))
	}
	return out
}

// keysOf lists the keys of a range result in order.
func keysOf(kvs []*mvccpb.KeyValue) []string {
	out := []string{}
	for _, kv := range kvs {
		out = append(out, string(kv.Key))
	}
	return out
}

// mustPut puts and returns the response, failing the test on error.
func mustPut(t *testing.T, cli *clientv3.Client, k, v string, opts ...clientv3.OpOption) *clientv3.PutResponse {
	t.Helper()
	resp, err := cli.Put(opCtx(t), k, v, opts...)
	if err != nil {
		t.Fatalf("put %q: %v", k, err)
	}
	return resp
}

// mustGet gets and returns the response, failing the test on error.
func mustGet(t *testing.T, cli *clientv3.Client, k string, opts ...clientv3.OpOption) *clientv3.GetResponse {
	t.Helper()
	resp, err := cli.Get(opCtx(t), k, opts...)
	if err != nil {
		t.Fatalf("get %q: %v", k, err)
	}
	return resp
}
