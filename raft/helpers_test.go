package raft

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/metastore/metastore/engine"
	"github.com/metastore/metastore/engine/memory"
)

// kvApplier is the toy state machine of the tests: "key=value" entries
// become keys in the engine's Data keyspace, and the applied index is
// written to Meta in the same batch.
type kvApplier struct {
	eng      engine.Engine
	applied  atomic.Uint64
	restores atomic.Int64
	mu       sync.Mutex // serializes Apply and Restore
	// onApplied, if set, sees each applied command after its batch committed.
	onApplied func(cmd []byte)
}

var keyApplied = []byte("applied")

func newKVApplier(t testing.TB, eng engine.Engine) *kvApplier {
	a := &kvApplier{eng: eng}
	b, err := eng.Get(engine.Meta, keyApplied)
	if err == nil {
		a.applied.Store(binary.BigEndian.Uint64(b))
	} else {
		require.ErrorIs(t, err, engine.ErrNotFound)
	}
	return a
}

func (a *kvApplier) Apply(ents []*raftpb.Entry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.eng.NewBatch()
	defer b.Close()
	for _, e := range ents {
		if want := a.applied.Load() + 1; e.GetIndex() != want {
			return fmt.Errorf("kvApplier: got entry %d, want %d", e.GetIndex(), want)
		}
		if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
			k, v, ok := bytes.Cut(e.GetData(), []byte("="))
			if !ok {
				return fmt.Errorf("kvApplier: bad command %q", e.GetData())
			}
			b.Put(engine.Data, k, v)
		}
		a.applied.Store(e.GetIndex())
	}
	var idx [8]byte
	binary.BigEndian.PutUint64(idx[:], a.applied.Load())
	b.Put(engine.Meta, keyApplied, idx[:])
	if err := b.Commit(false); err != nil {
		return err
	}
	if a.onApplied != nil {
		for _, e := range ents {
			if len(e.GetData()) > 0 {
				a.onApplied(e.GetData())
			}
		}
	}
	return nil
}

func (a *kvApplier) AppliedIndex() uint64 { return a.applied.Load() }
func (a *kvApplier) DurableIndex() uint64 { return a.applied.Load() }

func (a *kvApplier) WriteSnapshot(w io.Writer) error {
	snap := a.eng.NewSnapshot()
	defer snap.Close()
	bw := bufio.NewWriter(w)
	idx, err := snap.Get(engine.Meta, keyApplied)
	if err != nil {
		return err
	}
	bw.Write(idx)
	it := snap.NewIterator(engine.Data, engine.IterOptions{})
	defer it.Close()
	var l [binary.MaxVarintLen64]byte
	for ok := it.First(); ok; ok = it.Next() {
		bw.Write(l[:binary.PutUvarint(l[:], uint64(len(it.Key())))])
		bw.Write(it.Key())
		bw.Write(l[:binary.PutUvarint(l[:], uint64(len(it.Value())))])
		bw.Write(it.Value())
	}
	if err := it.Err(); err != nil {
		return err
	}
	return bw.Flush()
}

func (a *kvApplier) Restore(r io.Reader) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	br := bufio.NewReader(r)
	var idx [8]byte
	if _, err := io.ReadFull(br, idx[:]); err != nil {
		return err
	}
	b := a.eng.NewBatch()
	defer b.Close()
	it := a.eng.NewIterator(engine.Data, engine.IterOptions{})
	for ok := it.First(); ok; ok = it.Next() {
		b.Delete(engine.Data, bytes.Clone(it.Key()))
	}
	it.Close()
	readBytes := func() ([]byte, error) {
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, err
		}
		p := make([]byte, n)
		_, err = io.ReadFull(br, p)
		return p, err
	}
	for {
		k, err := readBytes()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		v, err := readBytes()
		if err != nil {
			return err
		}
		b.Put(engine.Data, k, v)
	}
	b.Put(engine.Meta, keyApplied, idx[:])
	if err := b.Commit(true); err != nil {
		return err
	}
	a.applied.Store(binary.BigEndian.Uint64(idx[:]))
	a.restores.Add(1)
	return nil
}

func (a *kvApplier) dump(t testing.TB) map[string]string {
	m := map[string]string{}
	it := a.eng.NewIterator(engine.Data, engine.IterOptions{})
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		m[string(it.Key())] = string(it.Value())
	}
	require.NoError(t, it.Err())
	return m
}

// testMember is one in-process member on a real gRPC transport.
type testMember struct {
	name    string
	url     string
	eng     engine.Engine // holds both the raft log and the kvApplier state
	applier *kvApplier
	tr      *Transport
	node    *Node
	cfg     Config
	// onApplied is handed to the applier at start (benchmarks).
	onApplied func(cmd []byte)
	// localIP, when set, is the source address of its peer connections.
	localIP net.IP
}

type testCluster struct {
	t       testing.TB
	members []*testMember
	token   string
}

func listen(t testing.TB, addr string) net.Listener {
	var lis net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		lis, err = net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the old server may still hold the port
	}
	require.NoError(t, err)
	return lis
}

