package test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// etcd API behaviour through clientv3 against one member. Every test starts
// a fresh member, so revisions are exact: a new member is at revision 1 and
// each write that changes something adds one.

// startCompat starts one member (RocksDB, the default engine) and a client.
func startCompat(t *testing.T, extraFlags ...string) (*apiCluster, *clientv3.Client) {
	t.Helper()
	c := startAPICluster(t, engineRocksDB, 1, extraFlags...)
	return c, newClient(t, c.members[0].endpoint())
}

func TestEtcd_PutGet(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member")
	_, cli := startCompat(t)

	t.Logf("Step 2: first put is revision 2")
	put := mustPut(t, cli, "foo", "bar")
	require.Equal(t, int64(2), put.Header.Revision)
	require.Nil(t, put.PrevKv)

	t.Logf("Step 3: get returns the value with its revisions")
	get := mustGet(t, cli, "foo")
	require.Equal(t, []string{"foo=bar c2 m2 v1"}, kvStrings(get.Kvs))
	require.Equal(t, int64(1), get.Count)
	require.False(t, get.More)
	require.Equal(t, int64(2), get.Header.Revision)
	require.Equal(t, int64(0), get.Kvs[0].Lease)

	t.Logf("Step 4: overwrite keeps the create revision and bumps the version")
	require.Equal(t, int64(3), mustPut(t, cli, "foo", "baz").Header.Revision)
	get = mustGet(t, cli, "foo")
	require.Equal(t, []string{"foo=baz c2 m3 v2"}, kvStrings(get.Kvs))

	t.Logf("Step 5: a missing key is an empty result at the current revision")
	get = mustGet(t, cli, "nope")
	require.Empty(t, get.Kvs)
	require.Equal(t, int64(0), get.Count)
	require.Equal(t, int64(3), get.Header.Revision)

	t.Logf("Step 6: serializable get sees the same")
	get = mustGet(t, cli, "foo", clientv3.WithSerializable())
	require.Equal(t, []string{"foo=baz c2 m3 v2"}, kvStrings(get.Kvs))

	t.Logf("Step 7: empty values and binary keys round-trip")
	mustPut(t, cli, "empty", "")
	mustPut(t, cli, "bin\x00\xff", "\x00\x01")
	require.Equal(t, []string{"empty= c4 m4 v1"}, kvStrings(mustGet(t, cli, "empty").Kvs))
	require.Equal(t, []string{"bin\x00\xff=\x00\x01 c5 m5 v1"}, kvStrings(mustGet(t, cli, "bin\x00\xff").Kvs))
}

func TestEtcd_GetPrefixAndRange(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member, writing a/1 a/2 a/3 ab b/1")
	_, cli := startCompat(t)
	for _, k := range []string{"a/1", "a/2", "a/3", "ab", "b/1"} {
		mustPut(t, cli, k, "v-"+k)
	}

	t.Logf("Step 2: prefix a/ returns its three keys in key order")
	get := mustGet(t, cli, "a/", clientv3.WithPrefix())
	require.Equal(t, []string{"a/1=v-a/1 c2 m2 v1", "a/2=v-a/2 c3 m3 v1", "a/3=v-a/3 c4 m4 v1"}, kvStrings(get.Kvs))
	require.Equal(t, int64(3), get.Count)
	require.False(t, get.More)

	t.Logf("Step 3: range [a/2, b) is half-open")
	get = mustGet(t, cli, "a/2", clientv3.WithRange("b"))
	require.Equal(t, []string{"a/2", "a/3", "ab"}, keysOf(get.Kvs))
	require.Equal(t, int64(3), get.Count)

	t.Logf("Step 4: prefix a matches a/* and ab")
	require.Equal(t, []string{"a/1", "a/2", "a/3", "ab"}, keysOf(mustGet(t, cli, "a", clientv3.WithPrefix()).Kvs))

	t.Logf("Step 5: a prefix with no keys is empty")
	get = mustGet(t, cli, "c", clientv3.WithPrefix())
	require.Empty(t, get.Kvs)
	require.Equal(t, int64(0), get.Count)
}

func TestEtcd_RangeLimit(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member, writing k0..k4")
	_, cli := startCompat(t)
	for i := 0; i < 5; i++ {
		mustPut(t, cli, fmt.Sprintf("k%d", i), "v")
	}

	t.Logf("Step 2: limits below, at and above the count")
	cases := []struct {
		limit int64
		keys  []string
		more  bool
	}{
		{1, []string{"k0"}, true},
		{2, []string{"k0", "k1"}, true},
		{4, []string{"k0", "k1", "k2", "k3"}, true},
		{5, []string{"k0", "k1", "k2", "k3", "k4"}, false},
		{10, []string{"k0", "k1", "k2", "k3", "k4"}, false},
		{0, []string{"k0", "k1", "k2", "k3", "k4"}, false},
	}
	for _, tc := range cases {
		get := mustGet(t, cli, "k", clientv3.WithPrefix(), clientv3.WithLimit(tc.limit))
		require.Equal(t, tc.keys, keysOf(get.Kvs), "limit %d", tc.limit)
		require.Equal(t, tc.more, get.More, "limit %d", tc.limit)
		require.Equal(t, int64(5), get.Count, "limit %d: Count is the whole range", tc.limit)
	}

	t.Logf("Step 3: paging with limit 2 from the last key + \\x00 visits every key once")
	var seen []string
	from := "k"
	for page := 0; page < 5; page++ {
		get := mustGet(t, cli, from, clientv3.WithRange("l"), clientv3.WithLimit(2))
		seen = append(seen, keysOf(get.Kvs)...)
		if !get.More {
			break
		}
		from = string(get.Kvs[len(get.Kvs)-1].Key) + "\x00"
	}
	require.Equal(t, []string{"k0", "k1", "k2", "k3", "k4"}, seen)
}

func TestEtcd_RevisionReads(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; k: put v1 (2), put v2 (3), delete (4), put v3 (5); other at 6")
	_, cli := startCompat(t)
	mustPut(t, cli, "k", "v1")
	mustPut(t, cli, "k", "v2")
	del, err := cli.Delete(opCtx(t), "k")
	require.NoError(t, err)
	require.Equal(t, int64(4), del.Header.Revision)
	mustPut(t, cli, "k", "v3")
	mustPut(t, cli, "other", "o")

	t.Logf("Step 2: each revision shows the state as of that revision")
	cases := []struct {
		rev  int64
		want []string
	}{
		{1, []string{}},
		{2, []string{"k=v1 c2 m2 v1"}},
		{3, []string{"k=v2 c2 m3 v2"}},
		{4, []string{}},
		{5, []string{"k=v3 c5 m5 v1"}},
		{6, []string{"k=v3 c5 m5 v1"}},
		{0, []string{"k=v3 c5 m5 v1"}},
	}
	for _, tc := range cases {
		get := mustGet(t, cli, "k", clientv3.WithRev(tc.rev))
		require.Equal(t, tc.want, kvStrings(get.Kvs), "rev %d", tc.rev)
		require.Equal(t, int64(6), get.Header.Revision, "rev %d: header has the current revision", tc.rev)
	}

	t.Logf("Step 3: a prefix read at revision 5 does not see 'other' (written at 6)")
	get := mustGet(t, cli, "", clientv3.WithFromKey(), clientv3.WithRev(5))
	require.Equal(t, []string{"k"}, keysOf(get.Kvs))
	require.Equal(t, int64(1), get.Count)
}

