package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"
)

// TestEtcdFlags_LogRotation: --enable-log-rotation rotates the one file
// output past maxsize MB and keeps maxbackups old files, as etcd's does;
// etcd's rules and errors for the outputs and the JSON.
func TestEtcdFlags_LogRotation(t *testing.T) {
	logWith := func(lines int, args ...string) error {
		return withServeContext(t, func(c *cli.Context) error {
			lg, err := newLogger(c)
			if err != nil {
				return err
			}
			pad := strings.Repeat("x", 1000)
			for i := range lines {
				lg.Info("rotation test line", zap.Int("i", i), zap.String("pad", pad))
			}
			return lg.Sync()
		}, args...)
	}

	t.Logf("Step 1: etcd's errors: rotation without a file, with two files, with bad JSON")
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	require.EqualError(t, logWith(0, "--enable-log-rotation"),
		"--log-outputs requires a single file path when --log-rotate-config-json is defined")
	require.EqualError(t, logWith(0, "--enable-log-rotation", "--log-outputs", a+","+b),
		"--log-outputs requires a single file path when --log-rotate-config-json is defined")
	require.ErrorContains(t, logWith(0, "--enable-log-rotation", "--log-outputs", a, "--log-rotation-config-json", "{maxsize"),
		"improperly formatted log rotation config: ")
	require.ErrorContains(t, logWith(0, "--enable-log-rotation", "--log-outputs", a, "--log-rotation-config-json", `{"maxsize": "big"}`),
		"invalid log rotation config: ")

	t.Logf("Step 2: 3 MB of log lines into a file rotated at 1 MB, 2 backups kept")
	err := logWith(3000, "--enable-log-rotation", "--log-outputs", a,
		"--log-rotation-config-json", `{"maxsize": 1, "maxbackups": 2}`)
	require.NoError(t, err)

	t.Logf("Step 3: the current file and two backups (lumberjack removes older ones in the background), none past 1 MB")
	var names []string
	require.Eventually(t, func() bool {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		names = names[:0]
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return len(names) == 3
	}, 10*time.Second, 20*time.Millisecond, "a.log and 2 backups: %v", names)
	require.Contains(t, names, "a.log")
	for _, n := range names {
		info, err := os.Stat(filepath.Join(dir, n))
		require.NoError(t, err)
		require.LessOrEqual(t, info.Size(), int64(1<<20), n)
	}
	cur, err := os.ReadFile(a)
	require.NoError(t, err)
	require.Contains(t, string(cur), `"i":2999,`)

	t.Logf("Step 4: without --enable-log-rotation the file just grows")
	c := filepath.Join(t.TempDir(), "c.log")
	require.NoError(t, logWith(1500, "--log-outputs", c))
	info, err := os.Stat(c)
	require.NoError(t, err)
	require.Greater(t, info.Size(), int64(1<<20))
}