func testLogger(t testing.TB) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
}

// fastTimings shortens heartbeats and elections for tests that wait for
// them (a partitioned member losing its leader, a restart, a removal).
func fastTimings(cfg *Config) {
	cfg.HeartbeatInterval = 50 * time.Millisecond
	cfg.ElectionTimeout = 500 * time.Millisecond
}

// newCluster starts n members with default timings unless tweak changes them.
func newCluster(t testing.TB, n int, tweak func(*Config)) *testCluster {
	return newClusterWith(t, n, tweak, nil)
}

// newClusterWith also installs onApplied in every member's applier.
func newClusterWith(t testing.TB, n int, tweak func(*Config), onApplied func([]byte)) *testCluster {
	c := &testCluster{t: t, token: "test-" + t.Name()}
	initial := map[string][]string{}
	var liss []net.Listener
	for i := 0; i < n; i++ {
		lis := listen(t, "127.0.0.1:0")
		liss = append(liss, lis)
		m := &testMember{name: fmt.Sprintf("m%d", i+1), url: "http://" + lis.Addr().String()}
		initial[m.name] = []string{m.url}
		c.members = append(c.members, m)
	}
	for i, m := range c.members {
		eng, err := memory.Open("")
		require.NoError(t, err)
		m.eng = eng
		m.onApplied = onApplied
		m.cfg = Config{Name: m.name, InitialCluster: initial, ClusterToken: c.token, LogEngine: eng,
			DataDir: t.TempDir(), Logger: testLogger(t).Named(m.name)}
		if tweak != nil {
			tweak(&m.cfg)
		}
		c.start(m, liss[i])
	}
	t.Cleanup(c.stopAll)
	return c
}

func (c *testCluster) start(m *testMember, lis net.Listener) {
	if lis == nil {
		lis = listen(c.t, strings.TrimPrefix(m.url, "http://"))
	}
	m.applier = newKVApplier(c.t, m.eng)
	m.applier.onApplied = m.onApplied
	m.tr = NewTransport(m.cfg.Logger)
	if m.localIP != nil {
		m.tr.SetLocalAddr(m.localIP)
	}
	m.tr.Serve(lis)
	n, err := Start(m.cfg, m.applier, m.tr)
	require.NoError(c.t, err)
	m.node = n
}

func (c *testCluster) stop(m *testMember) {
	if m.node != nil {
		m.node.Stop()
		m.tr.Close()
		m.node = nil
	}
}

func (c *testCluster) stopAll() {
	for _, m := range c.members {
		c.stop(m)
	}
}

func (c *testCluster) running() []*testMember {
	var out []*testMember
	for _, m := range c.members {
		if m.node != nil {
			out = append(out, m)
		}
	}
	return out
}

// waitLeader waits until all running members agree on one leader and
// returns it.
func (c *testCluster) waitLeader(timeout time.Duration) *testMember {
	var leader *testMember
	require.Eventually(c.t, func() bool {
		leader = nil
		var id uint64
		for _, m := range c.running() {
			l := m.node.Leader()
			if l == 0 || (id != 0 && l != id) {
				return false
			}
			id = l
		}
		for _, m := range c.running() {
			if m.node.ID() == id {
				leader = m
			}
		}
		return leader != nil
	}, timeout, 10*time.Millisecond, "no agreed leader within %v", timeout)
	return leader
}

func (c *testCluster) followers(leader *testMember) []*testMember {
	var out []*testMember
	for _, m := range c.running() {
		if m != leader {
			out = append(out, m)
		}
	}
	return out
}

// put proposes key=value through m and waits until m applied it.
func (c *testCluster) put(m *testMember, key, value string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.Eventually(c.t, func() bool {
		err := m.node.Propose(ctx, []byte(key+"="+value))
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	require.Eventually(c.t, func() bool {
		v, err := m.eng.Get(engine.Data, []byte(key))
		return err == nil && string(v) == value
	}, 5*time.Second, 2*time.Millisecond, "%s=%s not applied on %s", key, value, m.name)
}

// waitConverged waits until every running member's state equals want.
func (c *testCluster) waitConverged(want map[string]string, timeout time.Duration) {
	c.t.Helper()
	for _, m := range c.running() {
		require.Eventually(c.t, func() bool {
			got := m.applier.dump(c.t)
			return len(got) == len(want) && fmt.Sprint(sortedMap(got)) == fmt.Sprint(sortedMap(want))
		}, timeout, 10*time.Millisecond, "member %s did not converge", m.name)
	}
}

func sortedMap(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// partition isolates m from every other member (both directions).
func (c *testCluster) partition(m *testMember) {
	id := m.node.ID()
	f := func(from, to uint64) bool { return from == id || to == id }
	for _, o := range c.running() {
		o.tr.SetDropFilter(f)
	}
}

func (c *testCluster) heal() {
	for _, o := range c.running() {
		o.tr.SetDropFilter(nil)
	}
}