func TestEtcd_SortOrdersAndTargets(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member, writing the sort fixture")
	_, cli := startCompat(t)
	writeSortFixture(t, cli)

	t.Logf("Step 2: every target in both orders")
	cases := []struct {
		target clientv3.SortTarget
		order  clientv3.SortOrder
		want   []string
	}{
		{clientv3.SortByKey, clientv3.SortAscend, []string{"s/a", "s/b", "s/c"}},
		{clientv3.SortByKey, clientv3.SortDescend, []string{"s/c", "s/b", "s/a"}},
		{clientv3.SortByValue, clientv3.SortAscend, []string{"s/c", "s/b", "s/a"}},
		{clientv3.SortByValue, clientv3.SortDescend, []string{"s/a", "s/b", "s/c"}},
		{clientv3.SortByVersion, clientv3.SortAscend, []string{"s/a", "s/b", "s/c"}},
		{clientv3.SortByVersion, clientv3.SortDescend, []string{"s/c", "s/b", "s/a"}},
		{clientv3.SortByCreateRevision, clientv3.SortAscend, []string{"s/b", "s/c", "s/a"}},
		{clientv3.SortByCreateRevision, clientv3.SortDescend, []string{"s/a", "s/c", "s/b"}},
		{clientv3.SortByModRevision, clientv3.SortAscend, []string{"s/a", "s/c", "s/b"}},
		{clientv3.SortByModRevision, clientv3.SortDescend, []string{"s/b", "s/c", "s/a"}},
		// etcd sorts ascending when a target other than the key is given
		// without an order.
		{clientv3.SortByModRevision, clientv3.SortNone, []string{"s/a", "s/c", "s/b"}},
		{clientv3.SortByValue, clientv3.SortNone, []string{"s/c", "s/b", "s/a"}},
	}
	for _, tc := range cases {
		get := mustGet(t, cli, "s/", clientv3.WithPrefix(), clientv3.WithSort(tc.target, tc.order))
		require.Equal(t, tc.want, keysOf(get.Kvs), "target %v order %v", tc.target, tc.order)
		require.Equal(t, int64(3), get.Count)
	}

	t.Logf("Step 3: a limit applies after sorting")
	get := mustGet(t, cli, "s/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend), clientv3.WithLimit(1))
	require.Equal(t, []string{"s/a=z c4 m4 v1"}, kvStrings(get.Kvs))
	require.True(t, get.More)
	require.Equal(t, int64(3), get.Count)
	get = mustGet(t, cli, "s/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(2))
	require.Equal(t, []string{"s/c", "s/b"}, keysOf(get.Kvs))
	require.True(t, get.More)

	t.Logf("Step 4: with no order, a limit is read in key order plus one pair, which a non-key target then sorts (etcd's quirk)")
	get = mustGet(t, cli, "s/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortNone), clientv3.WithLimit(2))
	require.Equal(t, []string{"s/a", "s/c"}, keysOf(get.Kvs), "s/a, s/b, s/c read; by mod revision 4, 7, 6")
	require.True(t, get.More)

	t.Logf("Step 5: equal sort values over more than 12 keys end up where etcd's sort puts them")
	for i := 0; i < 20; i++ {
		mustPut(t, cli, fmt.Sprintf("t/%02d", i), "v")
		if i%3 == 0 {
			mustPut(t, cli, fmt.Sprintf("t/%02d", i), "w")
		}
	}
	for _, order := range []clientv3.SortOrder{clientv3.SortAscend, clientv3.SortDescend} {
		get = mustGet(t, cli, "t/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByVersion, order))
		require.Equal(t, sortTiesWant[order], keysOf(get.Kvs), "by version, order %v", order)
	}
}

// sortTiesWant is etcd 3.7.3's answer to step 5 of
// TestEtcd_SortOrdersAndTargets: t/00..t/19, every third one at version 2,
// sorted by version (its sort is not stable, so ties are not in key order).
var sortTiesWant = map[clientv3.SortOrder][]string{
	clientv3.SortAscend: {"t/10", "t/01", "t/02", "t/19", "t/04", "t/05", "t/17", "t/07", "t/16", "t/08",
		"t/14", "t/11", "t/13", "t/00", "t/12", "t/15", "t/09", "t/06", "t/18", "t/03"},
	clientv3.SortDescend: {"t/09", "t/18", "t/15", "t/03", "t/12", "t/00", "t/06", "t/05", "t/08", "t/07",
		"t/10", "t/11", "t/04", "t/13", "t/14", "t/02", "t/16", "t/17", "t/01", "t/19"},
}

func TestEtcd_KeysOnlyAndCountOnly(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member, writing the sort fixture")
	_, cli := startCompat(t)
	writeSortFixture(t, cli)

	t.Logf("Step 2: keys-only drops values and keeps the revisions")
	get := mustGet(t, cli, "s/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	require.Equal(t, []string{"s/a= c4 m4 v1", "s/b= c2 m7 v2", "s/c= c3 m6 v3"}, kvStrings(get.Kvs))
	require.Equal(t, int64(3), get.Count)

	t.Logf("Step 3: count-only returns no kvs and the count")
	get = mustGet(t, cli, "s/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.Empty(t, get.Kvs)
	require.Equal(t, int64(3), get.Count)
	require.False(t, get.More)
	get = mustGet(t, cli, "s/b", clientv3.WithCountOnly())
	require.Empty(t, get.Kvs)
	require.Equal(t, int64(1), get.Count)

	t.Logf("Step 4: count-only at an old revision counts that revision's keys")
	get = mustGet(t, cli, "s/", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithRev(3))
	require.Equal(t, int64(2), get.Count)

	t.Logf("Step 5: a keys-only read leaves the lease out (etcd 3.7.3 answers it from its key index), unless sorted by value")
	lease, err := cli.Grant(opCtx(t), 100)
	require.NoError(t, err)
	_, err = cli.Put(opCtx(t), "l/1", "v", clientv3.WithLease(lease.ID))
	require.NoError(t, err)
	for _, opts := range [][]clientv3.OpOption{{clientv3.WithKeysOnly()}, {clientv3.WithKeysOnly(), clientv3.WithPrefix()},
		{clientv3.WithKeysOnly(), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByVersion, clientv3.SortDescend)}} {
		get = mustGet(t, cli, "l/1", opts...)
		require.Len(t, get.Kvs, 1)
		require.Zero(t, get.Kvs[0].Lease)
	}
	get = mustGet(t, cli, "l/1", clientv3.WithKeysOnly(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortAscend))
	require.Equal(t, int64(lease.ID), get.Kvs[0].Lease)
	require.Empty(t, get.Kvs[0].Value)
	require.Equal(t, int64(lease.ID), mustGet(t, cli, "l/1").Kvs[0].Lease, "a full read has it")
	require.Zero(t, mustGet(t, cli, "l/1", clientv3.WithKeysOnly()).Kvs[0].Lease, "keys-only again, after a full read")
}

func TestEtcd_MinMaxRevisionFilters(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member, writing the sort fixture")
	_, cli := startCompat(t)
	writeSortFixture(t, cli)

	t.Logf("Step 2: each filter keeps the right keys; Count is the range before filtering, as in etcd")
	cases := []struct {
		name string
		opts []clientv3.OpOption
		want []string
	}{
		{"min mod 6", []clientv3.OpOption{clientv3.WithMinModRev(6)}, []string{"s/b", "s/c"}},
		{"max mod 6", []clientv3.OpOption{clientv3.WithMaxModRev(6)}, []string{"s/a", "s/c"}},
		{"min create 3", []clientv3.OpOption{clientv3.WithMinCreateRev(3)}, []string{"s/a", "s/c"}},
		{"max create 3", []clientv3.OpOption{clientv3.WithMaxCreateRev(3)}, []string{"s/b", "s/c"}},
		{"mod in [5,6]", []clientv3.OpOption{clientv3.WithMinModRev(5), clientv3.WithMaxModRev(6)}, []string{"s/c"}},
		{"min mod 8", []clientv3.OpOption{clientv3.WithMinModRev(8)}, []string{}},
		{"create 2..4 and mod >= 7", []clientv3.OpOption{clientv3.WithMinCreateRev(2), clientv3.WithMaxCreateRev(4), clientv3.WithMinModRev(7)}, []string{"s/b"}},
	}
	for _, tc := range cases {
		get := mustGet(t, cli, "s/", append([]clientv3.OpOption{clientv3.WithPrefix()}, tc.opts...)...)
		require.Equal(t, tc.want, keysOf(get.Kvs), tc.name)
		require.Equal(t, int64(3), get.Count, tc.name)
	}
}

func TestEtcd_FromKey(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member, writing a b c d")
	_, cli := startCompat(t)
	for _, k := range []string{"a", "b", "c", "d"} {
		mustPut(t, cli, k, k)
	}

	t.Logf("Step 2: from b returns b c d; from the empty key returns every key")
	require.Equal(t, []string{"b", "c", "d"}, keysOf(mustGet(t, cli, "b", clientv3.WithFromKey()).Kvs))
	get := mustGet(t, cli, "", clientv3.WithFromKey())
	require.Equal(t, []string{"a", "b", "c", "d"}, keysOf(get.Kvs))
	require.Equal(t, int64(4), get.Count)
	require.Equal(t, []string{"c", "d"}, keysOf(mustGet(t, cli, "bb", clientv3.WithFromKey()).Kvs))
	require.Empty(t, mustGet(t, cli, "e", clientv3.WithFromKey()).Kvs)

	t.Logf("Step 3: from-key with a limit and descending key order")
	get = mustGet(t, cli, "b", clientv3.WithFromKey(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(2))
	require.Equal(t, []string{"d", "c"}, keysOf(get.Kvs))
	require.True(t, get.More)
	require.Equal(t, int64(3), get.Count)
}

// checkDelete deletes key with opts and checks etcd's answer: how many
// keys went, their previous kvs (kvStrings; nil: none) and the revision.
func checkDelete(t *testing.T, cli *clientv3.Client, key string, deleted int64, prev []string, rev int64, opts ...clientv3.OpOption) {
	t.Helper()
	del, err := cli.Delete(opCtx(t), key, opts...)
	require.NoError(t, err)
	require.Equal(t, deleted, del.Deleted)
	if prev == nil {
		require.Empty(t, del.PrevKvs)
	} else {
		require.Equal(t, prev, kvStrings(del.PrevKvs))
	}
	require.Equal(t, rev, del.Header.Revision)
}

func TestEtcd_DeleteWithPrevKV(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member, writing d/1..d/4 (2..5) and e (6)")
	_, cli := startCompat(t)
	for _, k := range []string{"d/1", "d/2", "d/3", "d/4", "e"} {
		mustPut(t, cli, k, "v-"+k)
	}

	t.Logf("Step 2: delete one key with prev kv")
	checkDelete(t, cli, "d/1", 1, []string{"d/1=v-d/1 c2 m2 v1"}, 7, clientv3.WithPrevKV())

	t.Logf("Step 3: deleting a missing key deletes nothing and keeps the revision")
	checkDelete(t, cli, "d/1", 0, nil, 7, clientv3.WithPrevKV())

	t.Logf("Step 4: delete the range [d/2, d/4): two keys in one revision")
	checkDelete(t, cli, "d/2", 2, []string{"d/2=v-d/2 c3 m3 v1", "d/3=v-d/3 c4 m4 v1"}, 8, clientv3.WithRange("d/4"), clientv3.WithPrevKV())

	t.Logf("Step 5: delete the prefix d/ without prev kv")
	checkDelete(t, cli, "d/", 1, nil, 9, clientv3.WithPrefix())

	t.Logf("Step 6: only e is left; the deleted keys are still readable at older revisions")
	get := mustGet(t, cli, "", clientv3.WithFromKey())
	require.Equal(t, []string{"e=v-e c6 m6 v1"}, kvStrings(get.Kvs))
	require.Equal(t, []string{"d/2", "d/3", "d/4"}, keysOf(mustGet(t, cli, "d/", clientv3.WithPrefix(), clientv3.WithRev(7)).Kvs))
	require.Equal(t, []string{"d/4"}, keysOf(mustGet(t, cli, "d/", clientv3.WithPrefix(), clientv3.WithRev(8)).Kvs))

	t.Logf("Step 7: a re-created key starts at version 1 with a new create revision")
	mustPut(t, cli, "d/1", "again")
	require.Equal(t, []string{"d/1=again c10 m10 v1"}, kvStrings(mustGet(t, cli, "d/1").Kvs))
}

func TestEtcd_PutWithPrevKV(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member")
	_, cli := startCompat(t)

	t.Logf("Step 2: the first put has no previous kv")
	put := mustPut(t, cli, "k", "v1", clientv3.WithPrevKV())
	require.Nil(t, put.PrevKv)
	require.Equal(t, int64(2), put.Header.Revision)

	t.Logf("Step 3: later puts return the version they replaced")
	put = mustPut(t, cli, "k", "v2", clientv3.WithPrevKV())
	require.NotNil(t, put.PrevKv)
	require.Equal(t, "k=v1 c2 m2 v1", kvString(put.PrevKv))
	put = mustPut(t, cli, "k", "v3", clientv3.WithPrevKV())
	require.Equal(t, "k=v2 c2 m3 v2", kvString(put.PrevKv))

	t.Logf("Step 4: without the option no previous kv is returned")
	require.Nil(t, mustPut(t, cli, "k", "v4").PrevKv)

	t.Logf("Step 5: after a delete the previous kv is gone again")
	_, err := cli.Delete(opCtx(t), "k")
	require.NoError(t, err)
	require.Nil(t, mustPut(t, cli, "k", "v5", clientv3.WithPrevKV()).PrevKv)
}

func TestEtcd_IgnoreValueAndIgnoreLease(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member")
	_, cli := startCompat(t)

	t.Logf("Step 2: ignore-value and ignore-lease on a missing key fail with ErrKeyNotFound")
	_, err := cli.Put(opCtx(t), "k", "", clientv3.WithIgnoreValue())
	requireErrIs(t, err, rpctypes.ErrKeyNotFound, "ignore value on missing key")
	_, err = cli.Put(opCtx(t), "k", "v", clientv3.WithIgnoreLease())
	requireErrIs(t, err, rpctypes.ErrKeyNotFound, "ignore lease on missing key")

	t.Logf("Step 3: ignore-value keeps the value and bumps version and mod revision")
	mustPut(t, cli, "k", "v1")
	put := mustPut(t, cli, "k", "", clientv3.WithIgnoreValue(), clientv3.WithPrevKV())
	require.Equal(t, int64(3), put.Header.Revision)
	require.Equal(t, "k=v1 c2 m2 v1", kvString(put.PrevKv))
	require.Equal(t, []string{"k=v1 c2 m3 v2"}, kvStrings(mustGet(t, cli, "k").Kvs))

	t.Logf("Step 4: ignore-lease writes the new value")
	require.Equal(t, int64(4), mustPut(t, cli, "k", "v2", clientv3.WithIgnoreLease()).Header.Revision)
	get := mustGet(t, cli, "k")
	require.Equal(t, []string{"k=v2 c2 m4 v3"}, kvStrings(get.Kvs))
	require.Equal(t, int64(0), get.Kvs[0].Lease)

	t.Logf("Step 5: a value with ignore-value, a lease with ignore-lease are rejected")
	_, err = cli.Put(opCtx(t), "k", "x", clientv3.WithIgnoreValue())
	requireErrIs(t, err, rpctypes.ErrValueProvided, "value with ignore value")
	_, err = cli.Put(opCtx(t), "k", "x", clientv3.WithLease(12345), clientv3.WithIgnoreLease())
	requireErrIs(t, err, rpctypes.ErrLeaseProvided, "lease with ignore lease")

	t.Logf("Step 6: the rejected requests changed nothing")
	get = mustGet(t, cli, "k")
	require.Equal(t, []string{"k=v2 c2 m4 v3"}, kvStrings(get.Kvs))
	require.Equal(t, int64(4), get.Header.Revision)
}

// withResult and withTarget set a compare's enum fields to values clientv3
// never sends.
func withResult(c clientv3.Cmp, r int32) clientv3.Cmp {
	pc := c.GetCompare()
	pc.Result = pb.Compare_CompareResult(r)
	return clientv3.FromCompare(pc)
}

func withTarget(c clientv3.Cmp, tg int32) clientv3.Cmp {
	pc := c.GetCompare()
	pc.Target = pb.Compare_CompareTarget(tg)
	return clientv3.FromCompare(pc)
}

func TestEtcd_TxnCompares(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; k=v1 (2), k=v2 (3), p/1 (4), p/2 (5)")
	_, cli := startCompat(t)
	mustPut(t, cli, "k", "v1")
	mustPut(t, cli, "k", "v2")
	mustPut(t, cli, "p/1", "a")
	mustPut(t, cli, "p/2", "b")

	t.Logf("Step 2: each compare decides the branch")
	V, Ver, C, M := clientv3.Value, clientv3.Version, clientv3.CreateRevision, clientv3.ModRevision
	cases := []struct {
		name string
		cmp  clientv3.Cmp
		want bool
	}{
		{"value =", clientv3.Compare(V("k"), "=", "v2"), true},
		{"value = old", clientv3.Compare(V("k"), "=", "v1"), false},
		{"value !=", clientv3.Compare(V("k"), "!=", "v1"), true},
		{"value >", clientv3.Compare(V("k"), ">", "v1"), true},
		{"value <", clientv3.Compare(V("k"), "<", "v1"), false},
		{"version =", clientv3.Compare(Ver("k"), "=", 2), true},
		{"version >", clientv3.Compare(Ver("k"), ">", 2), false},
		{"version <", clientv3.Compare(Ver("k"), "<", 3), true},
		{"create =", clientv3.Compare(C("k"), "=", 2), true},
		{"create !=", clientv3.Compare(C("k"), "!=", 2), false},
		{"mod =", clientv3.Compare(M("k"), "=", 3), true},
		{"mod <", clientv3.Compare(M("k"), "<", 3), false},
		{"mod >", clientv3.Compare(M("k"), ">", 2), true},
		{"missing: version = 0", clientv3.Compare(Ver("missing"), "=", 0), true},
		{"missing: create = 0", clientv3.Compare(C("missing"), "=", 0), true},
		{"missing: mod = 0", clientv3.Compare(M("missing"), "=", 0), true},
		{"missing: value = empty fails", clientv3.Compare(V("missing"), "=", ""), false},
		{"missing: value != x fails", clientv3.Compare(V("missing"), "!=", "x"), false},
		{"prefix: every version = 1", clientv3.Compare(Ver("p/"), "=", 1).WithPrefix(), true},
		{"prefix: every mod > 4", clientv3.Compare(M("p/"), ">", 4).WithPrefix(), false},
		{"range: every create < 5 in [p/1, p/2)", clientv3.Compare(C("p/1"), "<", 5).WithRange("p/2"), true},
		// Enum values etcd does not know: the result holds; the target
		// compares as equal.
		{"unknown result holds", withResult(clientv3.Compare(V("k"), "=", "other"), 9), true},
		{"unknown target is equal", withTarget(clientv3.Compare(Ver("k"), "=", 5), 7), true},
		{"unknown target is not greater", withTarget(clientv3.Compare(Ver("k"), ">", 0), 7), false},
	}
	for _, tc := range cases {
		resp, err := cli.Txn(opCtx(t)).If(tc.cmp).Then(clientv3.OpGet("k")).Else(clientv3.OpGet("p/1")).Commit()
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, resp.Succeeded, tc.name)
		require.Len(t, resp.Responses, 1, tc.name)
		want := "p/1=a c4 m4 v1"
		if tc.want {
			want = "k=v2 c2 m3 v2"
		}
		require.Equal(t, []string{want}, kvStrings(resp.Responses[0].GetResponseRange().Kvs), tc.name)
		require.Equal(t, int64(5), resp.Header.Revision, "%s: a read-only txn does not write", tc.name)
	}

	t.Logf("Step 3: several compares must all hold")
	resp, err := cli.Txn(opCtx(t)).If(clientv3.Compare(V("k"), "=", "v2"), clientv3.Compare(Ver("k"), "=", 1)).Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded)
	resp, err = cli.Txn(opCtx(t)).If(clientv3.Compare(V("k"), "=", "v2"), clientv3.Compare(Ver("k"), "=", 2)).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)
	require.Empty(t, resp.Responses)
}

func TestEtcd_TxnBranches(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; k=v1 at 2")
	_, cli := startCompat(t)
	mustPut(t, cli, "k", "v1")

	t.Logf("Step 2: success branch: two puts and a delete share one revision")
	mustPut(t, cli, "gone", "x") // 3
	resp, err := cli.Txn(opCtx(t)).If(clientv3.Compare(clientv3.Value("k"), "=", "v1")).
		Then(clientv3.OpPut("k", "v2"), clientv3.OpPut("k2", "x"), clientv3.OpDelete("gone", clientv3.WithPrevKV())).
		Else(clientv3.OpGet("k")).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)
	require.Equal(t, int64(4), resp.Header.Revision)
	require.Len(t, resp.Responses, 3)
	require.NotNil(t, resp.Responses[0].GetResponsePut())
	require.NotNil(t, resp.Responses[1].GetResponsePut())
	require.Equal(t, int64(1), resp.Responses[2].GetResponseDeleteRange().Deleted)
	require.Equal(t, []string{"gone=x c3 m3 v1"}, kvStrings(resp.Responses[2].GetResponseDeleteRange().PrevKvs))
	require.Equal(t, []string{"k=v2 c2 m4 v2", "k2=x c4 m4 v1"}, kvStrings(mustGet(t, cli, "k", clientv3.WithPrefix()).Kvs))
	require.Empty(t, mustGet(t, cli, "gone").Kvs)

	t.Logf("Step 3: the same txn again takes the failure branch and writes nothing")
	resp, err = cli.Txn(opCtx(t)).If(clientv3.Compare(clientv3.Value("k"), "=", "v1")).
		Then(clientv3.OpPut("k", "v2"), clientv3.OpPut("k2", "x")).
		Else(clientv3.OpGet("k")).Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded)
	require.Equal(t, int64(4), resp.Header.Revision)
	require.Len(t, resp.Responses, 1)
	require.Equal(t, []string{"k=v2 c2 m4 v2"}, kvStrings(resp.Responses[0].GetResponseRange().Kvs))

	t.Logf("Step 4: a get after a put in the same txn sees the put")
	resp, err = cli.Txn(opCtx(t)).Then(clientv3.OpPut("k3", "new"), clientv3.OpGet("k3"), clientv3.OpPut("k2", "y", clientv3.WithPrevKV())).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)
	require.Equal(t, int64(5), resp.Header.Revision)
	require.Equal(t, []string{"k3=new c5 m5 v1"}, kvStrings(resp.Responses[1].GetResponseRange().Kvs))
	require.Equal(t, "k2=x c4 m4 v1", kvString(resp.Responses[2].GetResponsePut().PrevKv))

	t.Logf("Step 5: an empty txn succeeds and writes nothing")
	resp, err = cli.Txn(opCtx(t)).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)
	require.Equal(t, int64(5), resp.Header.Revision)
}

