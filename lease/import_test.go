package lease

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/metastore/metastore/engine/memory"
)

func TestImportRecord(t *testing.T) {
	t.Logf("Step 1: import two leases (one with a checkpoint) into an engine...")
	e, err := memory.Open("")
	require.NoError(t, err)
	defer e.Close()
	b := e.NewBatch()
	require.NoError(t, ImportRecord(b, 0x390da214a25d3e0a, 3600, 0))
	require.NoError(t, ImportRecord(b, 7, 60, 25))
	require.NoError(t, b.Commit(false))
	b.Close()

	t.Logf("Step 2: Load reads them back; promoted, each lease runs from its remaining TTL...")
	now := time.Unix(1_000_000, 0)
	l := New(Config{Now: func() time.Time { return now }})
	require.NoError(t, l.Load(e))
	require.Equal(t, []int64{7, 0x390da214a25d3e0a}, l.Leases())
	l.Promote(0)
	defer l.Demote()
	for _, want := range []Status{{ID: 7, GrantedTTL: 60, TTL: 25, Keys: [][]byte{}},
		{ID: 0x390da214a25d3e0a, GrantedTTL: 3600, TTL: 3600, Keys: [][]byte{}}} {
		st, err := l.TimeToLive(want.ID, true)
		require.NoError(t, err)
		require.Equal(t, want, st)
	}

	t.Logf("Step 3: bad records are refused...")
	for _, tc := range []struct{ id, ttl, remaining int64 }{{0, 10, 0}, {1, 0, 0}, {1, MaxTTL + 1, 0}, {1, 10, -1}} {
		err := ImportRecord(b, tc.id, tc.ttl, tc.remaining)
		require.ErrorIs(t, err, ErrBadImport, "%+v", tc)
	}
}
