package test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
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

// requireErrIs fails unless err is (errors.Is) the typed etcd error want.
func requireErrIs(t *testing.T, err, want error, what string) {
	t.Helper()
	require.Error(t, err, what)
	require.True(t, errors.Is(err, want), "%s: got %v (%T), want %v", what, err, err, want)
}

// writeSortFixture writes s/a, s/b, s/c so that every sort target orders
// them differently:
//
//	s/a: value z, create 4, mod 4, version 1
//	s/b: value y, create 2, mod 7, version 2
//	s/c: value x, create 3, mod 6, version 3
func writeSortFixture(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	for _, kv := range [][2]string{{"s/b", "y"}, {"s/c", "x"}, {"s/a", "z"}, {"s/c", "x"}, {"s/c", "x"}, {"s/b", "y"}} {
		mustPut(t, cli, kv[0], kv[1])
	}
	require.Equal(t, []string{"s/a=z c4 m4 v1", "s/b=y c2 m7 v2", "s/c=x c3 m6 v3"},
		kvStrings(mustGet(t, cli, "s/", clientv3.WithPrefix()).Kvs))
}

// leaderIndex returns the index in c.members of the member that leads now.
func (c *apiCluster) leaderIndex(t *testing.T) int {
	t.Helper()
	idx := -1
	waitFor(t, 15*time.Second, "a leader", func() bool {
		for i, m := range c.members {
			st, err := statusOf(m.endpoint())
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				idx = i
				return true
			}
		}
		return false
	})
	return idx
}

// waitRevisionEverywhere waits until every member has applied revision rev
// (a serializable read on it reports rev), so serializable reads on any
// member see every write up to rev.
func waitRevisionEverywhere(t *testing.T, clis []*clientv3.Client, rev int64) {
	t.Helper()
	for i, cli := range clis {
		waitFor(t, 10*time.Second, fmt.Sprintf("member %d to apply revision %d", i+1, rev), func() bool {
			resp, err := cli.Get(opCtx(t), "\x00", clientv3.WithSerializable(), clientv3.WithCountOnly())
			return err == nil && resp.Header.Revision >= rev
		})
	}
}

// rangeEverywhere runs the same range on every member and requires the
// results (kvs, count, more, header revision) to be identical; it returns
// member 1's result.
func rangeEverywhere(t *testing.T, clis []*clientv3.Client, key string, opts ...clientv3.OpOption) *clientv3.GetResponse {
	t.Helper()
	var first *clientv3.GetResponse
	for i, cli := range clis {
		resp := mustGet(t, cli, key, opts...)
		if first == nil {
			first = resp
			continue
		}
		require.Equal(t, kvStrings(first.Kvs), kvStrings(resp.Kvs), "member %d vs member 1: kvs of %q", i+1, key)
		require.Equal(t, first.Count, resp.Count, "member %d vs member 1: count of %q", i+1, key)
		require.Equal(t, first.More, resp.More, "member %d vs member 1: more of %q", i+1, key)
		require.Equal(t, first.Header.Revision, resp.Header.Revision, "member %d vs member 1: revision", i+1)
	}
	return first
}