// casIncrements increments the decimal value of "counter" n times with
// compare-and-swap on its mod revision (read, then a txn that writes n+1
// and also(n+1), if not nil, only if nobody wrote in between), retrying
// lost races, within maxTries attempts.
func casIncrements(t *testing.T, cli *clientv3.Client, n, maxTries int, also func(int) []clientv3.Op) error {
	for done, tries := 0, 0; done < n; tries++ {
		if tries > maxTries {
			return fmt.Errorf("gave up after %d tries", tries)
		}
		get, err := cli.Get(opCtx(t), "counter")
		if err != nil {
			return err
		}
		var v int
		fmt.Sscan(string(get.Kvs[0].Value), &v)
		ops := []clientv3.Op{clientv3.OpPut("counter", fmt.Sprint(v+1))}
		if also != nil {
			ops = append(ops, also(v+1)...)
		}
		resp, err := cli.Txn(opCtx(t)).If(clientv3.Compare(clientv3.ModRevision("counter"), "=", get.Kvs[0].ModRevision)).
			Then(ops...).Commit()
		if err != nil {
			return err
		}
		if resp.Succeeded {
			done++
		}
	}
	return nil
}

func TestEtcd_TxnCompareAndSwap(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; counter=0 at 2")
	_, cli := startCompat(t)
	mustPut(t, cli, "counter", "0")

	t.Logf("Step 2: a CAS on the current mod revision wins, a stale one loses")
	resp, err := cli.Txn(opCtx(t)).If(clientv3.Compare(clientv3.ModRevision("counter"), "=", 2)).
		Then(clientv3.OpPut("counter", "1")).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)
	require.Equal(t, int64(3), resp.Header.Revision)
	resp, err = cli.Txn(opCtx(t)).If(clientv3.Compare(clientv3.ModRevision("counter"), "=", 2)).
		Then(clientv3.OpPut("counter", "stale")).Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded)
	require.Equal(t, []string{"counter=1 c2 m3 v2"}, kvStrings(mustGet(t, cli, "counter").Kvs))

	const workers, incs = 5, 10
	t.Logf("Step 3: %d workers each increment the counter %d times with CAS", workers, incs)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- casIncrements(t, cli, incs, 100*incs, nil)
		}()
	}
	wg.Wait()
	collect(t, errs)

	t.Logf("Step 4: no increment was lost")
	get := mustGet(t, cli, "counter")
	want := 1 + workers*incs
	require.Equal(t, []string{fmt.Sprintf("counter=%d c2 m%d v%d", want, 3+workers*incs, 2+workers*incs)}, kvStrings(get.Kvs))
}

