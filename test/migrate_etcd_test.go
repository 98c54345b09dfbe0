package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Migration from etcd (metastore migrate, docs/operations.md "Migrating from
// etcd"): a history written to a real etcd 3.7.3 (several versions, a
// delete and a re-create, a txn, a key with a 0x00 byte, a lease, a
// compaction) is saved with etcdctl, migrated, and served by MetaStore,
// which must answer exactly as etcd did: every key, every read at every
// revision from the compaction on, a watch from the compaction revision,
// the lease with its key, and ErrCompacted below the compaction.
//
// The snapshot and etcd's answers are also kept in testdata, so that the
// migration is checked without etcd. To make them again from a real etcd:
//
//	METASTORE_UPDATE_MIGRATE_TESTDATA=1 go test -run TestMigrate_FromEtcd$ ./test/

const (
	migrateSnapshotFile = "testdata/etcd-3.7.3.snapshot.db"
	migrateExpectFile   = "testdata/etcd-3.7.3.snapshot.json"
	migrateUpdateEnv    = "METASTORE_UPDATE_MIGRATE_TESTDATA"
	// migrateCompactRev is where the history is compacted: the revision of
	// b's delete, so the file also shows how etcd drops a tombstone at the
	// compaction revision.
	migrateCompactRev = 6
)

// migrateExpect is what etcd answered before the snapshot was taken.
type migrateExpect struct {
	EtcdVersion     string
	Revision        int64
	CompactRevision int64
	// Reads hold the whole keyspace at every revision from the compaction
	// to the current one.
	Reads []expectRead
	// Events are what a watch on every key from the compaction revision
	// delivers.
	Events []expectEvent
	Lease  expectLease
}

type expectRead struct {
	Rev int64
	KVs []expectKV
}

type expectKV struct {
	Key, Value                                  []byte
	CreateRevision, ModRevision, Version, Lease int64
}

type expectEvent struct {
	Type string
	KV   expectKV
}

type expectLease struct {
	ID, GrantedTTL int64
	Keys           []string
}

func toExpectKVs(kvs []*mvccpb.KeyValue) []expectKV {
	out := []expectKV{}
	for _, kv := range kvs {
		out = append(out, expectKV{Key: kv.Key, Value: kv.Value, CreateRevision: kv.CreateRevision,
			ModRevision: kv.ModRevision, Version: kv.Version, Lease: kv.Lease})
	}
	return out
}

// etcdBinDir finds a directory holding etcd and etcdctl: $ETCD_BIN (the
// directory, or one of the binaries in it), the shared peer build, then
// /tmp/etcdpeer/bin. It skips the test when there is none.
func etcdBinDir(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("ETCD_BIN"), filepath.Join("..", "..", "shared", "peers", "etcd", "bin"), "/tmp/etcdpeer/bin"}
	for _, dir := range candidates {
		if dir == "" {
			continue
		}
		if st, err := os.Stat(dir); err == nil && !st.IsDir() {
			dir = filepath.Dir(dir)
		}
		ok := true
		for _, b := range []string{"etcd", "etcdctl"} {
			if st, err := os.Stat(filepath.Join(dir, b)); err != nil || st.IsDir() {
				ok = false
			}
		}
		if ok {
			abs, err := filepath.Abs(dir)
			require.NoError(t, err)
			return abs
		}
	}
	t.Skipf("real etcd not found: set ETCD_BIN to a directory holding etcd and etcdctl v3.7.3 (looked in %q); "+
		"TestMigrate_FromEtcdTestdata checks the migration from a kept snapshot without it", candidates)
	return ""
}

// etcdProc is one real etcd member.
type etcdProc struct {
	cmd      *exec.Cmd
	exited   chan struct{}
	endpoint string
}

