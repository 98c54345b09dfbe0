package test

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Consistency scenarios for etcd_{memory,rocksdb}_consistency_test.go: after
// writes through different members settle, every member holds the same
// data, answers every range the same, and is at the same revision with the
// same HashKV.

// kvModel is the expected keyspace of a sequential write history: each write
// is applied with the revision its response returned.
type kvModel map[string]*mvccpb.KeyValue

func (m kvModel) put(k, v string, rev int64) {
	if kv, ok := m[k]; ok {
		kv.Value, kv.ModRevision, kv.Version = []byte(v), rev, kv.Version+1
		return
	}
	m[k] = &mvccpb.KeyValue{Key: []byte(k), Value: []byte(v), CreateRevision: rev, ModRevision: rev, Version: 1}
}

func (m kvModel) del(k string) { delete(m, k) }

// want renders the model's keys with prefix in key order, as kvStrings does.
func (m kvModel) want(prefix string) []string {
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := []string{}
	for _, k := range keys {
		out = append(out, kvString(m[k]))
	}
	return out
}

// requireSameHashKV requires every member to report the same HashKV at rev,
// hashed at exactly rev, and returns it.
func requireSameHashKV(t *testing.T, c *apiCluster, clis []*clientv3.Client, rev int64) uint32 {
	t.Helper()
	var hash uint32
	var compactRev int64
	for i, cli := range clis {
		h, err := cli.HashKV(opCtx(t), c.members[i].endpoint(), rev)
		require.NoError(t, err, "member %d", i+1)
		require.Equal(t, rev, h.HashRevision, "member %d", i+1)
		if i == 0 {
			hash, compactRev = h.Hash, h.CompactRevision
			continue
		}
		require.Equal(t, hash, h.Hash, "member %d vs member 1: HashKV at %d", i+1, rev)
		require.Equal(t, compactRev, h.CompactRevision, "member %d vs member 1: compact revision", i+1)
	}
	return hash
}

// scenarioDataIdenticalAfterWrites puts, overwrites and deletes through all
// members in turn, then requires every member to hold exactly the modelled
// keyspace.
func scenarioDataIdenticalAfterWrites(t *testing.T, engine string) {
	const puts = 60
	t.Logf("Step 1: starting 3 %s members", engine)
	c := startAPICluster(t, engine, 3)
	clis := c.clients(t)
	model := kvModel{}

	t.Logf("Step 2: %d puts over 25 keys and 5 deletes, member by member in turn", puts)
	rev := int64(1)
	for i := 0; i < puts; i++ {
		k, v := fmt.Sprintf("d/%02d", i%25), fmt.Sprintf("v%d-m%d", i, i%3+1)
		rev = mustPut(t, clis[i%3], k, v).Header.Revision
		model.put(k, v, rev)
	}
	for i := 0; i < 5; i++ {
		k := fmt.Sprintf("d/%02d", i*5)
		del, err := clis[i%3].Delete(opCtx(t), k)
		require.NoError(t, err)
		require.Equal(t, int64(1), del.Deleted)
		require.Equal(t, rev+1, del.Header.Revision)
		rev = del.Header.Revision
		model.del(k)
	}
	require.Equal(t, int64(1+puts+5), rev)

	t.Logf("Step 3: every member serves exactly the model at revision %d", rev)
	waitRevisionEverywhere(t, clis, rev)
	want := model.want("d/")
	require.Len(t, want, 20)
	for _, opts := range [][]clientv3.OpOption{{clientv3.WithPrefix()}, {clientv3.WithPrefix(), clientv3.WithSerializable()}} {
		get := rangeEverywhere(t, clis, "d/", opts...)
		require.Equal(t, want, kvStrings(get.Kvs))
		require.Equal(t, rev, get.Header.Revision)
	}
	requireSameHashKV(t, c, clis, rev)
}