func TestEtcd_TxnCreateIfAbsent(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member")
	_, cli := startCompat(t)
	create := func(v string) *clientv3.TxnResponse {
		resp, err := cli.Txn(opCtx(t)).If(clientv3.Compare(clientv3.CreateRevision("lock"), "=", 0)).
			Then(clientv3.OpPut("lock", v)).Else(clientv3.OpGet("lock")).Commit()
		require.NoError(t, err)
		return resp
	}

	t.Logf("Step 2: the first create wins")
	resp := create("first")
	require.True(t, resp.Succeeded)
	require.Equal(t, int64(2), resp.Header.Revision)

	t.Logf("Step 3: the second sees the owner and writes nothing")
	resp = create("second")
	require.False(t, resp.Succeeded)
	require.Equal(t, []string{"lock=first c2 m2 v1"}, kvStrings(resp.Responses[0].GetResponseRange().Kvs))
	require.Equal(t, int64(2), resp.Header.Revision)

	t.Logf("Step 4: after a delete the key can be created again")
	_, err := cli.Delete(opCtx(t), "lock")
	require.NoError(t, err)
	resp = create("third")
	require.True(t, resp.Succeeded)
	require.Equal(t, []string{"lock=third c4 m4 v1"}, kvStrings(mustGet(t, cli, "lock").Kvs))

	const racers = 8
	t.Logf("Step 5: %d concurrent creators of a new key: exactly one wins", racers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	winner := -1
	wins := 0
	errs := make(chan error, racers)
	for i := 0; i < racers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := cli.Txn(opCtx(t)).If(clientv3.Compare(clientv3.CreateRevision("race"), "=", 0)).
				Then(clientv3.OpPut("race", fmt.Sprint(i))).Commit()
			if err != nil {
				errs <- err
				return
			}
			if resp.Succeeded {
				mu.Lock()
				wins++
				winner = i
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	collect(t, errs)
	require.Equal(t, 1, wins)
	get := mustGet(t, cli, "race")
	require.Equal(t, []string{fmt.Sprintf("race=%d c5 m5 v1", winner)}, kvStrings(get.Kvs))
	require.Equal(t, int64(5), get.Header.Revision)
}

func TestEtcd_NestedTxn(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; b=x at 2")
	_, cli := startCompat(t)
	mustPut(t, cli, "b", "x")

	t.Logf("Step 2: an outer txn runs an inner txn and a put in one revision")
	inner := clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.Value("b"), "=", "x")},
		[]clientv3.Op{clientv3.OpPut("c", "yes"), clientv3.OpGet("b")},
		[]clientv3.Op{clientv3.OpPut("c", "no")})
	resp, err := cli.Txn(opCtx(t)).If(clientv3.Compare(clientv3.Version("a"), "=", 0)).
		Then(inner, clientv3.OpPut("a", "1")).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)
	require.Equal(t, int64(3), resp.Header.Revision)
	require.Len(t, resp.Responses, 2)
	in := resp.Responses[0].GetResponseTxn()
	require.NotNil(t, in)
	require.True(t, in.Succeeded)
	require.Len(t, in.Responses, 2)
	require.NotNil(t, in.Responses[0].GetResponsePut())
	require.Equal(t, int64(3), in.Responses[0].GetResponsePut().GetHeader().GetRevision(), "a nested write has the txn's revision")
	require.NotNil(t, in.Header)
	require.Zero(t, in.Header.Revision, "the nested txn's own header is empty, as in etcd")
	require.Equal(t, []string{"b=x c2 m2 v1"}, kvStrings(in.Responses[1].GetResponseRange().Kvs))
	require.Equal(t, []string{"a=1 c3 m3 v1", "b=x c2 m2 v1", "c=yes c3 m3 v1"}, kvStrings(mustGet(t, cli, "", clientv3.WithFromKey()).Kvs))

	t.Logf("Step 3: the inner txn takes its failure branch when its compare fails")
	inner = clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.Value("b"), "=", "other")},
		[]clientv3.Op{clientv3.OpPut("c", "yes")},
		[]clientv3.Op{clientv3.OpPut("c", "no")})
	resp, err = cli.Txn(opCtx(t)).Then(inner).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)
	require.False(t, resp.Responses[0].GetResponseTxn().Succeeded)
	require.Equal(t, []string{"c=no c3 m4 v2"}, kvStrings(mustGet(t, cli, "c").Kvs))

	t.Logf("Step 4: a read-only nested txn writes nothing")
	inner = clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpGet("a")}, nil)
	resp, err = cli.Txn(opCtx(t)).Then(inner).Commit()
	require.NoError(t, err)
	require.Equal(t, []string{"a=1 c3 m3 v1"}, kvStrings(resp.Responses[0].GetResponseTxn().Responses[0].GetResponseRange().Kvs))
	require.Equal(t, int64(4), resp.Header.Revision)
}