func startEtcd(t *testing.T, bin string) *etcdProc {
	t.Helper()
	ports := freePorts(t, 2)
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	dir := t.TempDir()
	cmd := exec.Command(filepath.Join(bin, "etcd"), "--name", "e1", "--data-dir", filepath.Join(dir, "e1"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "e1="+peer, "--initial-cluster-state", "new", "--log-level", "error")
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	p := &etcdProc{cmd: cmd, exited: make(chan struct{}), endpoint: strings.TrimPrefix(client, "http://")}
	go func() {
		cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	waitFor(t, 20*time.Second, "etcd to elect itself", func() bool {
		st, err := statusOf(p.endpoint)
		return err == nil && st.Leader != 0
	})
	return p
}

// stop ends etcd with SIGTERM (SIGKILL after 10 s) and waits for it.
func (p *etcdProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// writeMigrationHistory writes the history (revisions in comments) and
// compacts it at migrateCompactRev; it returns the lease's ID.
func writeMigrationHistory(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	for _, v := range []string{"1", "2", "3"} {
		mustPut(t, cli, "a", v) // 2, 3, 4
	}
	mustPut(t, cli, "b", "x")                         // 5
	_, err := cli.Delete(ctxT(t, 5*time.Second), "b") // 6
	require.NoError(t, err)
	mustPut(t, cli, "b", "y") // 7: re-created
	lease, err := cli.Grant(ctxT(t, 5*time.Second), 3600)
	require.NoError(t, err)
	mustPut(t, cli, "l", "leased", clientv3.WithLease(lease.ID)) // 8
	_, err = cli.Txn(ctxT(t, 5*time.Second)).Then(               // 9: subs 0, 1, 2
		clientv3.OpPut("t1", "one"), clientv3.OpPut("t\x002", "\x00\xff"), clientv3.OpDelete("a")).Commit()
	require.NoError(t, err)
	mustPut(t, cli, "a", "again") // 10: re-created after the txn's delete
	mustPut(t, cli, "c", "1")     // 11
	_, err = cli.Compact(ctxT(t, 5*time.Second), migrateCompactRev, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	mustPut(t, cli, "d", "1")                        // 12
	_, err = cli.Delete(ctxT(t, 5*time.Second), "d") // 13
	require.NoError(t, err)
	mustPut(t, cli, "a", "last") // 14
	return int64(lease.ID)
}

// recordExpect asks the endpoint everything verifyMigrated compares.
func recordExpect(t *testing.T, cli *clientv3.Client, leaseID int64) migrateExpect {
	t.Helper()
	cur := mustGet(t, cli, "", clientv3.WithPrefix())
	exp := migrateExpect{Revision: cur.Header.Revision, CompactRevision: migrateCompactRev}
	for r := int64(migrateCompactRev); r <= exp.Revision; r++ {
		resp := mustGet(t, cli, "", clientv3.WithPrefix(), clientv3.WithRev(r))
		exp.Reads = append(exp.Reads, expectRead{Rev: r, KVs: toExpectKVs(resp.Kvs)})
	}
	exp.Events = watchAll(t, cli, exp.CompactRevision, exp.Revision)
	ttl, err := cli.TimeToLive(ctxT(t, 5*time.Second), clientv3.LeaseID(leaseID), clientv3.WithAttachedKeys())
	require.NoError(t, err)
	exp.Lease = expectLease{ID: leaseID, GrantedTTL: ttl.GrantedTTL, Keys: byteStrings(ttl.Keys)}
	return exp
}

// watchAll watches every key from rev until it has seen revision last.
func watchAll(t *testing.T, cli *clientv3.Client, rev, last int64) []expectEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []expectEvent
	for resp := range cli.Watch(ctx, "", clientv3.WithPrefix(), clientv3.WithRev(rev)) {
		require.NoError(t, resp.Err())
		for _, ev := range resp.Events {
			out = append(out, expectEvent{Type: ev.Type.String(), KV: toExpectKVs([]*mvccpb.KeyValue{ev.Kv})[0]})
		}
		if len(out) > 0 && out[len(out)-1].KV.ModRevision >= last {
			return out
		}
	}
	t.Fatalf("watch from %d ended before revision %d (%d events): %v", rev, last, len(out), ctx.Err())
	return nil
}

// verifyMigrated checks that the endpoint answers as etcd did.
func verifyMigrated(t *testing.T, ep string, exp migrateExpect) {
	t.Helper()
	cli := newClient(t, ep)
	cur := mustGet(t, cli, "", clientv3.WithPrefix())
	require.Equal(t, exp.Revision, cur.Header.Revision, "current revision")
	require.Equal(t, exp.Reads[len(exp.Reads)-1].KVs, toExpectKVs(cur.Kvs), "every key now")
	for _, rd := range exp.Reads {
		resp := mustGet(t, cli, "", clientv3.WithPrefix(), clientv3.WithRev(rd.Rev))
		require.Equal(t, rd.KVs, toExpectKVs(resp.Kvs), "every key at revision %d", rd.Rev)
	}
	_, err := cli.Get(ctxT(t, 5*time.Second), "a", clientv3.WithRev(exp.CompactRevision-1))
	requireErrIs(t, err, rpctypes.ErrCompacted, "a read below the compaction")
	require.Equal(t, exp.Events, watchAll(t, cli, exp.CompactRevision, exp.Revision), "a watch from the compaction")
	ttl, err := cli.TimeToLive(ctxT(t, 10*time.Second), clientv3.LeaseID(exp.Lease.ID), clientv3.WithAttachedKeys())
	require.NoError(t, err)
	require.Equal(t, exp.Lease.GrantedTTL, ttl.GrantedTTL)
	require.Equal(t, exp.Lease.Keys, byteStrings(ttl.Keys))
	require.GreaterOrEqual(t, ttl.TTL, exp.Lease.GrantedTTL-30, "the lease's countdown restarted")
	require.LessOrEqual(t, ttl.TTL, exp.Lease.GrantedTTL)
}

// migratedMember describes a member started on a migrated data directory.
func migratedMember(t *testing.T, name, engine string, ports []int) *member {
	m := &member{t: t, name: name, engine: engine, dataDir: filepath.Join(t.TempDir(), name),
		clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), peerURL: fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
	m.logPath = m.dataDir + ".log"
	return m
}

// startMigratedCluster migrates file into n fresh data directories of one
// new cluster, starts the members and waits for a leader.
func startMigratedCluster(t *testing.T, file, engine string, n int) *cluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	c := &cluster{t: t, engine: engine}
	var initial []string
	for i := 0; i < n; i++ {
		m := migratedMember(t, fmt.Sprintf("m%d", i+1), engine, ports[2*i:])
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	ic := strings.Join(initial, ",")
	for _, m := range c.members {
		code, out, errOut := runCLI(t, 30*time.Second, "migrate", "--from-etcd-snapshot", file, "--data-dir", m.dataDir,
			"--engine", engine, "--name", m.name, "--initial-cluster", ic, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster-token", "migrated")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "Migrated "+file+" into "+m.dataDir)
		m.args = []string{"serve", "--name", m.name, "--data-dir", m.dataDir, "--engine", engine,
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", ic, "--initial-cluster-token", "migrated", "--initial-cluster-state", "new"}
	}
	for _, m := range c.members {
		m.start()
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			m.kill()
			if t.Failed() {
				m.dumpLog()
			}
		}
	})
	c.waitReady(30 * time.Second)
	return c
}

// updateTestdata keeps snapshot and etcd's answers exp in testdata (as
// dbFile and expectFile) when METASTORE_UPDATE_MIGRATE_TESTDATA is set.
func updateTestdata(t *testing.T, step, snapshot, dbFile, expectFile string, exp any) {
	t.Helper()
	if os.Getenv(migrateUpdateEnv) == "" {
		return
	}
	t.Logf("%s: %s is set: writing %s and %s...", step, migrateUpdateEnv, dbFile, expectFile)
	b, err := os.ReadFile(snapshot)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(dbFile), 0o755))
	require.NoError(t, os.WriteFile(dbFile, b, 0o644))
	j, err := json.MarshalIndent(exp, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(expectFile, append(j, '\n'), 0o644))
}

// TestMigrate_FromEtcd writes the history to a real etcd, then runs the
// commands of docs/operations.md "Migrating from etcd" as written (save,
// stop etcd, migrate, serve) and compares; the same file is migrated into a
// memory member too.
func TestMigrate_FromEtcd(t *testing.T) {
	bin := etcdBinDir(t)
	out, err := exec.Command(filepath.Join(bin, "etcd"), "--version").Output()
	require.NoError(t, err)
	version := strings.TrimPrefix(strings.SplitN(string(out), "\n", 2)[0], "etcd Version: ")

	t.Logf("Step 1: starting etcd %s...", version)
	etcd := startEtcd(t, bin)
	ecli := newClient(t, etcd.endpoint)

	t.Logf("Step 2: writing the history and compacting at %d...", migrateCompactRev)
	leaseID := writeMigrationHistory(t, ecli)

	t.Logf("Step 3: recording etcd's answers...")
	exp := recordExpect(t, ecli, leaseID)
	exp.EtcdVersion = version
	require.Equal(t, int64(14), exp.Revision)
	require.Len(t, exp.Reads, 14-migrateCompactRev+1)
	require.Equal(t, []string{"l"}, exp.Lease.Keys)

	r := migratedMember(t, "m1", engineRocksDB, freePorts(t, 2))
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			r.dumpLog()
		}
	})
	snapshot := filepath.Join(t.TempDir(), "etcd-snapshot.db")
	vars := map[string]string{"ETCD_ENDPOINT": etcd.endpoint, "ETCD_SNAPSHOT": snapshot,
		"DATA_DIR": r.dataDir, "PEER_URL": r.peerURL, "CLIENT_URL": r.clientURL}
	cmds := guideCommands(t, "Migrating from etcd")
	require.Len(t, cmds, 3)
	for i, line := range cmds {
		args := guideArgs(t, line, vars)
		t.Logf("Step %d: %s", i+4, strings.Join(args, " "))
		switch args[0] + " " + args[1] {
		case "etcdctl --endpoints":
			cmd := exec.Command(filepath.Join(bin, "etcdctl"), args[1:]...)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			require.NoError(t, cmd.Run(), errb.String())
			t.Logf("stopping etcd: nothing is written to it after the snapshot")
			etcd.stop()
		case "metastore migrate":
			code, out, errOut := runCLI(t, 30*time.Second, args[1:]...)
			require.Equal(t, 0, code, "%s: %s", line, errOut)
			require.Contains(t, out, fmt.Sprintf("Migrated %s into %s: revision 14, compaction revision %d, ",
				snapshot, r.dataDir, migrateCompactRev))
			require.Contains(t, out, "1 leases; SHA-256 verified")
		case "metastore serve":
			r.args = args[1:]
			r.start()
			waitFor(t, 20*time.Second, "the migrated member to lead", func() bool {
				st, err := r.status()
				return err == nil && st.Leader != 0
			})
		default:
			t.Fatalf("unexpected command in the guide: %s", line)
		}
	}

	t.Logf("Step 7: the migrated member answers as etcd did...")
	verifyMigrated(t, r.endpoint(), exp)
	pr := mustPut(t, newClient(t, r.endpoint()), "new", "1")
	require.Equal(t, exp.Revision+1, pr.Header.Revision, "the next write takes the next revision")

	t.Logf("Step 8: the same file on the memory engine...")
	c := startMigratedCluster(t, snapshot, engineMemory, 1)
	verifyMigrated(t, c.members[0].endpoint(), exp)

	updateTestdata(t, "Step 9", snapshot, migrateSnapshotFile, migrateExpectFile, exp)
}

