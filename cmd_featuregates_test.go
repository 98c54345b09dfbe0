package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/metastore/metastore/server"
)

// TestFeatureGates: etcd's --feature-gates syntax, defaults, AllAlpha and
// AllBeta, and etcd's errors; the gates that act reach the server's
// configuration.
func TestFeatureGates(t *testing.T) {
	type want struct {
		initial, compact bool
		priority         bool
		every            time.Duration
		localAddr        string
		err              string
	}
	cases := []struct {
		args []string
		want want
	}{
		{nil, want{every: time.Minute}},
		{[]string{"--feature-gates", "InitialCorruptCheck=true"}, want{initial: true, every: time.Minute}},
		{[]string{"--feature-gates", " InitialCorruptCheck = true , CompactHashCheck=TRUE,", "--compact-hash-check-time", "3s"},
			want{initial: true, compact: true, every: 3 * time.Second}},
		{[]string{"--feature-gates", "CompactHashCheck=1,InitialCorruptCheck=false"}, want{compact: true, every: time.Minute}},
		// Gates that change nothing in MetaStore are accepted either way.
		{[]string{"--feature-gates", "LeaseCheckpoint=true,LeaseCheckpointPersist=true,FastLeaseKeepAlive=false," +
			"StopGRPCServiceOnDefrag=true,TxnModeWriteWithSharedBuffer=false"}, want{every: time.Minute}},
		// AllAlpha turns every alpha gate on; a gate named after it wins.
		{[]string{"--feature-gates", "AllAlpha=true"},
			want{initial: true, compact: true, priority: true, every: time.Minute}},
		{[]string{"--feature-gates", "AllAlpha=true,CompactHashCheck=false"},
			want{initial: true, priority: true, every: time.Minute}},
		{[]string{"--feature-gates", "PriorityRequest=true"}, want{priority: true, every: time.Minute}},
		// SetMemberLocalAddr: the first advertised peer IP that is neither
		// loopback nor unspecified.
		{[]string{"--feature-gates", "SetMemberLocalAddr=true", "--initial-advertise-peer-urls",
			"http://127.0.0.1:2380,http://node1:2380,http://0.0.0.0:2380,http://10.0.0.7:2380,http://10.0.0.8:2380",
			"--initial-cluster", "default=http://127.0.0.1:2380"},
			want{every: time.Minute, localAddr: "10.0.0.7"}},
		{[]string{"--feature-gates", "SetMemberLocalAddr=true", "--listen-peer-urls", "http://[fd00::2]:2380"},
			want{every: time.Minute, localAddr: "fd00::2"}},
		{[]string{"--feature-gates", "SetMemberLocalAddr=true", "--initial-advertise-peer-urls", "http://127.0.0.1:2380"},
			want{every: time.Minute}},
		{[]string{"--initial-advertise-peer-urls", "http://10.0.0.7:2380"}, want{every: time.Minute}},
		{[]string{"--feature-gates", "AllBeta=false"}, want{every: time.Minute}},
		{[]string{"--feature-gates", "Foo=true"},
			want{err: `invalid value "Foo=true" for flag --feature-gates: unrecognized feature gate: Foo`}},
		{[]string{"--feature-gates", "InitialCorruptCheck"},
			want{err: `invalid value "InitialCorruptCheck" for flag --feature-gates: missing bool value for InitialCorruptCheck`}},
		{[]string{"--feature-gates", "InitialCorruptCheck=yes"},
			want{err: `invalid value "InitialCorruptCheck=yes" for flag --feature-gates: invalid value of InitialCorruptCheck=yes, err: strconv.ParseBool: parsing "yes": invalid syntax`}},
		{[]string{"--feature-gates", "LeaseCheckpointPersist=true"},
			want{err: "enabling feature gate LeaseCheckpointPersist requires enabling feature gate LeaseCheckpoint"}},
		{[]string{"--compact-hash-check-time", "0s"}, want{err: "--compact-hash-check-time must be >0 (set to 0s)"}},
	}
	for _, tc := range cases {
		t.Logf("Step 1: parse serve %q", tc.args)
		var cfg server.Config
		err := withServeContext(t, func(c *cli.Context) error {
			var err error
			cfg, _, _, err = serveConfig(c, zap.NewNop()) // the whole of serve's flag handling
			return err
		}, tc.args...)
		t.Logf("Step 2: verify the configuration or the error")
		if tc.want.err != "" {
			require.EqualError(t, err, tc.want.err, tc.args)
			continue
		}
		require.NoError(t, err, tc.args)
		require.Equal(t, tc.want, want{initial: cfg.InitialCorruptCheck, compact: cfg.CompactHashCheck,
			priority: cfg.PriorityRequests, every: cfg.CompactHashCheckTime, localAddr: cfg.PeerLocalAddr}, tc.args)
	}
}