func TestEtcd_Compaction(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; k=v1..v4 at 2..5")
	c, cli := startCompat(t)
	for i := 1; i <= 4; i++ {
		mustPut(t, cli, "k", fmt.Sprintf("v%d", i))
	}

	t.Logf("Step 2: never compacted, HashKV says compact revision -1; Compact(0) is accepted once")
	hk, err := cli.HashKV(opCtx(t), c.members[0].endpoint(), 0)
	require.NoError(t, err)
	require.Equal(t, int64(-1), hk.CompactRevision)
	comp, err := cli.Compact(opCtx(t), 0)
	require.NoError(t, err)
	require.Equal(t, int64(5), comp.Header.Revision)
	_, err = cli.Compact(opCtx(t), 0)
	requireErrIs(t, err, rpctypes.ErrCompacted, "compact 0 twice")

	t.Logf("Step 3: compact at 3; the revision does not move")
	comp, err = cli.Compact(opCtx(t), 3)
	require.NoError(t, err)
	require.Equal(t, int64(5), comp.Header.Revision)

	t.Logf("Step 4: reads below 3 fail with ErrCompacted, at 3 and above they work")
	_, err = cli.Get(opCtx(t), "k", clientv3.WithRev(2))
	requireErrIs(t, err, rpctypes.ErrCompacted, "get at 2 after compacting at 3")
	require.Equal(t, []string{"k=v2 c2 m3 v2"}, kvStrings(mustGet(t, cli, "k", clientv3.WithRev(3)).Kvs))
	require.Equal(t, []string{"k=v3 c2 m4 v3"}, kvStrings(mustGet(t, cli, "k", clientv3.WithRev(4)).Kvs))
	require.Equal(t, []string{"k=v4 c2 m5 v4"}, kvStrings(mustGet(t, cli, "k").Kvs))

	t.Logf("Step 5: reads above the current revision fail with ErrFutureRev")
	_, err = cli.Get(opCtx(t), "k", clientv3.WithRev(6))
	requireErrIs(t, err, rpctypes.ErrFutureRev, "get at 6 with current 5")

	t.Logf("Step 6: compacting again at or below 3 fails with ErrCompacted, above current with ErrFutureRev")
	_, err = cli.Compact(opCtx(t), 3)
	requireErrIs(t, err, rpctypes.ErrCompacted, "compact 3 twice")
	_, err = cli.Compact(opCtx(t), 2)
	requireErrIs(t, err, rpctypes.ErrCompacted, "compact 2 after 3")
	_, err = cli.Compact(opCtx(t), 100)
	requireErrIs(t, err, rpctypes.ErrFutureRev, "compact 100 with current 5")

	t.Logf("Step 7: a physical compaction at the current revision")
	comp, err = cli.Compact(opCtx(t), 5, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	require.Equal(t, int64(5), comp.Header.Revision)
	_, err = cli.Get(opCtx(t), "k", clientv3.WithRev(4))
	requireErrIs(t, err, rpctypes.ErrCompacted, "get at 4 after compacting at 5")
	require.Equal(t, []string{"k=v4 c2 m5 v4"}, kvStrings(mustGet(t, cli, "k", clientv3.WithRev(5)).Kvs))

	t.Logf("Step 8: a txn reading a compacted revision fails too; writes continue at 6")
	_, err = cli.Txn(opCtx(t)).Then(clientv3.OpGet("k", clientv3.WithRev(3))).Commit()
	requireErrIs(t, err, rpctypes.ErrCompacted, "txn get at 3")
	require.Equal(t, int64(6), mustPut(t, cli, "k", "v5").Header.Revision)
	require.Equal(t, []string{"k=v5 c2 m6 v5"}, kvStrings(mustGet(t, cli, "k").Kvs))
}

func TestEtcd_StatusMemberListAndHealth(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; three puts")
	c, cli := startCompat(t)
	ep := c.members[0].endpoint()
	before, err := cli.Status(opCtx(t), ep)
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		mustPut(t, cli, fmt.Sprintf("k%d", i), "v")
	}

	t.Logf("Step 2: status: this member leads, revision 4, raft index moved by at least 3")
	st, err := cli.Status(opCtx(t), ep)
	require.NoError(t, err)
	require.NotZero(t, st.Header.MemberId)
	require.Equal(t, st.Header.MemberId, st.Leader)
	require.Equal(t, int64(4), st.Header.Revision)
	require.True(t, strings.HasPrefix(st.Version, "3."), "version %q", st.Version)
	require.Positive(t, st.DbSize)
	require.Positive(t, st.DbSizeInUse)
	require.LessOrEqual(t, st.DbSizeInUse, st.DbSize)
	require.GreaterOrEqual(t, st.RaftTerm, uint64(1))
	require.Equal(t, st.RaftTerm, st.Header.RaftTerm)
	require.GreaterOrEqual(t, st.RaftIndex, before.RaftIndex+3)
	require.Equal(t, st.RaftIndex, st.RaftAppliedIndex, "one member has applied what it committed")
	require.False(t, st.IsLearner)
	require.Empty(t, st.Errors)

	t.Logf("Step 3: member list (linearizable and serializable) names this one member")
	for _, opts := range [][]clientv3.OpOption{nil, {clientv3.WithSerializable()}} {
		ml, err := cli.MemberList(opCtx(t), opts...)
		require.NoError(t, err)
		require.Len(t, ml.Members, 1)
		m := ml.Members[0]
		require.Equal(t, st.Header.MemberId, m.ID)
		require.Equal(t, "m1", m.Name)
		require.Equal(t, []string{c.members[0].peerURL}, m.PeerURLs)
		require.Equal(t, []string{c.members[0].clientURL}, m.ClientURLs)
		require.False(t, m.IsLearner)
		require.Equal(t, st.Header.ClusterId, ml.Header.ClusterId)
		require.Equal(t, st.Header.MemberId, ml.Header.MemberId)
	}

	t.Logf("Step 4: the gRPC health service reports SERVING, as etcd's does")
	hc, err := healthpb.NewHealthClient(cli.ActiveConnection()).Check(opCtx(t), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, hc.Status)
}

