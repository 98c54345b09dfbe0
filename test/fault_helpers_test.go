package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Helpers of the fault, membership and linearizability tests: members that
// join a running cluster, and cross-member state comparisons.

// withFlag returns args with flag set to value (replaced if present,
// appended otherwise).
func withFlag(args []string, flag, value string) []string {
	out := slices.Clone(args)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == flag {
			out[i+1] = value
			return out
		}
	}
	return append(out, flag, value)
}

// flagValue is the value of flag in args ("" if absent).
func flagValue(args []string, flag string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}

// joinArgs turns a member's serve flags into those of a member joining the
// running cluster with id (the ID MemberAdd returned): an existing cluster
// state and --member-id in hex, as etcdctl prints it.
func joinArgs(args []string, id uint64) []string {
	args = withFlag(args, "--initial-cluster-state", "existing")
	return withFlag(args, "--member-id", fmt.Sprintf("%x", id))
}

// newJoiningMember prepares (does not start) a member named name on fresh
// ports and a fresh data dir that joins c with id. Its serve flags are those
// of c's first member with its own name, URLs and data dir; it is killed at
// cleanup with the others.
func (c *cluster) newJoiningMember(name string) *member {
	c.t.Helper()
	ports := freePorts(c.t, 2)
	ref := c.members[0]
	m := &member{
		t: c.t, name: name, engine: ref.engine,
		dataDir:   filepath.Join(c.t.TempDir(), name),
		clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		peerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
	}
	m.logPath = m.dataDir + ".log"
	m.memberOpts = ref.memberOpts
	m.args = slices.Clone(ref.args)
	for flag, v := range map[string]string{
		"--name": name, "--data-dir": m.dataDir,
		"--listen-client-urls": m.clientURL, "--advertise-client-urls": m.clientURL,
		"--listen-peer-urls": m.peerURL, "--initial-advertise-peer-urls": m.peerURL,
		"--initial-cluster": flagValue(ref.args, "--initial-cluster") + "," + name + "=" + m.peerURL,
	} {
		m.args = withFlag(m.args, flag, v)
	}
	c.members = append(c.members, m) // startCluster's cleanup kills c.members
	return m
}

// memberID asks m for its own ID (from a response header).
func memberID(t *testing.T, m *member) uint64 {
	t.Helper()
	var id uint64
	waitFor(t, 10*time.Second, m.name+" to answer Status", func() bool {
		st, err := m.status()
		if err == nil {
			id = st.Header.MemberId
		}
		return err == nil
	})
	return id
}

// hashKVAt returns m's HashKV at revision rev (it must have applied rev).
func hashKVAt(cli *clientv3.Client, m *member, rev int64) (*clientv3.HashKVResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return cli.HashKV(ctx, m.endpoint(), rev)
}

// waitSameHashKV waits until every running member of c reports the same
// HashKV at revision rev, and returns that hash. A member that has not
// applied rev yet answers "future revision" and is asked again.
func waitSameHashKV(t *testing.T, c *cluster, cli *clientv3.Client, rev int64, timeout time.Duration) uint32 {
	t.Helper()
	var hashes map[string]uint32
	var last string
	deadline := time.Now().Add(timeout)
	for {
		hashes = map[string]uint32{}
		for _, m := range c.members {
			if !m.running() {
				continue
			}
			resp, err := hashKVAt(cli, m, rev)
			if err != nil {
				last = fmt.Sprintf("%s: %v", m.name, err)
				break
			}
			if resp.HashRevision != rev {
				t.Fatalf("%s hashed revision %d, asked for %d", m.name, resp.HashRevision, rev)
			}
			hashes[m.name] = resp.Hash
		}
		if len(hashes) == runningCount(c) && allEqual(hashes) {
			for _, h := range hashes {
				return h
			}
		}
		if len(hashes) == runningCount(c) {
			last = fmt.Sprintf("hashes differ: %v", hashes)
		}
		if time.Now().After(deadline) {
			t.Fatalf("HashKV at revision %d never agreed on every member within %v: %s", rev, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func runningCount(c *cluster) int {
	n := 0
	for _, m := range c.members {
		if m.running() {
			n++
		}
	}
	return n
}

func allEqual(m map[string]uint32) bool {
	first, ok := uint32(0), false
	for _, v := range m {
		if !ok {
			first, ok = v, true
		} else if v != first {
			return false
		}
	}
	return true
}

// currentRev is the cluster's revision, read linearizably.
func currentRev(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	var rev int64
	waitFor(t, 10*time.Second, "a linearizable read of the revision", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, "\x00")
		if err == nil {
			rev = resp.Header.Revision
		}
		return err == nil
	})
	return rev
}

// logContains reports whether m's log has a line containing s.
func logContains(t *testing.T, m *member, s string) bool {
	t.Helper()
	return strings.Contains(readLog(t, m), s)
}

func readLog(t *testing.T, m *member) string {
	t.Helper()
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		t.Fatalf("reading %s's log: %v", m.name, err)
	}
	return string(b)
}
