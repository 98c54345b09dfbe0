package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Unmodified etcdctl v3.7.3 against MetaStore: the outputs asserted here are
// etcdctl's own formats (checked against real etcd with etcdBinEnv).

// etcdctlBin finds etcdctl: $ETCDCTL_BIN, then the shared peer build
// (/work/shared/peers/etcd/build.sh), then a local build in /tmp/etcdpeer.
// It skips the test when there is none.
func etcdctlBin(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("ETCDCTL_BIN"),
		filepath.Join("..", "..", "shared", "peers", "etcd", "bin", "etcdctl"),
		"/tmp/etcdpeer/bin/etcdctl"}
	for _, p := range candidates {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			abs, err := filepath.Abs(p)
			require.NoError(t, err)
			return abs
		}
	}
	t.Skip("etcdctl not found: set ETCDCTL_BIN, or build it with /work/shared/peers/etcd/build.sh " +
		"(expected at ../../shared/peers/etcd/bin/etcdctl or /tmp/etcdpeer/bin/etcdctl)")
	return ""
}

// ctlResult is one etcdctl run.
type ctlResult struct {
	code           int
	stdout, stderr string
}

// etcdctlEnv is the test's environment without ETCDCTL_* variables: the
// tests pass every setting as a flag, and etcdctl warns on stderr about
// variables it does not know (ETCDCTL_BIN, which names its binary here).
func etcdctlEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCDCTL_") {
			env = append(env, kv)
		}
	}
	return env
}