// scenarioSequentialWrites updates one key through the members in turn and
// requires every member to return the same value at every revision.
func scenarioSequentialWrites(t *testing.T, engine string) {
	const n = 45
	t.Logf("Step 1: starting 3 %s members", engine)
	c := startAPICluster(t, engine, 3)
	clis := c.clients(t)

	t.Logf("Step 2: %d sequential puts of one key, each on the next member: revisions 2..%d", n, n+1)
	for i := 0; i < n; i++ {
		put := mustPut(t, clis[i%3], "seq", fmt.Sprint(i))
		require.Equal(t, int64(i+2), put.Header.Revision, "put %d", i)
	}

	t.Logf("Step 3: at every revision every member returns the same, exact version")
	waitRevisionEverywhere(t, clis, n+1)
	for r := int64(2); r <= n+1; r++ {
		get := rangeEverywhere(t, clis, "seq", clientv3.WithRev(r), clientv3.WithSerializable())
		require.Equal(t, []string{fmt.Sprintf("seq=%d c2 m%d v%d", r-2, r, r-1)}, kvStrings(get.Kvs))
		require.Equal(t, int64(n+1), get.Header.Revision)
	}
	requireSameHashKV(t, c, clis, n+1)
}

// scenarioRangesIdentical runs every kind of range on every member and
// requires identical, exact answers.
func scenarioRangesIdentical(t *testing.T, engine string) {
	t.Logf("Step 1: starting 3 %s members; writing the sort fixture through member 2 and x/0..x/9 through all", engine)
	c := startAPICluster(t, engine, 3)
	clis := c.clients(t)
	writeSortFixture(t, clis[1]) // revisions 2..7
	for i := 0; i < 10; i++ {
		mustPut(t, clis[i%3], fmt.Sprintf("x/%d", i), fmt.Sprint(9-i)) // revisions 8..17
	}
	waitRevisionEverywhere(t, clis, 17)

	t.Logf("Step 2: each range, linearizable and serializable, is identical on all members and exact")
	cases := []struct {
		name  string
		key   string
		opts  []clientv3.OpOption
		keys  []string
		count int64
		more  bool
	}{
		{"prefix", "s/", []clientv3.OpOption{clientv3.WithPrefix()}, []string{"s/a", "s/b", "s/c"}, 3, false},
		{"range", "s/b", []clientv3.OpOption{clientv3.WithRange("x/2")}, []string{"s/b", "s/c", "x/0", "x/1"}, 4, false},
		{"from key", "x/7", []clientv3.OpOption{clientv3.WithFromKey()}, []string{"x/7", "x/8", "x/9"}, 3, false},
		{"limit", "x/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(3)}, []string{"x/0", "x/1", "x/2"}, 10, true},
		{"sort by value", "x/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortAscend), clientv3.WithLimit(2)}, []string{"x/9", "x/8"}, 10, true},
		{"sort by mod desc", "s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend)}, []string{"s/b", "s/c", "s/a"}, 3, false},
		{"sort by create", "s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend)}, []string{"s/b", "s/c", "s/a"}, 3, false},
		{"keys only", "s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly()}, []string{"s/a", "s/b", "s/c"}, 3, false},
		{"count only", "x/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly()}, []string{}, 10, false},
		{"at revision 5", "s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(5)}, []string{"s/a", "s/b", "s/c"}, 3, false},
		{"at revision 3", "", []clientv3.OpOption{clientv3.WithFromKey(), clientv3.WithRev(3)}, []string{"s/b", "s/c"}, 2, false},
		{"min mod 15", "x/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMinModRev(15)}, []string{"x/7", "x/8", "x/9"}, 10, false},
		{"everything", "", []clientv3.OpOption{clientv3.WithFromKey(), clientv3.WithKeysOnly()}, []string{"s/a", "s/b", "s/c", "x/0", "x/1", "x/2", "x/3", "x/4", "x/5", "x/6", "x/7", "x/8", "x/9"}, 13, false},
	}
	for _, tc := range cases {
		for _, serializable := range []bool{false, true} {
			opts := tc.opts
			if serializable {
				opts = append(append([]clientv3.OpOption{}, tc.opts...), clientv3.WithSerializable())
			}
			get := rangeEverywhere(t, clis, tc.key, opts...)
			require.Equal(t, tc.keys, keysOf(get.Kvs), "%s (serializable %v)", tc.name, serializable)
			require.Equal(t, tc.count, get.Count, "%s (serializable %v)", tc.name, serializable)
			require.Equal(t, tc.more, get.More, "%s (serializable %v)", tc.name, serializable)
			require.Equal(t, int64(17), get.Header.Revision, tc.name)
		}
	}
	require.Equal(t, []string{"x/3=6 c11 m11 v1"}, kvStrings(rangeEverywhere(t, clis, "x/3", clientv3.WithSerializable()).Kvs))
}

// scenarioDeletes deletes a key, a range and a prefix through different
// members and requires the same survivors everywhere, with the deleted keys
// still readable at the revision before.
func scenarioDeletes(t *testing.T, engine string) {
	t.Logf("Step 1: starting 3 %s members; writing a/0..a/9 and b/0..b/9 (revisions 2..21)", engine)
	c := startAPICluster(t, engine, 3)
	clis := c.clients(t)
	model := kvModel{}
	rev := int64(1)
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("%c/%d", 'a'+i/10, i%10)
		rev = mustPut(t, clis[i%3], k, k).Header.Revision
		model.put(k, k, rev)
	}
	before := model.want("")

	t.Logf("Step 2: delete a/0 on member 1, [a/3, a/7) on member 2, prefix b/ on member 3, a missing key on member 1")
	steps := []struct {
		cli     *clientv3.Client
		key     string
		opts    []clientv3.OpOption
		deleted int64
		gone    []string
	}{
		{clis[0], "a/0", nil, 1, []string{"a/0"}},
		{clis[1], "a/3", []clientv3.OpOption{clientv3.WithRange("a/7")}, 4, []string{"a/3", "a/4", "a/5", "a/6"}},
		{clis[2], "b/", []clientv3.OpOption{clientv3.WithPrefix()}, 10, []string{"b/0", "b/1", "b/2", "b/3", "b/4", "b/5", "b/6", "b/7", "b/8", "b/9"}},
		{clis[0], "a/0", nil, 0, []string{}},
	}
	for i, s := range steps {
		del, err := s.cli.Delete(opCtx(t), s.key, append([]clientv3.OpOption{clientv3.WithPrevKV()}, s.opts...)...)
		require.NoError(t, err, "delete %d", i)
		require.Equal(t, s.deleted, del.Deleted, "delete %d", i)
		require.Equal(t, s.gone, keysOf(del.PrevKvs), "delete %d", i)
		if s.deleted > 0 {
			rev++
		}
		require.Equal(t, rev, del.Header.Revision, "delete %d", i)
		for _, k := range s.gone {
			model.del(k)
		}
	}
	require.Equal(t, int64(24), rev)

	t.Logf("Step 3: every member has the same survivors now and the full set at revision 21")
	waitRevisionEverywhere(t, clis, rev)
	get := rangeEverywhere(t, clis, "", clientv3.WithFromKey(), clientv3.WithSerializable())
	require.Equal(t, model.want(""), kvStrings(get.Kvs))
	require.Equal(t, []string{"a/1", "a/2", "a/7", "a/8", "a/9"}, keysOf(get.Kvs))
	require.Equal(t, before, kvStrings(rangeEverywhere(t, clis, "", clientv3.WithFromKey(), clientv3.WithRev(21)).Kvs))
	require.Equal(t, []string{"a/1", "a/2", "a/3", "a/4", "a/5", "a/6", "a/7", "a/8", "a/9"},
		keysOf(rangeEverywhere(t, clis, "a/", clientv3.WithPrefix(), clientv3.WithRev(22), clientv3.WithSerializable()).Kvs))
	requireSameHashKV(t, c, clis, rev)
}

// scenarioTxnResults runs compare-and-swap txns concurrently through all
// members and requires the exact final counter, then the same txn outcome
// for read-only txns on every member.
func scenarioTxnResults(t *testing.T, engine string) {
	const incs = 10 // per member
	t.Logf("Step 1: starting 3 %s members; counter=0 at 2", engine)
	c := startAPICluster(t, engine, 3)
	clis := c.clients(t)
	mustPut(t, clis[0], "counter", "0")

	t.Logf("Step 2: every member increments the counter %d times with compare-and-swap, concurrently", incs)
	var wg sync.WaitGroup
	errs := make(chan error, len(clis))
	for _, cli := range clis {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- casIncrements(t, cli, incs, 50*incs, func(n int) []clientv3.Op {
				return []clientv3.Op{clientv3.OpPut(fmt.Sprintf("log/%03d", n), "")}
			})
		}()
	}
	wg.Wait()
	collect(t, errs)

	total := 3 * incs
	final := int64(2 + total)
	t.Logf("Step 3: counter=%d at revision %d on every member, with one log key per increment", total, final)
	waitRevisionEverywhere(t, clis, final)
	get := rangeEverywhere(t, clis, "counter", clientv3.WithSerializable())
	require.Equal(t, []string{fmt.Sprintf("counter=%d c2 m%d v%d", total, final, total+1)}, kvStrings(get.Kvs))
	logs := rangeEverywhere(t, clis, "log/", clientv3.WithPrefix(), clientv3.WithSerializable())
	require.Len(t, logs.Kvs, total)
	for i, kv := range logs.Kvs {
		require.Equal(t, fmt.Sprintf("log/%03d= c%d m%d v1", i+1, i+3, i+3), kvString(kv))
	}

	t.Logf("Step 4: the same read-only txns give the same, exact outcome on every member")
	counterKV := fmt.Sprintf("counter=%d c2 m%d v%d", total, final, total+1)
	for _, tc := range []struct {
		cmp  clientv3.Cmp
		want string
	}{
		{clientv3.Compare(clientv3.Value("counter"), "=", fmt.Sprint(total)), fmt.Sprintf("true [%s] 1 @%d", counterKV, final)},
		{clientv3.Compare(clientv3.Version("counter"), "<", int64(total)), fmt.Sprintf("false [] %d @%d", total, final)},
		{clientv3.Compare(clientv3.ModRevision("log/"), "<", final+1).WithPrefix(), fmt.Sprintf("true [%s] 1 @%d", counterKV, final)},
		{clientv3.Compare(clientv3.CreateRevision("log/"), ">", final-1).WithPrefix(), fmt.Sprintf("false [] %d @%d", total, final)},
	} {
		for i, cli := range clis {
			resp, err := cli.Txn(opCtx(t)).If(tc.cmp).Then(clientv3.OpGet("counter")).Else(clientv3.OpGet("log/", clientv3.WithPrefix(), clientv3.WithCountOnly())).Commit()
			require.NoError(t, err)
			r := resp.Responses[0].GetResponseRange()
			got := fmt.Sprintf("%v %v %d @%d", resp.Succeeded, kvStrings(r.Kvs), r.Count, resp.Header.Revision)
			require.Equal(t, tc.want, got, "member %d", i+1)
		}
	}
	requireSameHashKV(t, c, clis, final)
}

// scenarioConcurrentMixedOps runs puts, deletes and txns on a small shared
// key set from every member at once, then requires identical state, the
// same revision and the same HashKV everywhere.
func scenarioConcurrentMixedOps(t *testing.T, engine string) {
	const workersPer, ops, keys = 2, 40, 8
	t.Logf("Step 1: starting 3 %s members", engine)
	c := startAPICluster(t, engine, 3)
	clis := c.clients(t)

	t.Logf("Step 2: %d workers per member each run %d mixed ops on %d shared keys", workersPer, ops, keys)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var maxRev int64
	errs := make(chan error, len(clis)*workersPer)
	for m, cli := range clis {
		for w := 0; w < workersPer; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < ops; i++ {
					k := fmt.Sprintf("mix/%d", (i*7+m*3+w)%keys)
					var rev int64
					switch i % 4 {
					case 0, 1:
						resp, err := cli.Put(opCtx(t), k, fmt.Sprintf("m%d-w%d-%d", m+1, w, i))
						if err != nil {
							errs <- err
							return
						}
						rev = resp.Header.Revision
					case 2:
						resp, err := cli.Delete(opCtx(t), k)
						if err != nil {
							errs <- err
							return
						}
						rev = resp.Header.Revision
					case 3:
						resp, err := cli.Txn(opCtx(t)).If(clientv3.Compare(clientv3.Version(k), ">", 0)).
							Then(clientv3.OpPut(k, "txn-updated", clientv3.WithIgnoreLease())).
							Else(clientv3.OpPut(k, "txn-created")).Commit()
						if err != nil {
							errs <- err
							return
						}
						rev = resp.Header.Revision
					}
					mu.Lock()
					maxRev = max(maxRev, rev)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	collect(t, errs)

	t.Logf("Step 3: every member settles at revision %d", maxRev)
	waitRevisionEverywhere(t, clis, maxRev)
	for i, cli := range clis {
		get := mustGet(t, cli, "mix/", clientv3.WithPrefix(), clientv3.WithSerializable())
		require.Equal(t, maxRev, get.Header.Revision, "member %d is at the last write's revision", i+1)
	}

	t.Logf("Step 4: identical data, linearizable and serializable, and identical HashKV")
	lin := rangeEverywhere(t, clis, "mix/", clientv3.WithPrefix())
	ser := rangeEverywhere(t, clis, "mix/", clientv3.WithPrefix(), clientv3.WithSerializable())
	require.Equal(t, kvStrings(lin.Kvs), kvStrings(ser.Kvs))
	for _, kv := range lin.Kvs {
		require.LessOrEqual(t, kv.ModRevision, maxRev)
		require.LessOrEqual(t, kv.CreateRevision, kv.ModRevision)
	}
	requireSameHashKV(t, c, clis, maxRev)
	for r := maxRev - 5; r < maxRev; r++ {
		requireSameHashKV(t, c, clis, r)
		rangeEverywhere(t, clis, "mix/", clientv3.WithPrefix(), clientv3.WithRev(r), clientv3.WithSerializable())
	}
}

// scenarioRevisionsIdentical writes through all members, compacts through
// one, and requires every member to report exactly the same revision,
// compaction and HashKV at several revisions, and to agree on raft state.
func scenarioRevisionsIdentical(t *testing.T, engine string) {
	const n = 30
	t.Logf("Step 1: starting 3 %s members; %d puts through all members in turn", engine, n)
	c := startAPICluster(t, engine, 3)
	clis := c.clients(t)
	for i := 0; i < n; i++ {
		mustPut(t, clis[i%3], fmt.Sprintf("r/%02d", i%10), fmt.Sprint(i))
	}
	last := int64(n + 1)

	t.Logf("Step 2: compact at 11 through member 3")
	_, err := clis[2].Compact(opCtx(t), 11)
	require.NoError(t, err)

	t.Logf("Step 3: status on every member reports revision %d and the same raft term, leader and indexes", last)
	waitRevisionEverywhere(t, clis, last)
	waitFor(t, 10*time.Second, "every member to report the same applied index", func() bool {
		var idx []uint64
		for _, m := range c.members {
			st, err := statusOf(m.endpoint())
			if err != nil {
				return false
			}
			idx = append(idx, st.RaftAppliedIndex)
		}
		return idx[0] == idx[1] && idx[1] == idx[2]
	})
	var sts []*clientv3.StatusResponse
	for i, m := range c.members {
		st, err := clis[i].Status(opCtx(t), m.endpoint())
		require.NoError(t, err)
		require.Equal(t, last, st.Header.Revision, "member %d", i+1)
		sts = append(sts, st)
	}
	for i := 1; i < 3; i++ {
		require.Equal(t, sts[0].Leader, sts[i].Leader, "member %d", i+1)
		require.Equal(t, sts[0].RaftTerm, sts[i].RaftTerm, "member %d", i+1)
		require.Equal(t, sts[0].RaftAppliedIndex, sts[i].RaftAppliedIndex, "member %d", i+1)
		require.Equal(t, sts[0].Header.ClusterId, sts[i].Header.ClusterId, "member %d", i+1)
		require.NotEqual(t, sts[0].Header.MemberId, sts[i].Header.MemberId, "member %d", i+1)
	}

	t.Logf("Step 4: HashKV is identical at the current revision, at older ones, and reports compaction at 11")
	for _, r := range []int64{last, last - 1, 20, 11} {
		requireSameHashKV(t, c, clis, r)
	}
	h, err := clis[1].HashKV(opCtx(t), c.members[1].endpoint(), last)
	require.NoError(t, err)
	require.Equal(t, int64(11), h.CompactRevision)

	t.Logf("Step 5: the compaction holds on every member")
	for i, cli := range clis {
		_, err := cli.Get(opCtx(t), "r/00", clientv3.WithRev(10), clientv3.WithSerializable())
		requireErrIs(t, err, rpctypes.ErrCompacted, fmt.Sprintf("member %d: get at 10", i+1))
	}
	get := rangeEverywhere(t, clis, "r/", clientv3.WithPrefix(), clientv3.WithRev(11), clientv3.WithSerializable())
	require.Len(t, get.Kvs, 10)
	require.Equal(t, "r/00=0 c2 m2 v1", kvString(get.Kvs[0]))
	require.Equal(t, "r/09=9 c11 m11 v1", kvString(get.Kvs[9]))
}
