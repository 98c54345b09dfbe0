package test

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe for a process writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestEtcdctl_WatchRevPrefix: unmodified `etcdctl watch --rev --prefix`
// replays history from a revision, then shows live events, in etcdctl's
// output format.
func TestEtcdctl_WatchRevPrefix(t *testing.T) {
	t.Parallel()
	_, eps := startCtlMember(t)

	t.Logf("Step 1: writing history: a/1 (rev 2), a/2 (rev 3), b (rev 4)")
	ctlOK(t, eps, "put", "a/1", "v1")
	ctlOK(t, eps, "put", "a/2", "v2")
	ctlOK(t, eps, "put", "b", "not-watched")

	t.Logf("Step 2: starting etcdctl watch --rev 2 --prefix a/")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, etcdctlBin(t), "--endpoints", strings.Join(eps, ","), "watch", "--rev", "2", "--prefix", "a/")
	cmd.Env = etcdctlEnv()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("etcdctl printed: %q", out.String())
		}
	}()

	t.Logf("Step 3: waiting for the two replayed events")
	replayed := "PUT\na/1\nv1\nPUT\na/2\nv2\n"
	waitFor(t, 10*time.Second, "the replayed events", func() bool { return strings.HasPrefix(out.String(), replayed) })

	t.Logf("Step 4: a live delete and put are shown; b never is")
	ctlOK(t, eps, "del", "a/1")
	ctlOK(t, eps, "put", "a/3", "v3")
	want := replayed + "DELETE\na/1\n\nPUT\na/3\nv3\n"
	waitFor(t, 10*time.Second, "the live events", func() bool { return out.String() == want })
	require.NotContains(t, out.String(), "not-watched")
}

// TestEtcdctl_Lease: grant, put with the lease, timetolive --keys, list,
// keep-alive --once, revoke (which deletes the key), with etcdctl's output.
func TestEtcdctl_Lease(t *testing.T) {
	t.Parallel()
	_, eps := startCtlMember(t)

	t.Logf("Step 1: lease grant 60")
	out := ctlOK(t, eps, "lease", "grant", "60")
	m := regexp.MustCompile(`^lease ([0-9a-f]+) granted with TTL\(60s\)\n$`).FindStringSubmatch(out)
	require.NotNil(t, m, "grant output %q", out)
	id := m[1]

	t.Logf("Step 2: put with the lease, then timetolive --keys and list")
	ctlOK(t, eps, "put", "--lease="+id, "leased-key", "v")
	out = ctlOK(t, eps, "lease", "timetolive", id, "--keys")
	require.Regexp(t, `^lease `+id+` granted with TTL\(60s\), remaining\((59|60)s\), attached keys\(\[leased-key\]\)\n$`, out)
	out = ctlOK(t, eps, "lease", "list")
	require.Equal(t, "found 1 leases\n"+id+"\n", out)

	t.Logf("Step 3: keep-alive --once renews to the full TTL")
	out = ctlOK(t, eps, "lease", "keep-alive", "--once", id)
	require.Equal(t, "lease "+id+" keepalived with TTL(60)\n", out)

	t.Logf("Step 4: revoke deletes the attached key; the lease is gone")
	out = ctlOK(t, eps, "lease", "revoke", id)
	require.Equal(t, "lease "+id+" revoked\n", out)
	require.Equal(t, "", ctlOK(t, eps, "get", "leased-key"))
	out = ctlOK(t, eps, "lease", "timetolive", id)
	require.Equal(t, "lease "+id+" already expired\n", out)
	require.Equal(t, "found 0 leases\n", ctlOK(t, eps, "lease", "list"))
	ctlFails(t, eps, "failed to revoke lease (etcdserver: requested lease not found)", "lease", "revoke", id)
}
