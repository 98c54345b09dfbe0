package mvcc

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func prevTestEvent(rev int64) *mvccpb.Event {
	return &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: &mvccpb.KeyValue{Key: []byte("a"), ModRevision: rev, Value: []byte("v")}}
}

func TestEventsFor(t *testing.T) {
	prev := &mvccpb.KeyValue{Key: []byte("a"), Value: []byte("0")}
	evs := []*mvccpb.Event{prevTestEvent(2), {Type: mvccpb.Event_PUT, Kv: prevTestEvent(3).Kv, PrevKv: prev}, prevTestEvent(4)}

	t.Logf("Step 1: kept when asked for, the same slice")
	require.Equal(t, evs, EventsFor(evs, true))

	t.Logf("Step 2: dropped otherwise, by copying: the shared events keep it")
	out := EventsFor(evs, false)
	require.Len(t, out, 3)
	for i, ev := range out {
		require.Nil(t, ev.PrevKv)
		require.Same(t, evs[i].Kv, ev.Kv)
	}
	require.Same(t, prev, evs[1].PrevKv)
	require.Same(t, evs[0], out[0])

	t.Logf("Step 3: events without PrevKv are passed through as is")
	plain := []*mvccpb.Event{prevTestEvent(2)}
	require.Equal(t, &plain[0], &EventsFor(plain, false)[0])
}