// collect drains errs (after the writers are done) and fails on the first.
func collect(t *testing.T, errs chan error) {
	t.Helper()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// ---- integration scenarios (etcd_{memory,rocksdb}_integration_test.go) ----

// scenarioSingleNodeOperations drives every KV operation through one
// follower of a 3-member cluster (so each write is forwarded to the leader)
// and checks the exact results on that follower.
func scenarioSingleNodeOperations(t *testing.T, engine string) {
	t.Logf("Step 1: starting 3 %s members; picking a follower", engine)
	c := startAPICluster(t, engine, 3)
	follower := (c.leaderIndex(t) + 1) % 3
	cli := newClient(t, c.members[follower].endpoint())

	t.Logf("Step 2: put, overwrite, get on member %d", follower+1)
	require.Equal(t, int64(2), mustPut(t, cli, "k", "v1").Header.Revision)
	put := mustPut(t, cli, "k", "v2", clientv3.WithPrevKV())
	require.Equal(t, int64(3), put.Header.Revision)
	require.Equal(t, "k=v1 c2 m2 v1", kvString(put.PrevKv))
	require.Equal(t, []string{"k=v2 c2 m3 v2"}, kvStrings(mustGet(t, cli, "k").Kvs))

	t.Logf("Step 3: range, limit, revision read")
	for _, k := range []string{"r/1", "r/2", "r/3"} {
		mustPut(t, cli, k, k)
	}
	get := mustGet(t, cli, "r/", clientv3.WithPrefix(), clientv3.WithLimit(2))
	require.Equal(t, []string{"r/1=r/1 c4 m4 v1", "r/2=r/2 c5 m5 v1"}, kvStrings(get.Kvs))
	require.True(t, get.More)
	require.Equal(t, int64(3), get.Count)
	require.Equal(t, []string{"k=v1 c2 m2 v1"}, kvStrings(mustGet(t, cli, "k", clientv3.WithRev(2)).Kvs))

	t.Logf("Step 4: delete a prefix")
	del, err := cli.Delete(opCtx(t), "r/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	require.NoError(t, err)
	require.Equal(t, int64(3), del.Deleted)
	require.Equal(t, []string{"r/1", "r/2", "r/3"}, keysOf(del.PrevKvs))
	require.Equal(t, int64(7), del.Header.Revision)

	t.Logf("Step 5: txn with compare, success and failure")
	txn, err := cli.Txn(opCtx(t)).If(clientv3.Compare(clientv3.Version("k"), "=", 2)).
		Then(clientv3.OpPut("k", "v3"), clientv3.OpPut("t", "x")).Else(clientv3.OpGet("k")).Commit()
	require.NoError(t, err)
	require.True(t, txn.Succeeded)
	require.Equal(t, int64(8), txn.Header.Revision)
	txn, err = cli.Txn(opCtx(t)).If(clientv3.Compare(clientv3.Version("k"), "=", 2)).
		Then(clientv3.OpPut("k", "v4")).Else(clientv3.OpGet("k")).Commit()
	require.NoError(t, err)
	require.False(t, txn.Succeeded)
	require.Equal(t, []string{"k=v3 c2 m8 v3"}, kvStrings(txn.Responses[0].GetResponseRange().Kvs))

	t.Logf("Step 6: compaction and its errors")
	_, err = cli.Compact(opCtx(t), 7)
	require.NoError(t, err)
	_, err = cli.Get(opCtx(t), "k", clientv3.WithRev(6))
	requireErrIs(t, err, rpctypes.ErrCompacted, "get at 6 after compacting at 7")
	_, err = cli.Get(opCtx(t), "k", clientv3.WithRev(9))
	requireErrIs(t, err, rpctypes.ErrFutureRev, "get at 9 with current 8")

	t.Logf("Step 7: the final state as the follower serves it")
	get = mustGet(t, cli, "", clientv3.WithFromKey())
	require.Equal(t, []string{"k=v3 c2 m8 v3", "t=x c8 m8 v1"}, kvStrings(get.Kvs))
	require.Equal(t, int64(8), get.Header.Revision)
	st, err := cli.Status(opCtx(t), c.members[follower].endpoint())
	require.NoError(t, err)
	require.NotEqual(t, st.Header.MemberId, st.Leader, "member %d is a follower", follower+1)
}

// scenarioWriteOneReadAll writes on one member and reads on all: linearizable
// reads see the write at once; serializable reads see it once each member
// has applied it.
func scenarioWriteOneReadAll(t *testing.T, engine string) {
	const n = 20
	t.Logf("Step 1: starting 3 %s members", engine)
	c := startAPICluster(t, engine, 3)
	clis := c.clients(t)

	t.Logf("Step 2: writing %d keys on member 1", n)
	var last int64
	want := []string{}
	for i := 0; i < n; i++ {
		last = mustPut(t, clis[0], fmt.Sprintf("w/%02d", i), fmt.Sprintf("v%d", i)).Header.Revision
		want = append(want, fmt.Sprintf("w/%02d=v%d c%d m%d v1", i, i, i+2, i+2))
	}
	require.Equal(t, int64(1+n), last)

	t.Logf("Step 3: a linearizable read on every member sees all %d keys at once", n)
	for i, cli := range clis {
		get := mustGet(t, cli, "w/", clientv3.WithPrefix())
		require.Equal(t, want, kvStrings(get.Kvs), "member %d", i+1)
		require.Equal(t, last, get.Header.Revision, "member %d", i+1)
	}

	t.Logf("Step 4: after each member applied revision %d, serializable reads see the same", last)
	waitRevisionEverywhere(t, clis, last)
	for i, cli := range clis {
		get := mustGet(t, cli, "w/", clientv3.WithPrefix(), clientv3.WithSerializable())
		require.Equal(t, want, kvStrings(get.Kvs), "member %d", i+1)
		require.Equal(t, last, get.Header.Revision, "member %d", i+1)
	}

	t.Logf("Step 5: a write on member 3 followed at once by a linearizable read on member 2")
	for i := 0; i < 10; i++ {
		put := mustPut(t, clis[2], "rw", fmt.Sprint(i))
		get := mustGet(t, clis[1], "rw")
		require.Equal(t, []string{fmt.Sprintf("rw=%d c%d m%d v%d", i, last+1, put.Header.Revision, i+1)}, kvStrings(get.Kvs))
	}
}

// scenarioConcurrentWritesAllMembers writes distinct keys from every member
// at once and checks that every member ends with all of them, each write at
// its own revision.
func scenarioConcurrentWritesAllMembers(t *testing.T, engine string) {
	const writersPer, keysPer = 2, 25 // 3 members x 2 writers x 25 keys = 150 puts
	t.Logf("Step 1: starting 3 %s members", engine)
	c := startAPICluster(t, engine, 3)
	clis := c.clients(t)

	total := len(clis) * writersPer * keysPer
	t.Logf("Step 2: %d writers per member put %d keys each (%d puts)", writersPer, keysPer, total)
	var wg sync.WaitGroup
	var mu sync.Mutex
	revs := map[int64]string{}
	errs := make(chan error, len(clis)*writersPer)
	for m, cli := range clis {
		for w := 0; w < writersPer; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < keysPer; k++ {
					key := fmt.Sprintf("c/m%d/w%d/%02d", m+1, w, k)
					put, err := cli.Put(opCtx(t), key, key)
					if err != nil {
						errs <- fmt.Errorf("%s: %w", key, err)
						return
					}
					mu.Lock()
					if other, dup := revs[put.Header.Revision]; dup {
						errs <- fmt.Errorf("%s and %s both at revision %d", other, key, put.Header.Revision)
					}
					revs[put.Header.Revision] = key
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	collect(t, errs)

	t.Logf("Step 3: the %d puts took exactly revisions 2..%d", total, total+1)
	require.Len(t, revs, total)
	for r := int64(2); r <= int64(total+1); r++ {
		require.Contains(t, revs, r)
	}

	t.Logf("Step 4: every member has every key at the revision its put returned")
	waitRevisionEverywhere(t, clis, int64(total+1))
	for _, serializable := range []bool{false, true} {
		opts := []clientv3.OpOption{clientv3.WithPrefix()}
		if serializable {
			opts = append(opts, clientv3.WithSerializable())
		}
		get := rangeEverywhere(t, clis, "c/", opts...)
		require.Len(t, get.Kvs, total)
		require.Equal(t, int64(total+1), get.Header.Revision)
		for _, kv := range get.Kvs {
			require.Equal(t, string(kv.Key), string(kv.Value))
			require.Equal(t, int64(1), kv.Version)
			require.Equal(t, string(kv.Key), revs[kv.ModRevision], "key at mod revision %d", kv.ModRevision)
		}
	}
}

// scenarioUpdatesFromEachMember updates one key from every member, first
// in turn and then concurrently: each update adds exactly one version and
// takes a higher mod revision than the one it replaced.
func scenarioUpdatesFromEachMember(t *testing.T, engine string) {
	const rounds, concurrent = 30, 20
	t.Logf("Step 1: starting 3 %s members", engine)
	c := startAPICluster(t, engine, 3)
	clis := c.clients(t)

	t.Logf("Step 2: %d updates of one key, member by member in turn", rounds)
	prevRev := int64(1)
	for i := 0; i < rounds; i++ {
		put := mustPut(t, clis[i%3], "shared", fmt.Sprint(i), clientv3.WithPrevKV())
		require.Equal(t, prevRev+1, put.Header.Revision, "update %d", i)
		if i > 0 {
			require.Equal(t, int64(i), put.PrevKv.Version, "update %d replaced version %d", i, i)
			require.Equal(t, prevRev, put.PrevKv.ModRevision)
		}
		get := mustGet(t, clis[(i+1)%3], "shared")
		require.Equal(t, []string{fmt.Sprintf("shared=%d c2 m%d v%d", i, put.Header.Revision, i+1)}, kvStrings(get.Kvs))
		prevRev = put.Header.Revision
	}

	t.Logf("Step 3: %d concurrent updates from each member", concurrent)
	type upd struct{ prevVer, prevMod, rev int64 }
	var mu sync.Mutex
	var ups []upd
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for m, cli := range clis {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < concurrent; i++ {
				put, err := cli.Put(opCtx(t), "shared", fmt.Sprintf("m%d-%d", m+1, i), clientv3.WithPrevKV())
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				ups = append(ups, upd{put.PrevKv.Version, put.PrevKv.ModRevision, put.Header.Revision})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	collect(t, errs)

	t.Logf("Step 4: the updates form one chain: version +1 and a higher mod revision each")
	sort.Slice(ups, func(i, j int) bool { return ups[i].rev < ups[j].rev })
	for i, u := range ups {
		require.Equal(t, int64(rounds+i), u.prevVer, "update %d", i)
		require.Equal(t, prevRev, u.prevMod, "update %d", i)
		require.Equal(t, prevRev+1, u.rev, "update %d", i)
		prevRev = u.rev
	}
	waitRevisionEverywhere(t, clis, prevRev)
	get := rangeEverywhere(t, clis, "shared", clientv3.WithSerializable())
	require.Len(t, get.Kvs, 1)
	require.Equal(t, int64(rounds+3*concurrent), get.Kvs[0].Version)
	require.Equal(t, prevRev, get.Kvs[0].ModRevision)
	require.Equal(t, int64(2), get.Kvs[0].CreateRevision)
}
