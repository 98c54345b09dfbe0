package test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Linearizability under leader failures, checked with porcupine against a
// key-value model: concurrent clients put, get (linearizable) and
// compare-and-swap on a few keys while the leader is killed and restarted.
// Every operation is recorded with its call and return time. A write whose
// outcome is unknown (error or timeout: it may still commit) is recorded as
// returning at the end of time, which lets the checker place it anywhere
// after its call, or nowhere (a failed write placed last has no observable
// effect). A failed read has no effect and is left out.
//
// Before the check, the keys' write histories (read back version by version;
// every value is unique) settle most unknown writes: one whose value was
// never written had no effect and is dropped. Without that, the few dozen
// writes that time out while there is no leader each stay concurrent with
// everything after them, and the search can take minutes.

// linOpKind is the kind of a recorded operation.
type linOpKind int

const (
	linGet linOpKind = iota
	linPut
	linCAS
)

// linInput is an operation's request. For a CAS, expect is the value the key
// must have ("" for absent) for value to be written.
type linInput struct {
	kind   linOpKind
	key    string
	value  string
	expect string
}

// linOutput is an operation's answer: the value read (get; "" for absent),
// whether a CAS swapped, and whether the outcome is unknown.
type linOutput struct {
	value   string
	swapped bool
	unknown bool
}

// linModel is a register per key; the state is the key's value ("" absent).
var linModel = porcupine.Model{
	Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range ops {
			k := op.Input.(linInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(string), input.(linInput), output.(linOutput)
		switch in.kind {
		case linGet:
			return out.value == st, st
		case linPut:
			return true, in.value
		default: // linCAS
			match := st == in.expect
			if !out.unknown && out.swapped != match {
				return false, st
			}
			if match {
				return true, in.value
			}
			return true, st
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		res := out.value
		switch {
		case out.unknown:
			res = "?"
		case in.kind == linCAS:
			res = fmt.Sprint(out.swapped)
		}
		switch in.kind {
		case linGet:
			return fmt.Sprintf("get(%s) -> %q", in.key, res)
		case linPut:
			return fmt.Sprintf("put(%s, %s) -> %s", in.key, in.value, res)
		}
		return fmt.Sprintf("cas(%s, %q -> %s) -> %s", in.key, in.expect, in.value, res)
	},
}

// linHistory collects operations from concurrent clients, timed against one
// monotonic start.
type linHistory struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func (h *linHistory) now() int64 { return int64(time.Since(h.start)) }

func (h *linHistory) add(client int, in linInput, call int64, out linOutput, ret int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// runLinClient does random operations on keys until stop is closed, recording
// each in h. Values are unique ("c<client>-<n>") so a read names its write.
func runLinClient(cli *clientv3.Client, id int, keys []string, h *linHistory, stop <-chan struct{}, counts *linCounts) {
	rng := rand.New(rand.NewPCG(uint64(id), 42))
	seen := map[string]string{} // the last value this client saw per key
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		key := keys[rng.IntN(len(keys))]
		val := fmt.Sprintf("c%d-%d", id, n)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		call := h.now()
		switch p := rng.IntN(10); {
		case p < 4:
			r, err := cli.Get(ctx, key)
			ret := h.now()
			if err != nil {
				counts.add(linGet, false)
				break // a failed read has no effect
			}
			v := ""
			if len(r.Kvs) == 1 {
				v = string(r.Kvs[0].Value)
			}
			seen[key] = v
			h.add(id, linInput{kind: linGet, key: key}, call, linOutput{value: v}, ret)
			counts.add(linGet, true)
		case p < 7:
			_, err := cli.Put(ctx, key, val)
			ret := h.now()
			in := linInput{kind: linPut, key: key, value: val}
			if err != nil {
				h.add(id, in, call, linOutput{unknown: true}, math.MaxInt64)
				counts.add(linPut, false)
				break
			}
			h.add(id, in, call, linOutput{}, ret)
			counts.add(linPut, true)
		default:
			expect := seen[key]
			cmp := clientv3.Compare(clientv3.Value(key), "=", expect)
			if expect == "" {
				// NB: a value compare on a missing key always fails in etcd.
				cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
			}
			r, err := cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, val)).Commit()
			ret := h.now()
			in := linInput{kind: linCAS, key: key, value: val, expect: expect}
			if err != nil {
				h.add(id, in, call, linOutput{unknown: true}, math.MaxInt64)
				counts.add(linCAS, false)
				break
			}
			if r.Succeeded {
				seen[key] = val
			}
			h.add(id, in, call, linOutput{swapped: r.Succeeded}, ret)
			counts.add(linCAS, true)
		}
		cancel()
	}
}

