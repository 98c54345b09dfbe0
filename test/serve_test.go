package test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestServe_PutGetOnEachEngine(t *testing.T) {
	for _, engine := range []string{engineRocksDB, engineMemory} {
		t.Run(engine, func(t *testing.T) {
			t.Logf("Step 1: starting one %s member", engine)
			m := startMember(t, engine)
			cli := newClient(t, m.endpoint())

			t.Logf("Step 2: put and get")
			put, err := cli.Put(ctxT(t, 5*time.Second), "k", "v")
			require.NoError(t, err)
			require.Equal(t, int64(2), put.Header.Revision)
			get, err := cli.Get(ctxT(t, 5*time.Second), "k")
			require.NoError(t, err)
			require.Len(t, get.Kvs, 1)
			require.Equal(t, "v", string(get.Kvs[0].Value))
			require.NotZero(t, get.Header.ClusterId)
			require.NotZero(t, get.Header.MemberId)
			require.NotZero(t, get.Header.RaftTerm)

			t.Logf("Step 3: graceful stop exits 0, restart keeps the data")
			require.NoError(t, m.stop())
			m.restart()
			waitFor(t, 20*time.Second, "the restarted member to serve", func() bool {
				st, err := m.status()
				return err == nil && st.Leader != 0
			})
			get, err = newClient(t, m.endpoint()).Get(ctxT(t, 5*time.Second), "k")
			require.NoError(t, err)
			require.Len(t, get.Kvs, 1)
			require.Equal(t, "v", string(get.Kvs[0].Value))
			require.Equal(t, int64(2), get.Header.Revision)
		})
	}
}

func TestServe_DataDirLockedByAnotherProcess(t *testing.T) {
	t.Logf("Step 1: a member holds its data dir")
	m := startMember(t, engineRocksDB)

	t.Logf("Step 2: a second serve on the same data dir exits non-zero with one line")
	ports := freePorts(t, 2)
	code, _, stderr := runCLI(t, 30*time.Second, "serve", "--data-dir", m.dataDir,
		"--listen-client-urls", "http://127.0.0.1:"+itoa(ports[0]),
		"--listen-peer-urls", "http://127.0.0.1:"+itoa(ports[1]))
	require.NotEqual(t, 0, code)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	require.Contains(t, last, "locked by another process", "stderr: %s", stderr)
	require.True(t, strings.HasPrefix(last, "metastore: "), "one-line error: %q", last)
	require.True(t, m.running(), "the first member keeps running")
}

func TestServe_CorruptDataDir(t *testing.T) {
	t.Logf("Step 1: a data dir whose RocksDB files are garbage")
	dir := filepath.Join(t.TempDir(), "bad")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "db"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "db", "CURRENT"), []byte("MANIFEST-000099\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "db", "MANIFEST-000099"), []byte("this is not a manifest"), 0o644))

	t.Logf("Step 2: serve refuses it with a one-line error and a non-zero exit")
	ports := freePorts(t, 2)
	code, _, stderr := runCLI(t, 30*time.Second, "serve", "--data-dir", dir,
		"--listen-client-urls", "http://127.0.0.1:"+itoa(ports[0]),
		"--listen-peer-urls", "http://127.0.0.1:"+itoa(ports[1]))
	require.NotEqual(t, 0, code)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	require.Contains(t, lines[len(lines)-1], "corrupt", "stderr: %s", stderr)
}

func TestServe_BadFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--engine", "leveldb"}, `--engine "leveldb"`},
		{[]string{"serve", "--listen-client-urls", "127.0.0.1:2379"}, "--listen-client-urls"},
		{[]string{"serve", "--initial-cluster-state", "maybe"}, "--initial-cluster-state"},
		{[]string{"serve", "--heartbeat-interval", "500", "--election-timeout", "1000"}, "--election-timeout"},
		{[]string{"serve", "--name", "x", "--initial-cluster", "y=http://127.0.0.1:1"}, `no member named "x"`},
		{[]string{"serve", "--watch-batch-delay", "-1ms"}, "--watch-batch-delay must not be negative"},
	}
	for _, tc := range cases {
		code, _, stderr := runCLI(t, 10*time.Second, tc.args...)
		require.Equal(t, 1, code, "%v", tc.args)
		require.Contains(t, stderr, tc.want, "%v", tc.args)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one line: %q", stderr)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
