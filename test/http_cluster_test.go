package test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHTTPGateway_MemberAddRemoveDefragment: etcd's gateway paths for
// membership and defragment: a learner added through
// /v3/cluster/member/add shows in the member list (over gRPC too), bad peer
// URLs get etcd's error, /v3/cluster/member/remove takes it out again, and
// /v3/maintenance/defragment answers with a header.
func TestHTTPGateway_MemberAddRemoveDefragment(t *testing.T) {
	t.Parallel()
	m := startMember(t, engineRocksDB)
	post := func(path, body string) (int, map[string]any) {
		resp, err := http.Post(m.clientURL+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var out map[string]any
		require.NoError(t, json.Unmarshal(b, &out), "%s: %s", path, b)
		return resp.StatusCode, out
	}

	t.Logf("Step 1: adding a learner through the gateway")
	peer := "http://127.0.0.1:" + itoa(freePorts(t, 1)[0])
	code, out := post("/v3/cluster/member/add", `{"peerURLs":["`+peer+`"],"isLearner":true}`)
	require.Equal(t, 200, code, "%v", out)
	added := out["member"].(map[string]any)
	id := added["ID"].(string) // uint64 as a JSON string, as etcd's gateway writes it
	require.Equal(t, true, added["isLearner"])
	require.Equal(t, []any{peer}, added["peerURLs"])
	require.Len(t, out["members"], 2)

	t.Logf("Step 2: the learner is in the member list over gRPC")
	cli := newClient(t, m.endpoint())
	list, err := cli.MemberList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Len(t, list.Members, 2)
	var learners int
	for _, mem := range list.Members {
		if mem.IsLearner {
			learners++
			require.Equal(t, []string{peer}, mem.PeerURLs)
		}
	}
	require.Equal(t, 1, learners)

	t.Logf("Step 3: bad peer URLs get etcd's error")
	code, out = post("/v3/cluster/member/add", `{"peerURLs":["not a url"]}`)
	require.Equal(t, 400, code)
	require.Equal(t, "etcdserver: given member URLs are invalid", out["message"])

	t.Logf("Step 4: removing it through the gateway")
	code, out = post("/v3/cluster/member/remove", `{"ID":"`+id+`"}`)
	require.Equal(t, 200, code, "%v", out)
	require.Len(t, out["members"], 1)

	t.Logf("Step 5: defragment through the gateway")
	code, out = post("/v3/maintenance/defragment", `{}`)
	require.Equal(t, 200, code, "%v", out)
	require.NotNil(t, out["header"])
}