// linCounts counts operations by kind and outcome.
type linCounts struct {
	mu      sync.Mutex
	ok, bad [3]int
}

func (c *linCounts) add(k linOpKind, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok {
		c.ok[k]++
	} else {
		c.bad[k]++
	}
}

func TestLinearizability_KillLeaderUnderConcurrentClients(t *testing.T) {
	for _, engine := range []string{engineRocksDB, engineMemory} {
		t.Run(engine, func(t *testing.T) { testLinearizabilityKillLeader(t, engine) })
	}
}

func testLinearizabilityKillLeader(t *testing.T, engine string) {
	const clients, load = 10, 10 * time.Second
	keys := []string{"lin-a", "lin-b", "lin-c", "lin-d"}

	t.Logf("Step 1: starting 3 %s members; %d clients (each on all endpoints) on %d keys", engine, clients, len(keys))
	c := startCluster(t, engine, 3)
	h := &linHistory{start: time.Now()}
	var counts linCounts
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		cli := newClient(t, c.endpoints()...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			runLinClient(cli, i, keys, h, stop, &counts)
		}()
	}
	deadline := time.Now().Add(load)

	t.Logf("Step 2: killing and restarting the leader twice during %v of load", load)
	for round := 1; round <= 2; round++ {
		waitFor(t, 10*time.Second, "some load", func() bool { return time.Since(h.start) >= time.Duration(round)*2*time.Second })
		l := c.leader()
		t.Logf("round %d: SIGKILL leader %s at %v", round, l.name, time.Since(h.start).Round(time.Millisecond))
		lid := memberID(t, l)
		l.kill()
		waitNewLeader(t, c, lid, 10*time.Second)
		l.restart()
		c.waitReady(30 * time.Second)
		t.Logf("round %d: %s back at %v", round, l.name, time.Since(h.start).Round(time.Millisecond))
	}
	waitFor(t, load+30*time.Second, "the end of the load", func() bool { return time.Now().After(deadline) })
	close(stop)
	wg.Wait()
	t.Logf("ok/failed: get %d/%d, put %d/%d, cas %d/%d", counts.ok[linGet], counts.bad[linGet],
		counts.ok[linPut], counts.bad[linPut], counts.ok[linCAS], counts.bad[linCAS])
	require.Positive(t, counts.ok[linCAS], "some CAS succeeded")

	t.Logf("Step 3: reading every key's write history; resolving writes of unknown outcome")
	cli := newClient(t, c.endpoints()...)
	written := writeHistory(t, cli, keys, currentRev(t, cli))
	ops, dropped, lost := resolveUnknown(h.ops, written)
	require.Empty(t, lost, "acknowledged writes missing from the history")
	t.Logf("%d writes of unknown outcome never took effect (dropped), %d did", dropped, countUnknown(ops))

	t.Logf("Step 4: checking %d operations for linearizability", len(ops))
	started := time.Now()
	res := porcupine.CheckOperationsTimeout(linModel, ops, 30*time.Second)
	t.Logf("checked in %v: %s", time.Since(started).Round(time.Millisecond), res)
	require.Equal(t, porcupine.Ok, res, "the history is not linearizable (or the check timed out)")
}

// writeHistory returns, per key, every value the key has had up to rev,
// walking its versions back from rev (each version names the revision of
// the one before). Nothing in these tests deletes or compacts.
func writeHistory(t *testing.T, cli *clientv3.Client, keys []string, rev int64) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(keys))
	for _, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vals := map[string]bool{}
			for r := rev; r > 0; {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				resp, err := cli.Get(ctx, k, clientv3.WithRev(r))
				cancel()
				if err != nil {
					errs <- fmt.Errorf("%s at revision %d: %w", k, r, err)
					return
				}
				if len(resp.Kvs) == 0 {
					break
				}
				vals[string(resp.Kvs[0].Value)] = true
				r = resp.Kvs[0].ModRevision - 1
			}
			mu.Lock()
			out[k] = vals
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return out
}