// etcdctl runs etcdctl against eps with stdin and returns its result; a run
// longer than 20 s fails the test.
func etcdctl(t *testing.T, eps []string, stdin string, args ...string) ctlResult {
	t.Helper()
	bin := etcdctlBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	full := append([]string{"--endpoints", strings.Join(eps, ","), "--dial-timeout", "3s", "--command-timeout", "5s"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = etcdctlEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("etcdctl %v did not finish within 20s", args)
	}
	res := ctlResult{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("etcdctl %v: %v", args, err)
	}
	return res
}

// ctlOK runs etcdctl, requires exit 0 and returns stdout.
func ctlOK(t *testing.T, eps []string, args ...string) string {
	t.Helper()
	res := etcdctl(t, eps, "", args...)
	require.Equal(t, 0, res.code, "etcdctl %v: stdout %q stderr %q", args, res.stdout, res.stderr)
	return res.stdout
}

// ctlFails runs etcdctl, requires a non-zero exit and an "Error: <msg>"
// line on stderr.
func ctlFails(t *testing.T, eps []string, msg string, args ...string) {
	t.Helper()
	res := etcdctl(t, eps, "", args...)
	require.NotEqual(t, 0, res.code, "etcdctl %v should fail: stdout %q", args, res.stdout)
	require.Contains(t, res.stderr, "Error: "+msg, "etcdctl %v", args)
}

// startCtlMember starts one member for etcdctl (skipping first if there
// is no etcdctl, so no member is started for nothing).
func startCtlMember(t *testing.T) (*apiCluster, []string) {
	t.Helper()
	etcdctlBin(t)
	c := startAPICluster(t, engineRocksDB, 1)
	return c, c.endpoints()
}

func TestEtcdctl_PutGet(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member")
	_, eps := startCtlMember(t)

	t.Logf("Step 2: put prints OK; get prints key and value lines")
	require.Equal(t, "OK\n", ctlOK(t, eps, "put", "foo", "bar"))
	require.Equal(t, "foo\nbar\n", ctlOK(t, eps, "get", "foo"))
	require.Equal(t, "", ctlOK(t, eps, "get", "missing"))
	for _, kv := range [][2]string{{"a/1", "x"}, {"a/2", "y"}, {"a/3", "z"}} {
		require.Equal(t, "OK\n", ctlOK(t, eps, "put", kv[0], kv[1]))
	}
	require.Equal(t, "OK\n", ctlOK(t, eps, "put", "foo", "bar2")) // revision 6

	t.Logf("Step 3: --prefix, --limit, ranges, --from-key, sorting")
	require.Equal(t, "a/1\nx\na/2\ny\na/3\nz\n", ctlOK(t, eps, "get", "--prefix", "a/"))
	require.Equal(t, "a/1\nx\na/2\ny\n", ctlOK(t, eps, "get", "--prefix", "a/", "--limit", "2"))
	require.Equal(t, "a/1\nx\na/2\ny\n", ctlOK(t, eps, "get", "a/1", "a/3"))
	require.Equal(t, "a/3\nz\nfoo\nbar2\n", ctlOK(t, eps, "get", "--from-key", "a/3"))
	require.Equal(t, "a/3\nz\na/2\ny\na/1\nx\n", ctlOK(t, eps, "get", "--prefix", "a/", "--sort-by", "MODIFY", "--order", "DESCEND"))

	t.Logf("Step 4: --rev reads the past")
	require.Equal(t, "foo\nbar\n", ctlOK(t, eps, "get", "foo", "--rev", "2"))
	require.Equal(t, "", ctlOK(t, eps, "get", "foo", "--rev", "1"))
	require.Equal(t, "foo\nbar2\n", ctlOK(t, eps, "get", "foo", "--rev", "6"))
	ctlFails(t, eps, "etcdserver: mvcc: required revision is a future revision", "get", "foo", "--rev", "7")

	t.Logf("Step 5: --keys-only prints keys and empty values, --print-value-only only values")
	require.Equal(t, "a/1\n\na/2\n\na/3\n\n", ctlOK(t, eps, "get", "--prefix", "a/", "--keys-only"))
	require.Equal(t, "x\ny\nz\n", ctlOK(t, eps, "get", "--prefix", "a/", "--print-value-only"))

	t.Logf("Step 6: put --prev-kv prints the replaced key and value; --count-only with fields output")
	require.Equal(t, "OK\nfoo\nbar2\n", ctlOK(t, eps, "put", "--prev-kv", "foo", "bar3"))
	require.Contains(t, ctlOK(t, eps, "get", "--prefix", "a/", "--count-only", "-w", "fields"), "\"Count\" : 3\n")

	t.Logf("Step 7: an empty key is refused with etcd's message")
	ctlFails(t, eps, "etcdserver: key is not provided", "put", "", "x")
}

func TestEtcdctl_GetJSON(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; foo=bar (2), foo=baz (3), goo=1 (4)")
	c, eps := startCtlMember(t)
	for _, kv := range [][2]string{{"foo", "bar"}, {"foo", "baz"}, {"goo", "1"}} {
		ctlOK(t, eps, "put", kv[0], kv[1])
	}
	st, err := statusOf(c.members[0].endpoint())
	require.NoError(t, err)

	t.Logf("Step 2: get -w json parses as etcd's RangeResponse with exact fields")
	var resp pb.RangeResponse
	require.NoError(t, json.Unmarshal([]byte(ctlOK(t, eps, "get", "foo", "-w", "json")), &resp))
	require.Equal(t, st.Header.ClusterId, resp.Header.ClusterId)
	require.Equal(t, st.Header.MemberId, resp.Header.MemberId)
	require.Equal(t, int64(4), resp.Header.Revision)
	require.NotZero(t, resp.Header.RaftTerm)
	require.Equal(t, []string{"foo=baz c2 m3 v2"}, kvStrings(resp.Kvs))
	require.Equal(t, int64(1), resp.Count)

	t.Logf("Step 3: prefix with limit in json: more and count")
	resp = pb.RangeResponse{}
	require.NoError(t, json.Unmarshal([]byte(ctlOK(t, eps, "get", "--prefix", "", "--limit", "1", "-w", "json")), &resp))
	require.Equal(t, []string{"foo=baz c2 m3 v2"}, kvStrings(resp.Kvs))
	require.True(t, resp.More)
	require.Equal(t, int64(2), resp.Count)

	t.Logf("Step 4: a miss in json has a header and no kvs")
	resp = pb.RangeResponse{}
	require.NoError(t, json.Unmarshal([]byte(ctlOK(t, eps, "get", "nope", "-w", "json")), &resp))
	require.Empty(t, resp.Kvs)
	require.Equal(t, int64(0), resp.Count)
	require.Equal(t, int64(4), resp.Header.Revision)
}

func TestEtcdctl_Del(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; foo, a/1..a/3, b, c")
	_, eps := startCtlMember(t)
	for _, k := range []string{"foo", "a/1", "a/2", "a/3", "b", "c", "d"} {
		ctlOK(t, eps, "put", k, "v-"+k)
	}

	t.Logf("Step 2: del prints the number deleted; --prev-kv adds the deleted pairs")
	require.Equal(t, "1\nfoo\nv-foo\n", ctlOK(t, eps, "del", "--prev-kv", "foo"))
	require.Equal(t, "0\n", ctlOK(t, eps, "del", "foo"))
	require.Equal(t, "3\n", ctlOK(t, eps, "del", "--prefix", "a/"))
	require.Equal(t, "1\nb\nv-b\n", ctlOK(t, eps, "del", "--range", "--prev-kv", "b", "c"))
	require.Equal(t, "2\n", ctlOK(t, eps, "del", "--from-key", "c"))

	t.Logf("Step 3: nothing is left")
	require.Equal(t, "", ctlOK(t, eps, "get", "--from-key", ""))
}

func TestEtcdctl_TxnInteractive(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; foo=bar, a/1=x")
	_, eps := startCtlMember(t)
	ctlOK(t, eps, "put", "foo", "bar")
	ctlOK(t, eps, "put", "a/1", "x")
	prompts := "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n"

	t.Logf("Step 2: a txn typed on stdin takes the success branch")
	res := etcdctl(t, eps, "value(\"foo\") = \"bar\"\n\nput foo baz\nget a/1\n\nget foo\n\n", "txn", "-i")
	require.Equal(t, 0, res.code, res.stderr)
	require.Equal(t, prompts+"SUCCESS\n\nOK\n\na/1\nx\n", res.stdout)
	require.Equal(t, "foo\nbaz\n", ctlOK(t, eps, "get", "foo"))

	t.Logf("Step 3: the same txn now takes the failure branch")
	res = etcdctl(t, eps, "value(\"foo\") = \"bar\"\n\nput foo qux\n\nget foo\n\n", "txn", "-i")
	require.Equal(t, 0, res.code, res.stderr)
	require.Equal(t, prompts+"FAILURE\n\nfoo\nbaz\n", res.stdout)
	require.Equal(t, "foo\nbaz\n", ctlOK(t, eps, "get", "foo"))

	t.Logf("Step 4: compares on mod, version and create revisions, with a delete")
	res = etcdctl(t, eps, "mod(\"foo\") = \"4\"\nver(\"foo\") = \"2\"\ncreate(\"a/1\") = \"3\"\n\ndel a/1\nput n 1\n\n\n", "txn", "-i")
	require.Equal(t, 0, res.code, res.stderr)
	require.Equal(t, prompts+"SUCCESS\n\n1\n\nOK\n", res.stdout)
	require.Equal(t, "", ctlOK(t, eps, "get", "a/1"))

	t.Logf("Step 5: non-interactive txn with json output")
	res = etcdctl(t, eps, "create(\"new\") = \"0\"\n\nput new 1\n\n\n", "txn", "-w", "json")
	require.Equal(t, 0, res.code, res.stderr)
	var out struct {
		Header    struct{ Revision int64 }
		Succeeded bool
		Responses []map[string]map[string]json.RawMessage
	}
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &out), res.stdout)
	require.True(t, out.Succeeded)
	require.Equal(t, int64(6), out.Header.Revision)
	require.Len(t, out.Responses, 1)
	require.Contains(t, out.Responses[0]["Response"], "response_put")
	require.Equal(t, "new\n1\n", ctlOK(t, eps, "get", "new"))

	t.Logf("Step 6: a txn writing one key twice fails with etcd's error")
	res = etcdctl(t, eps, "\nput d 1\nput d 2\n\n\n", "txn")
	require.NotEqual(t, 0, res.code)
	require.Contains(t, res.stderr, "Error: etcdserver: duplicate key given in txn request")
}