// TestMigrate_FromEtcdTestdata migrates the kept etcd snapshot into a
// 3-member RocksDB cluster and a memory member, compares them with etcd's
// kept answers, and checks that bad input is refused.
func TestMigrate_FromEtcdTestdata(t *testing.T) {
	t.Logf("Step 1: reading %s and etcd's answers...", migrateSnapshotFile)
	file, err := filepath.Abs(migrateSnapshotFile)
	require.NoError(t, err)
	b, err := os.ReadFile(migrateExpectFile)
	require.NoError(t, err)
	var exp migrateExpect
	require.NoError(t, json.Unmarshal(b, &exp))
	require.Equal(t, "3.7.3", exp.EtcdVersion)
	require.Equal(t, int64(14), exp.Revision)
	require.Equal(t, int64(migrateCompactRev), exp.CompactRevision)

	t.Logf("Step 2: migrating into 3 RocksDB members of one new cluster and starting them...")
	c := startMigratedCluster(t, file, engineRocksDB, 3)

	for i, m := range c.members {
		t.Logf("Step %d: %s answers as etcd did...", 3+i, m.name)
		verifyMigrated(t, m.endpoint(), exp)
	}

	t.Logf("Step 6: a write on the migrated cluster takes the next revision on every member...")
	pr := mustPut(t, newClient(t, c.members[0].endpoint()), "new", "1")
	require.Equal(t, exp.Revision+1, pr.Header.Revision)
	for _, m := range c.members {
		cli := newClient(t, m.endpoint())
		resp := mustGet(t, cli, "new")
		require.Equal(t, exp.Revision+1, resp.Header.Revision, m.name)
		require.Len(t, resp.Kvs, 1)
	}

	t.Logf("Step 7: the same file on the memory engine...")
	mc := startMigratedCluster(t, file, engineMemory, 1)
	verifyMigrated(t, mc.members[0].endpoint(), exp)

	t.Logf("Step 8: bad input is refused with one line and exit code 1, leaving no data dir...")
	damaged := filepath.Join(t.TempDir(), "damaged.db")
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	raw[len(raw)/2] ^= 0xff
	require.NoError(t, os.WriteFile(damaged, raw, 0o600))
	fresh := filepath.Join(t.TempDir(), "fresh")
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"not a bbolt file", []string{"--from-etcd-snapshot", migrateExpectFile, "--data-dir", fresh}, "is not a bbolt database"},
		{"damaged", []string{"--from-etcd-snapshot", damaged, "--data-dir", fresh}, "SHA-256 mismatch"},
		{"missing file", []string{"--from-etcd-snapshot", filepath.Join(t.TempDir(), "nope.db"), "--data-dir", fresh}, "no such file"},
		{"non-empty data dir", []string{"--from-etcd-snapshot", file, "--data-dir", c.members[0].dataDir}, "exists and is not empty"},
		{"no snapshot flag", []string{"--data-dir", fresh}, "--from-etcd-snapshot is required"},
		{"no data dir flag", []string{"--from-etcd-snapshot", file}, "--data-dir is required"},
		{"unknown engine", []string{"--from-etcd-snapshot", file, "--data-dir", fresh, "--engine", "bolt"}, "engine"},
		{"stray argument", []string{"--from-etcd-snapshot", file, "--data-dir", fresh, "extra"}, `unexpected argument "extra"`},
	} {
		code, out, errOut := runCLI(t, 30*time.Second, append([]string{"migrate"}, tc.args...)...)
		require.Equal(t, 1, code, "%s: %s", tc.name, out)
		require.Empty(t, out, tc.name)
		require.Contains(t, errOut, tc.wantErr, tc.name)
		require.Equal(t, 1, strings.Count(errOut, "\n"), "%s: one line: %q", tc.name, errOut)
		_, err := os.Stat(fresh)
		require.True(t, os.IsNotExist(err), "%s: %s was created", tc.name, fresh)
	}
}