func TestEtcd_HashAndHashKV(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; a=1 (2), b=2 (3)")
	c, cli := startCompat(t)
	ep := c.members[0].endpoint()
	mustPut(t, cli, "a", "1")
	mustPut(t, cli, "b", "2")

	t.Logf("Step 2: HashKV at 0 hashes the current revision; asking again gives the same hash")
	h1, err := cli.HashKV(opCtx(t), ep, 0)
	require.NoError(t, err)
	require.Equal(t, int64(3), h1.HashRevision)
	require.NotZero(t, h1.Hash)
	h1b, err := cli.HashKV(opCtx(t), ep, 3)
	require.NoError(t, err)
	require.Equal(t, h1.Hash, h1b.Hash)
	require.Equal(t, int64(3), h1b.HashRevision)

	t.Logf("Step 3: a write changes the current hash but not the hash at 3")
	mustPut(t, cli, "a", "changed")
	h2, err := cli.HashKV(opCtx(t), ep, 0)
	require.NoError(t, err)
	require.Equal(t, int64(4), h2.HashRevision)
	require.NotEqual(t, h1.Hash, h2.Hash)
	h1c, err := cli.HashKV(opCtx(t), ep, 3)
	require.NoError(t, err)
	require.Equal(t, h1.Hash, h1c.Hash)
	require.Equal(t, int64(4), h1c.Header.Revision)

	t.Logf("Step 4: HashKV above the current revision fails with ErrFutureRev")
	_, err = cli.HashKV(opCtx(t), ep, 100)
	requireErrIs(t, err, rpctypes.ErrFutureRev, "hashkv at 100")

	t.Logf("Step 5: Hash is stable without writes and changes with one")
	mc := pb.NewMaintenanceClient(cli.ActiveConnection())
	hA, err := mc.Hash(opCtx(t), &pb.HashRequest{})
	require.NoError(t, err)
	hB, err := mc.Hash(opCtx(t), &pb.HashRequest{})
	require.NoError(t, err)
	require.Equal(t, hA.Hash, hB.Hash)
	require.Equal(t, int64(4), hA.Header.Revision)
	mustPut(t, cli, "c", "3")
	hC, err := mc.Hash(opCtx(t), &pb.HashRequest{})
	require.NoError(t, err)
	require.NotEqual(t, hA.Hash, hC.Hash)
	require.Equal(t, int64(5), hC.Header.Revision)
}