func TestEtcdctl_Compaction(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; k=v1..v4 at revisions 2..5")
	_, eps := startCtlMember(t)
	for i := 1; i <= 4; i++ {
		ctlOK(t, eps, "put", "k", fmt.Sprintf("v%d", i))
	}

	t.Logf("Step 2: compaction prints the revision; older reads fail")
	require.Equal(t, "compacted revision 3\n", ctlOK(t, eps, "compaction", "3"))
	ctlFails(t, eps, "etcdserver: mvcc: required revision has been compacted", "get", "k", "--rev", "2")
	require.Equal(t, "k\nv2\n", ctlOK(t, eps, "get", "k", "--rev", "3"))

	t.Logf("Step 3: --physical; compacting backwards or ahead fails")
	require.Equal(t, "compacted revision 4\n", ctlOK(t, eps, "compaction", "--physical", "4"))
	ctlFails(t, eps, "etcdserver: mvcc: required revision has been compacted", "compaction", "2")
	ctlFails(t, eps, "etcdserver: mvcc: required revision is a future revision", "compaction", "99")
	require.Equal(t, "k\nv4\n", ctlOK(t, eps, "get", "k"))
}

// ctlCluster starts 3 members, puts k=v (revision 2), waits until every
// member applied it, and returns the cluster and each member's status.
func ctlCluster(t *testing.T) (*apiCluster, []*clientv3.StatusResponse) {
	t.Helper()
	etcdctlBin(t)
	c := startAPICluster(t, engineRocksDB, 3)
	ctlOK(t, c.endpoints(), "put", "k", "v")
	waitRevisionEverywhere(t, c.clients(t), 2)
	var sts []*clientv3.StatusResponse
	for _, m := range c.members {
		st, err := statusOf(m.endpoint())
		require.NoError(t, err)
		sts = append(sts, st)
	}
	return c, sts
}