// Migration of etcd's auth state: users (their bcrypt hashes, so the same
// passwords log in), roles with their permissions, and the enabled flag.
// The snapshot and etcd's answers are kept in testdata as well; make them
// again with METASTORE_UPDATE_MIGRATE_TESTDATA=1 go test -run
// TestMigrate_FromEtcdWithAuth$ ./test/.
const (
	migrateAuthSnapshotFile = "testdata/etcd-3.7.3-auth.snapshot.db"
	migrateAuthExpectFile   = "testdata/etcd-3.7.3-auth.snapshot.json"
)

// migrateAuthExpect is what etcd answered (as root) before the snapshot.
type migrateAuthExpect struct {
	EtcdVersion string
	Users       map[string][]string // user -> roles
	Roles       map[string][]expectPerm
	KVs         []expectKV
}

type expectPerm struct {
	Type          string
	Key, RangeEnd string
}

// writeAuthHistory sets up auth as setupAuth does (root; alice with
// read-write on /app/; auth enabled), then, as root: read on /shared for
// the app role, bob without a password holding app, and keys in and out of
// alice's reach. It returns a root client.
func writeAuthHistory(t *testing.T, cli *clientv3.Client, ep string) *clientv3.Client {
	t.Helper()
	setupAuth(t, cli)
	root, err := newAuthClient(t, "root", "rootpw", ep)
	require.NoError(t, err)
	ctx := ctxT(t, 20*time.Second)
	_, err = root.RoleGrantPermission(ctx, "app", "/shared", "", clientv3.PermissionType(clientv3.PermRead))
	require.NoError(t, err)
	_, err = root.UserAddWithOptions(ctx, "bob", "", &clientv3.UserAddOptions{NoPassword: true})
	require.NoError(t, err)
	_, err = root.UserGrantRole(ctx, "bob", "app")
	require.NoError(t, err)
	mustPut(t, root, "/app/1", "one")
	mustPut(t, root, "/shared", "s")
	return root
}

