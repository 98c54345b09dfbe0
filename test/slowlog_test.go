package test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServe_SlowRequestsAreLogged: with the threshold at 1ns every KV
// request is "slow": each is logged with its kind and duration.
func TestServe_SlowRequestsAreLogged(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: a member that treats every request as slow")
	m := startMember(t, engineMemory, memberOpts{extraFlags: []string{"--warning-unary-request-duration", "1ns"}})
	cli := newClient(t, m.endpoint())

	t.Logf("Step 2: a put and a range")
	_, err := cli.Put(ctxT(t, 5*time.Second), "k", "v")
	require.NoError(t, err)
	_, err = cli.Get(ctxT(t, 5*time.Second), "k")
	require.NoError(t, err)

	t.Logf("Step 3: both appear in the log with kind and duration")
	waitFor(t, 5*time.Second, "the slow-request lines", func() bool {
		b, _ := os.ReadFile(m.logPath)
		log := string(b)
		return strings.Contains(log, `"msg":"request took too long","kind":"put","took":`) &&
			strings.Contains(log, `"msg":"request took too long","kind":"range","took":`)
	})
}
