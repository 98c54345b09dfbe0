package mvcc

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// newHub starts a hub over s wired as its commit hook, closed at cleanup.
func newHub(t *testing.T, s *Store, cfg WatchConfig) *WatchHub {
	t.Helper()
	h := NewWatchHub(s, cfg)
	s.SetCommitHook(h.Notify)
	t.Cleanup(func() {
		s.SetCommitHook(nil)
		h.Close()
	})
	return h
}

// reader collects a stream's responses in order.
type reader struct {
	t    *testing.T
	ws   *WatchStream
	got  []WatchResponse
	seen int // responses returned by next so far
}

func newReader(t *testing.T, ws *WatchStream) *reader { return &reader{t: t, ws: ws} }

// poll takes whatever is queued now.
func (r *reader) poll() {
	r.got = r.ws.Take(r.got)
}

// until polls until cond holds on everything received, failing after 5 s.
func (r *reader) until(what string, cond func(got []WatchResponse) bool) {
	r.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		r.poll()
		if cond(r.got) {
			return
		}
		select {
		case <-r.ws.Ready():
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			r.t.Fatalf("timed out waiting for %s; got %s", what, describe(r.got))
		}
	}
}

// next waits for n more responses and returns them.
func (r *reader) next(n int) []WatchResponse {
	r.t.Helper()
	want := r.seen + n
	r.until(fmt.Sprintf("%d responses", want), func(got []WatchResponse) bool { return len(got) >= want })
	out := r.got[r.seen:want]
	r.seen = want
	return out
}

// quiet checks that nothing more arrives for a short while.
func (r *reader) quiet() {
	r.t.Helper()
	r.poll()
	n := len(r.got)
	time.Sleep(50 * time.Millisecond) // NB: proving absence needs a wait
	r.poll()
	require.Equal(r.t, n, len(r.got), "unexpected responses: %s", describe(r.got[n:]))
	r.seen = n
}

// eventsOf flattens the events of id's responses to "TYPE key@rev".
func eventsOf(resps []WatchResponse, id int64) []string {
	var out []string
	for _, r := range resps {
		if r.WatchID != id {
			continue
		}
		for _, ev := range r.Events {
			out = append(out, evString(ev))
		}
	}
	return out
}

func evString(ev *mvccpb.Event) string {
	return fmt.Sprintf("%s %s@%d", ev.Type, ev.Kv.Key, ev.Kv.ModRevision)
}

func describe(resps []WatchResponse) string {
	s := ""
	for _, r := range resps {
		s += fmt.Sprintf("\n  {id=%d rev=%d created=%v canceled=%v compact=%d reason=%q events=%v}",
			r.WatchID, r.Revision, r.Created, r.Canceled, r.CompactRevision, r.CancelReason, eventsOf([]WatchResponse{r}, r.WatchID))
	}
	return s
}

func puts(t *testing.T, s *Store, n int, keyf string) {
	t.Helper()
	for i := 0; i < n; i++ {
		put(t, s, fmt.Sprintf(keyf, i), fmt.Sprint(i))
	}
}

// seq builds "PUT key@rev" strings for keys keyf(i) put at revisions
// from, from+1, ...
func seq(keyf string, from int64, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("PUT "+keyf+"@%d", i, from+int64(i))
	}
	return out
}

// waitStats polls the hub until cond holds.
func waitStats(t *testing.T, h *WatchHub, what string, cond func(WatchStats) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond(h.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; stats %+v", what, h.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