// TestEtcdctl_MemberList: in etcd a member serves clients only after it has
// published its name and client URLs through raft (embed's serve waits for
// ReadyNotify), so once every member answers, member list shows every
// member's client URLs. MetaStore's serve waits the same way
// (Server.ReadyNotify); before it did (7bc634c), other members were listed
// without client URLs for up to a second, and etcdctl --cluster and
// clientv3's endpoint sync missed them.
func TestEtcdctl_MemberList(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting 3 members; one put applied everywhere")
	c, sts := ctlCluster(t)
	eps := c.endpoints()

	t.Logf("Step 2: member list prints one line per member, ordered by ID as etcd does")
	type line struct {
		id   uint64
		text string
	}
	var want []line
	for i, m := range c.members {
		id := sts[i].Header.MemberId
		want = append(want, line{id, fmt.Sprintf("%x, started, %s, %s, %s, false", id, m.name, m.peerURL, m.clientURL)})
	}
	sort.Slice(want, func(i, j int) bool { return want[i].id < want[j].id })
	var wantOut string
	for _, l := range want {
		wantOut += l.text + "\n"
	}
	require.Equal(t, wantOut, ctlOK(t, eps, "member", "list"),
		"every member's client URLs are listed once all members serve")

	t.Logf("Step 3: member list -w json carries the same members")
	var ml pb.MemberListResponse
	require.NoError(t, json.Unmarshal([]byte(ctlOK(t, eps, "member", "list", "-w", "json")), &ml))
	require.Len(t, ml.Members, 3)
	for _, m := range ml.Members {
		found := false
		for i, cm := range c.members {
			if sts[i].Header.MemberId == m.ID {
				found = true
				require.Equal(t, cm.name, m.Name)
				require.Equal(t, []string{cm.peerURL}, m.PeerURLs)
				require.Equal(t, []string{cm.clientURL}, m.ClientURLs)
				require.False(t, m.IsLearner)
			}
		}
		require.True(t, found, "member %x", m.ID)
	}

	t.Logf("Step 4: endpoint status --cluster, given one endpoint, finds all three client URLs through member list")
	var js []struct {
		Endpoint string
		Status   *pb.StatusResponse
	}
	require.NoError(t, json.Unmarshal([]byte(ctlOK(t, eps[:1], "endpoint", "status", "--cluster", "-w", "json")), &js))
	var got []string
	for _, s := range js {
		got = append(got, s.Endpoint)
	}
	sort.Strings(got)
	var wantURLs []string
	for _, m := range c.members {
		wantURLs = append(wantURLs, m.clientURL)
	}
	sort.Strings(wantURLs)
	require.Equal(t, wantURLs, got, "--cluster uses the client URLs from member list")
}

