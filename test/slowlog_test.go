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

// TestServe_SlowAppliesAreLogged: with --warning-apply-duration at 1ns the
// apply of every request is "slow": each is logged with its kind; at the
// default (100 ms) a put's apply is not.
func TestServe_SlowAppliesAreLogged(t *testing.T) {
	t.Parallel()
	t.Logf("Step 1: a member that treats every apply as slow, and one at the default")
	slow := startMember(t, engineMemory, memberOpts{extraFlags: []string{"--warning-apply-duration", "1ns"}})
	normal := startMember(t, engineMemory)

	t.Logf("Step 2: a put and a lease grant on each")
	for _, m := range []*member{slow, normal} {
		cli := newClient(t, m.endpoint())
		_, err := cli.Put(ctxT(t, 5*time.Second), "k", "v")
		require.NoError(t, err)
		_, err = cli.Grant(ctxT(t, 5*time.Second), 60)
		require.NoError(t, err)
	}

	t.Logf("Step 3: the slow member logged both applies with their kinds; the other none")
	waitFor(t, 5*time.Second, "the slow-apply lines", func() bool {
		b, _ := os.ReadFile(slow.logPath)
		log := string(b)
		return strings.Contains(log, `"msg":"apply request took too long","kind":"put","took":`) &&
			strings.Contains(log, `"msg":"apply request took too long","kind":"lease_grant","took":`)
	})
	b, err := os.ReadFile(normal.logPath)
	require.NoError(t, err)
	require.NotContains(t, string(b), "apply request took too long")
}
