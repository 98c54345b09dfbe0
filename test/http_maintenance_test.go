package test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// etcd's gateway paths of the Maintenance service beyond status and alarm:
// /v3/maintenance/snapshot (a stream), downgrade, and the root-only rule
// for hash, hashkv, snapshot, downgrade and defragment once auth is on, as
// over gRPC. Members start through startAPICluster, so these also run
// against real etcd (METASTORE_TEST_ETCD_BIN=/path/to/etcd go test -run
// TestHTTPMaintenance ./test/).

func TestHTTPMaintenance_MemorySnapshotDowngrade(t *testing.T) {
	scenarioHTTPSnapshotDowngrade(t, engineMemory)
}

func TestHTTPMaintenance_RocksDBSnapshotDowngrade(t *testing.T) {
	scenarioHTTPSnapshotDowngrade(t, engineRocksDB)
}

func TestHTTPMaintenance_MemoryAdminOnly(t *testing.T)  { scenarioHTTPAdminOnly(t, engineMemory) }
func TestHTTPMaintenance_RocksDBAdminOnly(t *testing.T) { scenarioHTTPAdminOnly(t, engineRocksDB) }

func scenarioHTTPSnapshotDowngrade(t *testing.T, engine string) {
	c := startAPICluster(t, engine, 1)
	base := c.members[0].clientURL
	cli := newClient(t, c.members[0].endpoint())

	t.Logf("Step 1: downgrade validate answers the cluster version; bad targets get etcd's errors")
	code, body := gwPost(t, base, "/v3/maintenance/downgrade", "", `{"action":"VALIDATE","version":"3.6"}`)
	requireGW(t, 200, `{"header":{"revision":"1"},"version":"3.7"}`, code, body, "validate 3.6")
	code, body = gwPost(t, base, "/v3/maintenance/downgrade", "", `{"action":"VALIDATE","version":"3.5"}`)
	requireGW(t, 400, `{"code":3,"message":"etcdserver: invalid downgrade target version"}`, code, body, "validate 3.5")
	code, body = gwPost(t, base, "/v3/maintenance/downgrade", "", `{"action":"VALIDATE","version":"x.y"}`)
	requireGW(t, 400, `{"code":3,"message":"etcdserver: wrong downgrade target version format"}`, code, body, "validate x.y")

	t.Logf("Step 2: downgrade enable shows in status; cancel clears it")
	code, body = gwPost(t, base, "/v3/maintenance/downgrade", "", `{"action":"ENABLE","version":"3.6"}`)
	requireGW(t, 200, `{"header":{"revision":"1"},"version":"3.7"}`, code, body, "enable 3.6")
	code, body = gwPost(t, base, "/v3/maintenance/status", "", `{}`)
	require.Equal(t, 200, code, body)
	require.Equal(t, map[string]any{"enabled": true, "targetVersion": "3.6.0"}, gwJSONField(t, body, "downgradeInfo"))
	code, body = gwPost(t, base, "/v3/maintenance/downgrade", "", `{"action":"CANCEL"}`)
	requireGW(t, 200, `{"header":{"revision":"1"},"version":"3.7"}`, code, body, "cancel")

	t.Logf("Step 3: 300 keys of 1 KiB, so that the snapshot takes several messages")
	val := strings.Repeat("v", 1024)
	for i := 0; i < 300; i++ {
		_, err := cli.Put(ctxT(t, 5*time.Second), fmt.Sprintf("snap/%03d", i), val)
		require.NoError(t, err)
	}

	t.Logf("Step 4: /v3/maintenance/snapshot streams blobs with remaining_bytes down to 0, then their SHA-256")
	s := openGWStream(t, base, "/v3/maintenance/snapshot", `{}`)
	var msgs []*pb.SnapshotResponse
	for {
		m := &pb.SnapshotResponse{}
		if !s.next(t, m) {
			break
		}
		msgs = append(msgs, m)
	}
	require.GreaterOrEqual(t, len(msgs), 3, "at least two blobs of 32 KiB at most, and the checksum")
	var data []byte
	for i, m := range msgs[:len(msgs)-1] {
		require.NotEmpty(t, m.Blob, "message %d", i)
		require.LessOrEqual(t, len(m.Blob), 32*1024, "message %d", i)
		data = append(data, m.Blob...)
		if i > 0 {
			require.Equal(t, msgs[i-1].RemainingBytes-uint64(len(m.Blob)), m.RemainingBytes, "message %d counts down", i)
		}
		require.Equal(t, "3.7.0", m.Version, "message %d: the storage version, as etcd 3.7.3 sends it", i)
	}
	require.Equal(t, uint64(len(msgs[0].Blob))+msgs[0].RemainingBytes, uint64(len(data)), "the first remaining_bytes announces the rest")
	require.Zero(t, msgs[len(msgs)-2].RemainingBytes)
	require.Greater(t, len(data), 300*1024, "the snapshot holds the values")
	last := msgs[len(msgs)-1]
	sum := sha256.Sum256(data)
	require.Equal(t, sum[:], last.Blob, "the last message is the SHA-256 of the blobs")
	require.Zero(t, last.RemainingBytes)

	t.Logf("Step 5: the gRPC Snapshot of the same state has the same bytes (blobs and checksum)")
	rc, err := cli.Snapshot(ctxT(t, 20*time.Second))
	require.NoError(t, err)
	grpcBytes, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	if c.engine == "etcd" {
		// NB: two bbolt copies of one state differ in their meta pages.
		require.Equal(t, len(data)+32, len(grpcBytes))
		return
	}
	require.True(t, bytes.Equal(append(data, sum[:]...), grpcBytes), "HTTP %d bytes, gRPC %d bytes", len(data)+32, len(grpcBytes))
}