// resolveUnknown uses the write history (values are unique) to settle
// writes of unknown outcome: one whose value was never written had no
// effect and is dropped; a CAS whose value was written did swap. The return
// time of a write that took effect stays unknown. It also lists
// acknowledged writes (a put, or a CAS that swapped) missing from the
// history.
func resolveUnknown(ops []porcupine.Operation, written map[string]map[string]bool) (out []porcupine.Operation, dropped int, lost []string) {
	for _, op := range ops {
		in, res := op.Input.(linInput), op.Output.(linOutput)
		wrote := in.kind == linPut || (in.kind == linCAS && (res.swapped || res.unknown))
		if !wrote {
			out = append(out, op)
			continue
		}
		inHistory := written[in.key][in.value]
		switch {
		case !res.unknown && !inHistory:
			lost = append(lost, in.key+"="+in.value)
		case res.unknown && !inHistory:
			dropped++
			continue
		case res.unknown && in.kind == linCAS:
			op.Output = linOutput{swapped: true} // known now; when, still not
		}
		out = append(out, op)
	}
	return out, dropped, lost
}

// countUnknown counts the operations that never returned (as recorded).
func countUnknown(ops []porcupine.Operation) int {
	n := 0
	for _, op := range ops {
		if op.Return == math.MaxInt64 {
			n++
		}
	}
	return n
}

func TestLinearizability_CheckerRejectsBadHistories(t *testing.T) {
	op := func(client int, in linInput, call int64, out linOutput, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
	}
	get := func(k string) linInput { return linInput{kind: linGet, key: k} }
	put := func(k, v string) linInput { return linInput{kind: linPut, key: k, value: v} }
	cas := func(k, expect, v string) linInput { return linInput{kind: linCAS, key: k, value: v, expect: expect} }
	read := func(v string) linOutput { return linOutput{value: v} }
	done, unknown := linOutput{}, linOutput{unknown: true}
	const never = math.MaxInt64
	cases := []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"read returns a value written after it returned", []porcupine.Operation{
			op(0, get("x"), 0, read("b"), 10),
			op(1, put("x", "b"), 20, done, 30),
		}, porcupine.Illegal},
		{"stale read after an acknowledged write", []porcupine.Operation{
			op(0, put("x", "a"), 0, done, 10),
			op(1, get("x"), 20, read(""), 30),
		}, porcupine.Illegal},
		{"value goes back in time", []porcupine.Operation{
			op(0, put("x", "a"), 0, done, 10),
			op(0, put("x", "b"), 20, done, 30),
			op(1, get("x"), 40, read("b"), 50),
			op(2, get("x"), 60, read("a"), 70),
		}, porcupine.Illegal},
		{"CAS claims success against another value", []porcupine.Operation{
			op(0, put("x", "a"), 0, done, 10),
			op(1, cas("x", "z", "c"), 20, linOutput{swapped: true}, 30),
		}, porcupine.Illegal},
		{"unknown write seen, then unseen", []porcupine.Operation{
			op(0, put("x", "u"), 0, unknown, never),
			op(1, get("x"), 10, read("u"), 20),
			op(1, get("x"), 30, read(""), 40),
		}, porcupine.Illegal},
		{"another key does not excuse a stale read", []porcupine.Operation{
			op(0, put("y", "a"), 0, done, 10),
			op(0, put("x", "a"), 0, done, 10),
			op(1, get("y"), 20, read("a"), 30),
			op(1, get("x"), 20, read(""), 30),
		}, porcupine.Illegal},
		// Controls: the same checker accepts legal histories.
		{"concurrent read sees either value", []porcupine.Operation{
			op(0, put("x", "a"), 0, done, 30),
			op(1, get("x"), 10, read("a"), 20),
			op(2, get("x"), 10, read(""), 20),
		}, porcupine.Ok},
		{"unknown write may never take effect", []porcupine.Operation{
			op(0, put("x", "u"), 0, unknown, never),
			op(1, get("x"), 10, read(""), 20),
			op(1, put("x", "v"), 30, done, 40),
			op(1, get("x"), 50, read("v"), 60),
		}, porcupine.Ok},
		{"unknown write may take effect late", []porcupine.Operation{
			op(0, put("x", "u"), 0, unknown, never),
			op(1, get("x"), 10, read(""), 20),
			op(1, get("x"), 30, read("u"), 40),
		}, porcupine.Ok},
		{"unknown CAS applies only if its compare held", []porcupine.Operation{
			op(0, put("x", "a"), 0, done, 10),
			op(1, cas("x", "a", "b"), 20, unknown, never),
			op(2, get("x"), 30, read("b"), 40),
			op(2, cas("x", "b", "c"), 50, linOutput{swapped: true}, 60),
			op(3, get("x"), 70, read("c"), 80),
		}, porcupine.Ok},
	}
	for i, tc := range cases {
		t.Logf("Step %d: %s", i+1, tc.name)
		require.Equal(t, tc.want, porcupine.CheckOperationsTimeout(linModel, tc.ops, 10*time.Second), tc.name)
	}
}