func TestEtcd_ManyConcurrentPuts(t *testing.T) {
	t.Parallel()
	const goroutines, keysPer, rounds = 10, 20, 5 // 1,000 puts
	t.Logf("Step 1: starting one member")
	_, cli := startCompat(t)

	t.Logf("Step 2: %d goroutines each put %d keys %d times", goroutines, keysPer, rounds)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				for k := 0; k < keysPer; k++ {
					if _, err := cli.Put(opCtx(t), fmt.Sprintf("many/%02d/%02d", g, k), fmt.Sprintf("r%d", r)); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	t.Logf("Step 3: every key is there with the last value and version %d; revision is 1+1000", rounds)
	get := mustGet(t, cli, "many/", clientv3.WithPrefix())
	require.Equal(t, int64(goroutines*keysPer), get.Count)
	require.Len(t, get.Kvs, goroutines*keysPer)
	require.Equal(t, int64(1+goroutines*keysPer*rounds), get.Header.Revision)
	seenMod := map[int64]bool{}
	for i, kv := range get.Kvs {
		require.Equal(t, fmt.Sprintf("many/%02d/%02d", i/keysPer, i%keysPer), string(kv.Key))
		require.Equal(t, fmt.Sprintf("r%d", rounds-1), string(kv.Value), string(kv.Key))
		require.Equal(t, int64(rounds), kv.Version, string(kv.Key))
		require.Less(t, kv.CreateRevision, kv.ModRevision, string(kv.Key))
		require.False(t, seenMod[kv.ModRevision], "two keys with mod revision %d", kv.ModRevision)
		seenMod[kv.ModRevision] = true
	}
}

func TestEtcd_ErrorsForBadInput(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member; a=1 at 2")
	_, cli := startCompat(t)
	mustPut(t, cli, "a", "1")

	t.Logf("Step 2: an empty key fails with ErrEmptyKey everywhere")
	_, err := cli.Put(opCtx(t), "", "v")
	requireErrIs(t, err, rpctypes.ErrEmptyKey, "put empty key")
	_, err = cli.Get(opCtx(t), "")
	requireErrIs(t, err, rpctypes.ErrEmptyKey, "get empty key")
	_, err = cli.Delete(opCtx(t), "")
	requireErrIs(t, err, rpctypes.ErrEmptyKey, "delete empty key")
	_, err = cli.Txn(opCtx(t)).Then(clientv3.OpPut("", "v")).Commit()
	requireErrIs(t, err, rpctypes.ErrEmptyKey, "txn put empty key")
	_, err = cli.Txn(opCtx(t)).If(clientv3.Compare(clientv3.Version(""), "=", 0)).Commit()
	requireErrIs(t, err, rpctypes.ErrEmptyKey, "txn compare on empty key")

	t.Logf("Step 3: a key written twice in one txn fails with ErrDuplicateKey")
	_, err = cli.Txn(opCtx(t)).Then(clientv3.OpPut("d", "1"), clientv3.OpPut("d", "2")).Commit()
	requireErrIs(t, err, rpctypes.ErrDuplicateKey, "two puts")
	_, err = cli.Txn(opCtx(t)).Then(clientv3.OpPut("d/1", "1"), clientv3.OpDelete("d/", clientv3.WithPrefix())).Commit()
	requireErrIs(t, err, rpctypes.ErrDuplicateKey, "put inside a deleted range")
	_, err = cli.Txn(opCtx(t)).Then(clientv3.OpPut("d", "1"), clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpPut("d", "2")}, nil)).Commit()
	requireErrIs(t, err, rpctypes.ErrDuplicateKey, "put in an outer and an inner txn")

	t.Logf("Step 4: the same key in the two branches, or read and written, is fine")
	resp, err := cli.Txn(opCtx(t)).If(clientv3.Compare(clientv3.Value("a"), "=", "1")).
		Then(clientv3.OpPut("d", "then"), clientv3.OpGet("d")).Else(clientv3.OpPut("d", "else")).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)
	require.Equal(t, int64(3), resp.Header.Revision)

	t.Logf("Step 5: more ops than --max-txn-ops (128 by default) fail with ErrTooManyOps")
	ops := make([]clientv3.Op, 129)
	for i := range ops {
		ops[i] = clientv3.OpPut(fmt.Sprintf("op/%03d", i), "v")
	}
	_, err = cli.Txn(opCtx(t)).Then(ops...).Commit()
	requireErrIs(t, err, rpctypes.ErrTooManyOps, "129 ops")
	resp, err = cli.Txn(opCtx(t)).Then(ops[:128]...).Commit()
	require.NoError(t, err)
	require.Equal(t, int64(4), resp.Header.Revision)
	require.Equal(t, int64(128), mustGet(t, cli, "op/", clientv3.WithPrefix(), clientv3.WithCountOnly()).Count)

	t.Logf("Step 6: none of the rejected requests wrote")
	get := mustGet(t, cli, "d")
	require.Equal(t, []string{"d=then c3 m3 v1"}, kvStrings(get.Kvs))
	require.Equal(t, int64(4), get.Header.Revision)
}

