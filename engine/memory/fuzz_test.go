package memory

import (
	"bytes"
	"errors"
	"testing"

	"github.com/metastore/metastore/engine"
)

// FuzzReadDelta feeds arbitrary bytes to the delta reader: it must return
// ErrCorrupt or apply the delta, never panic or allocate past the input.
// The seeds are a real delta and mutations of it.
func FuzzReadDelta(f *testing.F) {
	prev, cur := newTree(), newTree()
	prev.Set(item{key: []byte("a"), value: []byte("1")})
	prev.Set(item{key: []byte("b"), value: []byte("2")})
	cur.Set(item{key: []byte("a"), value: []byte("one")})
	cur.Set(item{key: []byte("c"), value: []byte("3")})
	var ps, cs state
	for ks := range ps.trees {
		ps.trees[ks], cs.trees[ks] = newTree(), newTree()
	}
	ps.trees[engine.Data], cs.trees[engine.Data] = prev, cur
	var buf bytes.Buffer
	if _, err := encodeDelta(&buf, 1, &ps, &cs); err != nil {
		f.Fatal(err)
	}
	good := buf.Bytes()
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(append(bytes.Clone(good), 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		var trees [engine.NumKeyspaces]*tree
		var sizes [engine.NumKeyspaces]int64
		err := readDelta(bytes.NewReader(b), int64(len(b)), 1, &trees, &sizes)
		if err != nil && !errors.Is(err, engine.ErrCorrupt) {
			t.Fatalf("error that is not ErrCorrupt: %v", err)
		}
		if bytes.Equal(b, good) {
			if err != nil {
				t.Fatalf("the encoded delta does not read back: %v", err)
			}
			if it, ok := trees[engine.Data].Get(item{key: []byte("a")}); !ok || string(it.value) != "one" {
				t.Fatalf("a = %q, %v after the delta; want one", it.value, ok)
			}
		}
	})
}