func TestEtcdctl_EndpointStatusHashKVMoveLeader(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting 3 members; one put applied everywhere")
	c, sts := ctlCluster(t)
	eps := c.endpoints()

	t.Logf("Step 2: endpoint status: one line per endpoint with ID, version, leadership, raft term")
	out := ctlOK(t, eps, "endpoint", "status")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 3, out)
	for i, line := range lines {
		f := strings.Split(line, ", ")
		require.GreaterOrEqual(t, len(f), 13, line)
		st := sts[i]
		require.Equal(t, eps[i], f[0])
		require.Equal(t, fmt.Sprintf("%x", st.Header.MemberId), f[1])
		require.Equal(t, st.Version, f[2])
		require.Equal(t, fmt.Sprint(st.Leader == st.Header.MemberId), f[8], line)
		require.Equal(t, "false", f[9], line)
		require.Equal(t, fmt.Sprint(st.RaftTerm), f[10], line)
	}

	t.Logf("Step 3: endpoint status -w json: revision 2, one leader that all agree on")
	var js []struct {
		Endpoint string
		Status   *pb.StatusResponse
	}
	require.NoError(t, json.Unmarshal([]byte(ctlOK(t, eps, "endpoint", "status", "-w", "json")), &js))
	require.Len(t, js, 3)
	leaders := 0
	for i, s := range js {
		require.Equal(t, eps[i], s.Endpoint)
		require.Equal(t, int64(2), s.Status.Header.Revision, s.Endpoint)
		require.Equal(t, sts[0].Leader, s.Status.Leader, s.Endpoint)
		require.Equal(t, sts[i].Header.MemberId, s.Status.Header.MemberId, s.Endpoint)
		if s.Status.Leader == s.Status.Header.MemberId {
			leaders++
		}
	}
	require.Equal(t, 1, leaders)

	t.Logf("Step 4: endpoint hashkv prints the same hash at revision 2 for every member")
	out = ctlOK(t, eps, "endpoint", "hashkv", "--rev", "2")
	lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 3, out)
	h, err := newClient(t, eps[0]).HashKV(opCtx(t), eps[0], 2)
	require.NoError(t, err)
	for i, line := range lines {
		require.Equal(t, fmt.Sprintf("%s, %d, 2", eps[i], h.Hash), line)
	}

	leader := sts[0].Leader
	var target uint64
	for _, st := range sts {
		if st.Header.MemberId != leader {
			target = st.Header.MemberId
			break
		}
	}
	t.Logf("Step 5: move-leader hands leadership from %x to %x; every member then names the new leader", leader, target)
	require.Equal(t, fmt.Sprintf("Leadership transferred from %x to %x\n", leader, target),
		ctlOK(t, eps, "move-leader", fmt.Sprintf("%x", target)))
	waitFor(t, 10*time.Second, "every member to name the new leader", func() bool {
		for _, ep := range eps {
			st, err := statusOf(ep)
			if err != nil || st.Leader != target {
				return false
			}
		}
		return true
	})
	ctlFails(t, eps, "etcdserver: bad leader transferee", "move-leader", "1234")
}

func TestEtcdctl_AlarmDefragDowngrade(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member")
	_, eps := startCtlMember(t)
	st, err := statusOf(eps[0])
	require.NoError(t, err)
	var major, minor int
	_, err = fmt.Sscanf(st.Version, "%d.%d", &major, &minor)
	require.NoError(t, err, st.Version)
	cluster := fmt.Sprintf("%d.%d", major, minor)
	prev := fmt.Sprintf("%d.%d", major, minor-1)

	t.Logf("Step 2: alarm list and alarm disarm print nothing when there are no alarms")
	require.Equal(t, "", ctlOK(t, eps, "alarm", "list"))
	require.Equal(t, "", ctlOK(t, eps, "alarm", "disarm"))
	var al pb.AlarmResponse
	require.NoError(t, json.Unmarshal([]byte(ctlOK(t, eps, "alarm", "list", "-w", "json")), &al))
	require.Empty(t, al.Alarms)
	require.Equal(t, st.Header.MemberId, al.Header.MemberId)

	t.Logf("Step 3: defrag reports the member it defragmented")
	require.Regexp(t, `^Finished defragmenting etcd member\[`+regexp.QuoteMeta(eps[0])+`\]\. took \S+\n$`, ctlOK(t, eps, "defrag"))

	t.Logf("Step 4: downgrade validate/enable/cancel to %s with cluster version %s; two minors down is refused", prev, cluster)
	require.Equal(t, "Downgrade validate success, cluster version "+cluster+"\n", ctlOK(t, eps, "downgrade", "validate", prev))
	ctlFails(t, eps, "etcdserver: invalid downgrade target version", "downgrade", "validate", fmt.Sprintf("%d.%d", major, minor-2))
	require.Equal(t, "Downgrade enable success, cluster version "+cluster+"\n", ctlOK(t, eps, "downgrade", "enable", prev))
	var js []struct {
		Endpoint string
		Status   *pb.StatusResponse
	}
	require.NoError(t, json.Unmarshal([]byte(ctlOK(t, eps, "endpoint", "status", "-w", "json")), &js))
	require.Len(t, js, 1)
	require.NotNil(t, js[0].Status.DowngradeInfo)
	require.True(t, js[0].Status.DowngradeInfo.Enabled)
	require.Equal(t, prev+".0", js[0].Status.DowngradeInfo.TargetVersion)
	require.Equal(t, "Downgrade cancel success, cluster version "+cluster+"\n", ctlOK(t, eps, "downgrade", "cancel"))
}