func TestEtcd_RequestLimits(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: starting one member with --max-request-bytes 1024 --max-txn-ops 4")
	_, cli := startCompat(t, "--max-request-bytes", "1024", "--max-txn-ops", "4")
	big := strings.Repeat("x", 2000)

	t.Logf("Step 2: a put over the limit fails with ErrRequestTooLarge; one under it works")
	_, err := cli.Put(opCtx(t), "big", big)
	requireErrIs(t, err, rpctypes.ErrRequestTooLarge, "2000-byte put")
	require.Equal(t, int64(2), mustPut(t, cli, "small", strings.Repeat("x", 900)).Header.Revision)

	t.Logf("Step 3: a txn over the byte limit fails the same way")
	_, err = cli.Txn(opCtx(t)).Then(clientv3.OpPut("t1", big[:400]), clientv3.OpPut("t2", big[:400]), clientv3.OpPut("t3", big[:400])).Commit()
	requireErrIs(t, err, rpctypes.ErrRequestTooLarge, "1200-byte txn")

	t.Logf("Step 3b: the limit is on the raft request (as etcd): a put of exactly 1,024 bytes is refused, its header makes it larger")
	_, err = cli.Put(opCtx(t), "k", big[:1018]) // PutRequest: 1 + 1 + 1 (key) + 1 + 2 + 1,018 (value) = 1,024 bytes
	requireErrIs(t, err, rpctypes.ErrRequestTooLarge, "1,024-byte put")

	t.Logf("Step 3c: a read-only txn is not limited (it does not go through raft, as in etcd)")
	ro, err := cli.Txn(opCtx(t)).If(clientv3.Compare(clientv3.Version(big), "=", 0)).Then(clientv3.OpGet(big)).Commit()
	require.NoError(t, err, "a read-only txn of 4,000 bytes")
	require.True(t, ro.Succeeded)

	t.Logf("Step 4: 5 ops fail with ErrTooManyOps, 4 work")
	ops := []clientv3.Op{clientv3.OpPut("o1", "v"), clientv3.OpPut("o2", "v"), clientv3.OpPut("o3", "v"), clientv3.OpPut("o4", "v"), clientv3.OpPut("o5", "v")}
	_, err = cli.Txn(opCtx(t)).Then(ops...).Commit()
	requireErrIs(t, err, rpctypes.ErrTooManyOps, "5 ops with limit 4")
	cmps := make([]clientv3.Cmp, 5)
	for i := range cmps {
		cmps[i] = clientv3.Compare(clientv3.Version(fmt.Sprintf("o%d", i+1)), "=", 0)
	}
	_, err = cli.Txn(opCtx(t)).If(cmps...).Commit()
	requireErrIs(t, err, rpctypes.ErrTooManyOps, "5 compares with limit 4")
	resp, err := cli.Txn(opCtx(t)).Then(ops[:4]...).Commit()
	require.NoError(t, err)
	require.Equal(t, int64(3), resp.Header.Revision)

	t.Logf("Step 5: only the accepted writes are there")
	get := mustGet(t, cli, "", clientv3.WithFromKey(), clientv3.WithKeysOnly())
	require.Equal(t, []string{"o1", "o2", "o3", "o4", "small"}, keysOf(get.Kvs))
	require.Equal(t, int64(3), get.Header.Revision)
}
