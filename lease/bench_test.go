package lease

import (
	"context"
	"testing"
	"time"

	"github.com/metastore/metastore/engine"
)

// discard is a Writer that drops records.
type discard struct{}

func (discard) Put(engine.Keyspace, []byte, []byte) {}
func (discard) Delete(engine.Keyspace, []byte)      {}

// BenchmarkGrant: the apply-side cost of one grant on a primary lessor
// (deadline heap and checkpoint schedule included).
func BenchmarkGrant(b *testing.B) {
	l := New(Config{})
	l.Promote(0)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := l.Grant(discard{}, int64(i+1), 600); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenew: one keep-alive on the primary among 100k leases.
func BenchmarkRenew(b *testing.B) {
	const n = 100_000
	l := New(Config{})
	l.Promote(0)
	for i := 0; i < n; i++ {
		if _, err := l.Grant(discard{}, int64(i+1), 600); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := l.Renew(ctx, int64(i%n+1)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPromote100k: a new leader refreshing (and spreading) 100k leases.
func BenchmarkPromote100k(b *testing.B) {
	l := New(Config{})
	for i := 0; i < 100_000; i++ {
		if _, err := l.Grant(discard{}, int64(i+1), 60); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.Promote(time.Second)
		l.Demote()
	}
}
