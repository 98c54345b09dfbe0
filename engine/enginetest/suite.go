package enginetest

import (
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"sort"
	"testing"

	"github.com/metastore/metastore/engine"
)

// Factory tells the suite how to open an engine. See the package comment for
// the directories Open receives.
type Factory struct {
	// Open opens (or reopens) the engine stored in dir, failing t on error.
	Open func(t *testing.T, dir string) engine.Engine
	// Durable is set for engines whose committed data survives Close and a
	// reopen of the same directory. The memory engine persists only through
	// Checkpoint, so it leaves this false.
	Durable bool
}

// suiteCase is one conformance check.
type suiteCase struct {
	name string
	fn   func(t *testing.T, h *harness)
}

// Run runs every conformance case as a subtest of t.
func Run(t *testing.T, f Factory) {
	if f.Open == nil {
		t.Fatal("enginetest: Factory.Open is nil")
	}
	var cases []suiteCase
	cases = append(cases, batchCases...)
	cases = append(cases, iterCases...)
	cases = append(cases, lifecycleCases...)
	cases = append(cases, versionCases...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, &harness{f: f})
		})
	}
}

// harness opens engines for one case and closes them when it ends.
type harness struct {
	f Factory
}

// open returns a new engine in a fresh directory, and that directory.
func (h *harness) open(t *testing.T) (engine.Engine, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "db")
	mkdir(t, dir)
	return h.openDir(t, dir), dir
}

// openDir opens the engine in dir and closes it when the test ends.
func (h *harness) openDir(t *testing.T, dir string) engine.Engine {
	t.Helper()
	e := h.f.Open(t, dir)
	if e == nil {
		t.Fatalf("Factory.Open(%q) returned nil", dir)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// kv is one key/value pair, as strings so that tests can compare and print.
type kv struct{ k, v string }

func (p kv) String() string { return fmt.Sprintf("%q=%q", p.k, short(p.v)) }

func short(s string) string {
	if len(s) > 24 {
		return fmt.Sprintf("%s...(%d bytes)", s[:16], len(s))
	}
	return s
}

// model is what a keyspace should hold.
type model map[string]string

// sorted returns the model's pairs in ascending key order.
func (m model) sorted() []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].k < out[j].k })
	return out
}

// within returns the pairs of m inside [lower, upper) in iteration order.
func (m model) within(lower, upper []byte, reverse bool) []kv {
	var out []kv
	for _, p := range m.sorted() {
		if lower != nil && p.k < string(lower) {
			continue
		}
		if upper != nil && p.k >= string(upper) {
			continue
		}
		out = append(out, p)
	}
	if reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

func (m model) deleteRange(start, end string) {
	for k := range m {
		if k >= start && k < end {
			delete(m, k)
		}
	}
}

// commit builds one batch with fn and commits it, failing t on error.
func commit(t *testing.T, e engine.Engine, fn func(b engine.Batch)) {
	t.Helper()
	b := e.NewBatch()
	defer b.Close()
	fn(b)
	if err := b.Commit(false); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// putAll commits the pairs of m into ks in one batch.
func putAll(t *testing.T, e engine.Engine, ks engine.Keyspace, m model) {
	t.Helper()
	commit(t, e, func(b engine.Batch) {
		for k, v := range m {
			b.Put(ks, []byte(k), []byte(v))
		}
	})
}

// mustGet returns the value of key, failing t on any error.
func mustGet(t *testing.T, r engine.Reader, ks engine.Keyspace, key string) string {
	t.Helper()
	v, err := r.Get(ks, []byte(key))
	if err != nil {
		t.Fatalf("Get(%v, %q): %v", ks, key, err)
	}
	return string(v)
}

// wantValue checks that key holds want.
func wantValue(t *testing.T, r engine.Reader, ks engine.Keyspace, key, want string) {
	t.Helper()
	if got := mustGet(t, r, ks, key); got != want {
		t.Fatalf("Get(%v, %q) = %q, want %q", ks, key, short(got), short(want))
	}
}

// wantNotFound checks that key is absent.
func wantNotFound(t *testing.T, r engine.Reader, ks engine.Keyspace, key string) {
	t.Helper()
	v, err := r.Get(ks, []byte(key))
	if !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Get(%v, %q) = %q, %v; want engine.ErrNotFound", ks, key, short(string(v)), err)
	}
}

// scan positions it with first (or First when first is nil) and collects
// every pair until it becomes invalid, copying keys and values.
func scan(t *testing.T, it engine.Iterator, first func() bool) []kv {
	t.Helper()
	if first == nil {
		first = it.First
	}
	var out []kv
	for ok := first(); ok; ok = it.Next() {
		if !it.Valid() {
			t.Fatalf("positioning returned true but Valid() is false")
		}
		out = append(out, kv{string(it.Key()), string(it.Value())})
	}
	if it.Valid() {
		t.Fatalf("positioning returned false but Valid() is true")
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterator error: %v", err)
	}
	return out
}

// dump returns everything r holds in ks within opts.
func dump(t *testing.T, r engine.Reader, ks engine.Keyspace, opts engine.IterOptions) []kv {
	t.Helper()
	it := r.NewIterator(ks, opts)
	defer it.Close()
	return scan(t, it, nil)
}

// wantPairs compares two pair lists exactly.
func wantPairs(t *testing.T, what string, got, want []kv) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d pairs, want %d\n got: %v\nwant: %v", what, len(got), len(want), head(got), head(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: pair %d = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func head(p []kv) []kv {
	if len(p) > 8 {
		return p[:8]
	}
	return p
}

// wantContents checks that ks holds exactly m, by forward and reverse
// iteration and by Get of every key.
func wantContents(t *testing.T, r engine.Reader, ks engine.Keyspace, m model) {
	t.Helper()
	wantPairs(t, fmt.Sprintf("forward scan of %v", ks), dump(t, r, ks, engine.IterOptions{}), m.within(nil, nil, false))
	wantPairs(t, fmt.Sprintf("reverse scan of %v", ks), dump(t, r, ks, engine.IterOptions{Reverse: true}), m.within(nil, nil, true))
	for k, v := range m {
		wantValue(t, r, ks, k, v)
	}
}

// value returns a deterministic value of n bytes derived from seed.
func value(seed, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + (seed+i*7)%26)
	}
	return string(b)
}

// randomBytes returns n incompressible bytes.
func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	rng.Read(b)
	return b
}

func keyf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func bytesOrNil(s *string) []byte {
	if s == nil {
		return nil
	}
	return []byte(*s)
}

func sp(s string) *string { return &s }