// NB: etcdctl endpoint health reads a key and then lists alarms
// (Maintenance.Alarm, ALARM_GET); an endpoint whose alarm list cannot be
// fetched, or has alarms, is reported unhealthy.
func TestEtcdctl_EndpointHealth(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member")
	_, eps := startCtlMember(t)

	t.Logf("Step 2: endpoint health reports the endpoint healthy, in text and json")
	res := etcdctl(t, eps, "", "endpoint", "health")
	require.Equal(t, 0, res.code, "stdout %q stderr %q", res.stdout, res.stderr)
	healthy := regexp.MustCompile(`^(\S+) is healthy: successfully committed proposal: took = \S+$`)
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		m := healthy.FindStringSubmatch(line)
		require.NotNil(t, m, "line %q", line)
		got = append(got, m[1])
	}
	sort.Strings(got)
	wantEps := append([]string{}, eps...)
	sort.Strings(wantEps)
	require.Equal(t, wantEps, got)
	var hj []struct {
		Endpoint string `json:"endpoint"`
		Health   bool   `json:"health"`
		Error    string `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(ctlOK(t, eps, "endpoint", "health", "-w", "json")), &hj))
	require.Len(t, hj, len(eps))
	for _, h := range hj {
		require.True(t, h.Health, "%s: %s", h.Endpoint, h.Error)
	}
}

func TestEtcdctl_MemberAddUpdatePromoteRemove(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member")
	c, eps := startCtlMember(t)
	st, err := statusOf(eps[0])
	require.NoError(t, err)
	selfID := st.Header.MemberId
	self := fmt.Sprintf("%x, started, m1, %s, %s, false", selfID, c.members[0].peerURL, c.members[0].clientURL)
	ports := freePorts(t, 2)
	url1, url2 := fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])

	t.Logf("Step 2: member add --learner prints the new ID and the environment to start it with")
	out := ctlOK(t, eps, "member", "add", "m4", "--peer-urls", url1, "--learner")
	m := regexp.MustCompile(`^Member +([0-9a-f]+) added as learner to cluster +([0-9a-f]+)\n`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	hexID := m[1]
	id, err := strconv.ParseUint(hexID, 16, 64)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("%x", st.Header.ClusterId), m[2])
	// etcdctl prints IDs with %16x, and lists the members of the MemberAdd
	// response, which etcd orders by ID.
	initial := []string{"m4=" + url1, "m1=" + c.members[0].peerURL}
	if selfID < id {
		initial[0], initial[1] = initial[1], initial[0]
	}
	require.Equal(t, m[0]+"\n"+
		"ETCD_NAME=\"m4\"\n"+
		"ETCD_INITIAL_CLUSTER=\""+strings.Join(initial, ",")+"\"\n"+
		"ETCD_INITIAL_ADVERTISE_PEER_URLS=\""+url1+"\"\n"+
		"ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n", out)

	t.Logf("Step 3: member list shows the learner as unstarted, members ordered by ID")
	requireMembers := func(learnerURL string) {
		t.Helper()
		want := self + "\n"
		if learnerURL != "" {
			learner := fmt.Sprintf("%s, unstarted, , %s, , true\n", hexID, learnerURL)
			if id < selfID {
				want = learner + want
			} else {
				want += learner
			}
		}
		require.Equal(t, want, ctlOK(t, eps, "member", "list"))
	}
	requireMembers(url1)

	t.Logf("Step 4: promoting a learner that never started fails with etcd's error")
	ctlFails(t, eps, "etcdserver: can only promote a learner member which is in sync with leader", "member", "promote", hexID)

	t.Logf("Step 5: member update moves its peer URL")
	require.Equal(t, fmt.Sprintf("Member %16x updated in cluster %16x\n", id, st.Header.ClusterId),
		ctlOK(t, eps, "member", "update", hexID, "--peer-urls", url2))
	requireMembers(url2)

	t.Logf("Step 6: member remove removes it; removing it again fails")
	require.Equal(t, fmt.Sprintf("Member %16x removed from cluster %16x\n", id, st.Header.ClusterId),
		ctlOK(t, eps, "member", "remove", hexID))
	ctlFails(t, eps, "etcdserver: member not found", "member", "remove", hexID)
	requireMembers("")
}