// recordAuthExpect asks a root client for the users, roles and keys.
func recordAuthExpect(t *testing.T, root *clientv3.Client) migrateAuthExpect {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	exp := migrateAuthExpect{Users: map[string][]string{}, Roles: map[string][]expectPerm{}}
	users, err := root.UserList(ctx)
	require.NoError(t, err)
	for _, u := range users.Users {
		g, err := root.UserGet(ctx, u)
		require.NoError(t, err)
		exp.Users[u] = append([]string{}, g.Roles...)
	}
	roles, err := root.RoleList(ctx)
	require.NoError(t, err)
	for _, r := range roles.Roles {
		g, err := root.RoleGet(ctx, r)
		require.NoError(t, err)
		perms := []expectPerm{}
		for _, p := range g.Perm {
			perms = append(perms, expectPerm{Type: p.PermType.String(), Key: string(p.Key), RangeEnd: string(p.RangeEnd)})
		}
		exp.Roles[r] = perms
	}
	exp.KVs = toExpectKVs(mustGet(t, root, "", clientv3.WithPrefix()).Kvs)
	return exp
}

// checkAuthBehaviour is what users see on the cluster at ep, asserted the
// same way on etcd (before the snapshot) and on the migrated MetaStore.
func checkAuthBehaviour(t *testing.T, ep string) {
	t.Helper()
	anon := newClient(t, ep)
	_, err := anon.Put(ctxT(t, 5*time.Second), "/app/anon", "1")
	requireErrIs(t, err, rpctypes.ErrUserEmpty, "a put without a user")
	auth, err := anon.AuthStatus(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.True(t, auth.Enabled, "auth is enabled")

	_, err = newAuthClient(t, "alice", "wrong", ep)
	requireErrIs(t, err, rpctypes.ErrAuthFailed, "alice with a wrong password")
	// etcd 3.7's answer for a --no-password user given a password: not
	// one of rpctypes' errors, so code Unknown with auth's text.
	_, err = newAuthClient(t, "bob", "anything", ep)
	require.Equal(t, codes.Unknown, status.Code(err), "bob (no password) with a password: %v", err)
	require.Equal(t, "auth: authentication failed, password was given for no password user", status.Convert(err).Message())

	alice, err := newAuthClient(t, "alice", "alicepw", ep)
	require.NoError(t, err)
	r := mustGet(t, alice, "/app/1")
	require.Len(t, r.Kvs, 1)
	require.Equal(t, "one", string(r.Kvs[0].Value))
	r = mustGet(t, alice, "/shared")
	require.Len(t, r.Kvs, 1)
	require.Equal(t, "s", string(r.Kvs[0].Value))
	mustPut(t, alice, "/app/1", "one") // same value: the check can run again
	_, err = alice.Put(ctxT(t, 5*time.Second), "/shared", "x")
	requireErrIs(t, err, rpctypes.ErrPermissionDenied, "alice writes /shared (read only)")
	_, err = alice.Get(ctxT(t, 5*time.Second), "/other/x")
	requireErrIs(t, err, rpctypes.ErrPermissionDenied, "alice reads /other/x")
	_, err = alice.UserList(ctxT(t, 5*time.Second))
	requireErrIs(t, err, rpctypes.ErrPermissionDenied, "alice lists users (not root)")
}

// verifyMigratedAuth checks that the migrated member at ep has etcd's
// users, roles and keys, and behaves as etcd did.
func verifyMigratedAuth(t *testing.T, ep string, exp migrateAuthExpect) {
	t.Helper()
	root, err := newAuthClient(t, "root", "rootpw", ep)
	require.NoError(t, err, "root logs in with its etcd password")
	got := recordAuthExpect(t, root)
	got.EtcdVersion = exp.EtcdVersion
	// etcd answers RoleGet root with its rootPerm, READWRITE on every key,
	// which the snapshot's root role does not hold; so does MetaStore.
	require.Equal(t, []expectPerm{{"READWRITE", "", "\x00"}}, exp.Roles["root"])
	require.Equal(t, exp.Roles["root"], got.Roles["root"], "RoleGet root")
	require.Equal(t, exp, got)
	checkAuthBehaviour(t, ep)
}

// TestMigrate_FromEtcdWithAuth sets up users and roles on a real etcd,
// saves a snapshot with etcdctl (as root) and migrates it.
func TestMigrate_FromEtcdWithAuth(t *testing.T) {
	bin := etcdBinDir(t)
	t.Logf("Step 1: starting etcd, adding users and roles, enabling auth...")
	etcd := startEtcd(t, bin)
	root := writeAuthHistory(t, newClient(t, etcd.endpoint), etcd.endpoint)

	t.Logf("Step 2: what users see on etcd...")
	checkAuthBehaviour(t, etcd.endpoint)
	exp := recordAuthExpect(t, root)
	exp.EtcdVersion = "3.7.3"
	require.Equal(t, map[string][]string{"root": {"root"}, "alice": {"app"}, "bob": {"app"}}, exp.Users)
	require.Equal(t, []expectPerm{{"READWRITE", "/app/", "/app0"}, {"READ", "/shared", ""}}, exp.Roles["app"])

	t.Logf("Step 3: etcdctl --user root snapshot save, then stopping etcd...")
	snapshot := filepath.Join(t.TempDir(), "etcd-auth.db")
	cmd := exec.Command(filepath.Join(bin, "etcdctl"), "--endpoints", etcd.endpoint, "--user", "root:rootpw", "snapshot", "save", snapshot)
	outb, err := cmd.CombinedOutput()
	require.NoError(t, err, string(outb))
	etcd.stop()

	t.Logf("Step 4: migrating into a RocksDB member; it has etcd's users, roles and keys...")
	c := startMigratedCluster(t, snapshot, engineRocksDB, 1)
	verifyMigratedAuth(t, c.members[0].endpoint(), exp)

	updateTestdata(t, "Step 5", snapshot, migrateAuthSnapshotFile, migrateAuthExpectFile, exp)
}

// TestMigrate_FromEtcdWithAuthTestdata migrates the kept snapshot with
// auth on both engines, without etcd.
func TestMigrate_FromEtcdWithAuthTestdata(t *testing.T) {
	file, err := filepath.Abs(migrateAuthSnapshotFile)
	require.NoError(t, err)
	b, err := os.ReadFile(migrateAuthExpectFile)
	require.NoError(t, err)
	var exp migrateAuthExpect
	require.NoError(t, json.Unmarshal(b, &exp))
	require.Equal(t, "3.7.3", exp.EtcdVersion)
	require.Len(t, exp.Users, 3)

	t.Logf("Step 1: migrate prints what it imported...")
	dir := filepath.Join(t.TempDir(), "m")
	code, out, errOut := runCLI(t, 30*time.Second, "migrate", "--from-etcd-snapshot", file, "--data-dir", dir, "--engine", engineMemory)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "; SHA-256 verified\nMigrated etcd auth: 3 users, 2 roles, auth enabled: true (passwords unchanged)\n")

	for i, engine := range []string{engineMemory, engineRocksDB} {
		t.Logf("Step %d: a migrated %s member has etcd's users, roles and keys, and enforces them...", i+2, engine)
		c := startMigratedCluster(t, file, engine, 1)
		verifyMigratedAuth(t, c.members[0].endpoint(), exp)
	}
}