func scenarioHTTPAdminOnly(t *testing.T, engine string) {
	c := startAPICluster(t, engine, 1, authFlags.extraFlags...)
	base := c.members[0].clientURL

	t.Logf("Step 1: root, and alice with read-write on /app/; auth on")
	for _, st := range []struct{ path, body string }{
		{"/v3/auth/user/add", `{"name":"root","password":"rootpw"}`},
		{"/v3/auth/role/add", `{"name":"root"}`},
		{"/v3/auth/user/grant", `{"user":"root","role":"root"}`},
		{"/v3/auth/role/add", `{"name":"app"}`},
		{"/v3/auth/role/grant", `{"name":"app","perm":{"permType":"READWRITE","key":"` + b64("/app/") + `","range_end":"` + b64("/app0") + `"}}`},
		{"/v3/auth/user/add", `{"name":"alice","password":"alicepw"}`},
		{"/v3/auth/user/grant", `{"user":"alice","role":"app"}`},
		{"/v3/auth/enable", `{}`},
	} {
		code, body := gwPost(t, base, st.path, "", st.body)
		require.Equal(t, 200, code, "%s: %s", st.path, body)
	}
	token := func(user, password string) string {
		code, body := gwPost(t, base, "/v3/auth/authenticate", "", `{"name":"`+user+`","password":"`+password+`"}`)
		require.Equal(t, 200, code, body)
		var r struct{ Token string }
		require.NoError(t, json.Unmarshal([]byte(body), &r))
		require.NotEmpty(t, r.Token)
		return r.Token
	}
	root, alice := token("root", "rootpw"), token("alice", "alicepw")

	t.Logf("Step 2: the admin paths: no token, alice refused; root answered")
	for _, p := range []struct {
		path, body string
		stream     bool // errors come as grpc-gateway's stream error line
	}{
		{"/v3/maintenance/hash", `{}`, false},
		{"/v3/maintenance/hashkv", `{}`, false},
		{"/v3/maintenance/snapshot", `{}`, true},
		{"/v3/maintenance/downgrade", `{"action":"VALIDATE","version":"3.6"}`, false},
		{"/v3/maintenance/defragment", `{}`, false},
	} {
		noUser, denied := `{"code":3,"message":"etcdserver: user name is empty"}`, `{"code":7,"message":"etcdserver: permission denied"}`
		if p.stream {
			noUser, denied = `{"error":`+noUser+`}`, `{"error":`+denied+`}`
		}
		code, body := gwPost(t, base, p.path, "", p.body)
		requireGW(t, 400, noUser, code, body, p.path+" without a token")
		code, body = gwPost(t, base, p.path, alice, p.body)
		requireGW(t, 403, denied, code, body, p.path+" as alice")
		code, body = gwPost(t, base, p.path, root, p.body)
		require.Equal(t, 200, code, "%s as root: %.200s", p.path, body)
	}
	t.Logf("Step 3: status stays open to every user")
	code, body := gwPost(t, base, "/v3/maintenance/status", alice, `{}`)
	require.Equal(t, 200, code, body)

	t.Logf("Step 4: locks run with the caller's permissions")
	code, body = gwPost(t, base, "/v3/lock/lock", alice, `{"name":"`+b64("/app/lk")+`"}`)
	require.Equal(t, 200, code, body)
	key := gwJSONField(t, body, "key").(string)
	code, body = gwPost(t, base, "/v3/lock/unlock", alice, `{"key":"`+key+`"}`)
	require.Equal(t, 200, code, body)
	code, body = gwPost(t, base, "/v3/lock/lock", alice, `{"name":"`+b64("/other/lk")+`"}`)
	requireGW(t, 500, `{"code":2,"message":"etcdserver: permission denied"}`, code, body, "lock outside alice's prefix")
	code, body = gwPost(t, base, "/v3/lock/lock", "", `{"name":"`+b64("/app/lk")+`"}`)
	requireGW(t, 500, `{"code":2,"message":"etcdserver: user name is empty"}`, code, body, "lock without a token")
}
