package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// kvServer is a stand-in for the /v1/kv/{key} REST API: it stores PUT
// bodies and serves them back, 404 for a missing key.
type kvServer struct {
	mu   sync.Mutex
	data map[string]string
	puts int
	gets int
}

func (s *kvServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, ok := strings.CutPrefix(r.URL.Path, "/v1/kv/")
	if !ok || key == "" {
		http.Error(w, "no such path", http.StatusNotFound)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		s.data[key] = string(b)
		s.puts++
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		s.gets++
		v, ok := s.data[key]
		if !ok {
			http.Error(w, `{"error":"key not found"}`, http.StatusNotFound)
			return
		}
		io.WriteString(w, v)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func TestREST_PutThenGet(t *testing.T) {
	t.Logf("Step 1: a REST stand-in")
	kv := &kvServer{data: map[string]string{}}
	srv := httptest.NewServer(kv)
	t.Cleanup(srv.Close)
	o := DefaultOptions()
	o.Endpoints = []string{srv.URL}
	o.Conns, o.Clients, o.Total = 4, 16, 400
	o.KeySpaceSize, o.SequentialKeys, o.ValSize = 200, true, 32

	t.Logf("Step 2: rest-get before any put: every request is a 404")
	res, err := RESTGet(context.Background(), o)
	require.NoError(t, err)
	require.Equal(t, int64(0), res.Succeeded)
	require.Equal(t, map[string]int64{"http-404": 400}, res.Errors)

	t.Logf("Step 3: rest-put over the key space")
	res, err = RESTPut(context.Background(), o)
	require.NoError(t, err)
	require.Equal(t, int64(400), res.Succeeded)
	require.Equal(t, int64(0), res.Failed)
	require.Equal(t, "rest-put", res.Workload)

	t.Logf("Step 4: every key holds the value; rest-get finds them all")
	kv.mu.Lock()
	require.Equal(t, 400, kv.puts)
	require.Len(t, kv.data, 200)
	require.Equal(t, strings.Repeat("v", 32), kv.data["00000199"])
	kv.mu.Unlock()
	res, err = RESTGet(context.Background(), o)
	require.NoError(t, err)
	require.Equal(t, int64(400), res.Succeeded)
	require.Empty(t, res.Errors)
	kv.mu.Lock()
	require.Equal(t, 2*400+3, kv.gets, "two runs of 400 GETs plus one reachability probe per run")
	kv.mu.Unlock()
}

func TestREST_UnreachableFailsOnce(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	o := DefaultOptions()
	o.Endpoints = []string{addr}
	_, err := RESTPut(context.Background(), o)
	require.ErrorContains(t, err, "bench: connecting to http://"+addr)
}
