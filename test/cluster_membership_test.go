package test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// membersString renders a member list in one comparable line, sorted by ID:
// "name id=<hex> peers=<urls> clients=<urls> learner=<bool>".
func membersString(ms []*pb.Member) string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s id=%x peers=%s clients=%s learner=%v",
			m.Name, m.ID, strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","), m.IsLearner))
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// waitMembers waits until every running member of c lists exactly want
// (membersString form) in a serializable MemberList.
func waitMembers(t *testing.T, c *cluster, want string) {
	t.Helper()
	var got string
	deadline := time.Now().Add(10 * time.Second)
	for _, m := range c.members {
		if !m.running() {
			continue
		}
		cli := newClient(t, m.endpoint())
		for {
			ml, err := cli.MemberList(ctxT(t, 2*time.Second), clientv3.WithSerializable())
			if err == nil {
				got = membersString(ml.Members)
				if got == want {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("member list on %s:\n got %s (err %v)\nwant %s", m.name, got, err, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// expectedMembers is the member list of c's running members, all published,
// voters unless listed in learners, plus extra entries (membersString form)
// for members that never started.
func expectedMembers(t *testing.T, c *cluster, learners []*member, extra ...string) string {
	t.Helper()
	var out []string
	for _, m := range c.members {
		if !m.running() {
			continue
		}
		out = append(out, fmt.Sprintf("%s id=%x peers=%s clients=%s learner=%v",
			m.name, memberID(t, m), m.peerURL, m.clientURL, slices.Contains(learners, m)))
	}
	out = append(out, extra...)
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// startPublished starts n members and waits until every one lists them all
// with their names and client URLs; it returns the cluster and that list.
func startPublished(t *testing.T, engine string, n int) (*cluster, string) {
	t.Helper()
	c := startCluster(t, engine, n)
	base := expectedMembers(t, c, nil)
	waitMembers(t, c, base)
	return c, base
}

func TestCluster_MembershipErrors(t *testing.T) {
	t.Logf("Step 1: starting 3 members; every member publishes its name and client URL to all")
	c, base := startPublished(t, engineRocksDB, 3)
	leader := c.leader()
	follower := c.followers(leader)[0]
	lcli := newClient(t, leader.endpoint())
	fcli := newClient(t, follower.endpoint())
	free := freePorts(t, 6)
	url1 := fmt.Sprintf("http://127.0.0.1:%d", free[0])
	url2 := fmt.Sprintf("http://127.0.0.1:%d", free[1])
	url3 := fmt.Sprintf("http://127.0.0.1:%d", free[2])

	t.Logf("Step 2: MemberAdd with bad peer URLs fails with MemberBadURLs")
	// NB: clientv3 checks URLs itself, so these go over the raw gRPC client.
	raw := pb.NewClusterClient(fcli.ActiveConnection())
	for _, urls := range [][]string{{}, {"127.0.0.1:1"}, {"http://127.0.0.1"}, {"http://127.0.0.1:1/path"}, {"unix://x"}, {url1, "ftp://h:1"}} {
		_, err := raw.MemberAdd(ctxT(t, 5*time.Second), &pb.MemberAddRequest{PeerURLs: urls})
		require.ErrorIs(t, rpctypes.Error(err), rpctypes.ErrMemberBadURLs, "%q: %v", urls, err)
	}

	t.Logf("Step 3: MemberAdd with a peer URL in use fails with PeerURLExist, through the follower and the leader (once each has been connected to its peers for 5 s)")
	// NB: each member checks its own connections (strict reconfiguration),
	// and the leader may have heard from a peer later than the follower did:
	// steps 5, 6b and 10 add members through the leader.
	for _, cli := range []*clientv3.Client{fcli, lcli} {
		_, err := reconfigure(t, func(ctx context.Context) (*clientv3.MemberAddResponse, error) {
			return cli.MemberAdd(ctx, []string{leader.peerURL})
		})
		require.ErrorIs(t, err, rpctypes.ErrPeerURLExist)
	}

	t.Logf("Step 4: adding a learner (through a follower) answers with it and the whole list")
	add, err := fcli.MemberAddAsLearner(ctxT(t, 5*time.Second), []string{url1})
	require.NoError(t, err)
	lid := add.Member.ID
	require.NotZero(t, lid)
	require.Equal(t, []string{url1}, add.Member.PeerURLs)
	require.True(t, add.Member.IsLearner)
	learner := fmt.Sprintf(" id=%x peers=%s clients= learner=true", lid, url1)
	withLearner := expectedMembers(t, c, nil, learner)
	require.Equal(t, withLearner, membersString(add.Members))
	st, err := follower.status()
	require.NoError(t, err)
	require.Equal(t, st.Header.ClusterId, add.Header.ClusterId)
	require.Equal(t, st.Header.MemberId, add.Header.MemberId)
	require.Equal(t, st.Header.RaftTerm, add.Header.RaftTerm)
	require.Equal(t, st.Header.Revision, add.Header.Revision)
	waitMembers(t, c, withLearner)

	t.Logf("Step 5: a second learner fails with TooManyLearners")
	_, err = lcli.MemberAddAsLearner(ctxT(t, 5*time.Second), []string{url2})
	require.ErrorIs(t, err, rpctypes.ErrTooManyLearners)

	t.Logf("Step 6: promoting a learner that never ran fails with LearnerNotReady, on the leader and through a follower")
	_, err = lcli.MemberPromote(ctxT(t, 5*time.Second), lid)
	require.ErrorIs(t, err, rpctypes.ErrMemberLearnerNotReady)
	_, err = fcli.MemberPromote(ctxT(t, 5*time.Second), lid)
	require.ErrorIs(t, err, rpctypes.ErrMemberLearnerNotReady)

	t.Logf("Step 6b: adding a voter with the learner's peer URL fails (the same ID within the same second, else the URL in use); it stays a learner")
	_, err = lcli.MemberAdd(ctxT(t, 5*time.Second), []string{url1})
	require.Error(t, err)
	require.True(t, errors.Is(rpctypes.Error(err), rpctypes.ErrMemberExist) || errors.Is(rpctypes.Error(err), rpctypes.ErrPeerURLExist),
		"adding a voter on the learner's URL: %v", err)
	ml, err := lcli.MemberList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Equal(t, withLearner, membersString(ml.Members))

	t.Logf("Step 7: promoting a voter fails with MemberNotLearner; an unknown ID with MemberNotFound")
	_, err = fcli.MemberPromote(ctxT(t, 5*time.Second), memberID(t, follower))
	require.ErrorIs(t, err, rpctypes.ErrMemberNotLearner)
	_, err = fcli.MemberPromote(ctxT(t, 5*time.Second), 0x1234)
	require.ErrorIs(t, err, rpctypes.ErrMemberNotFound)

	t.Logf("Step 8: MemberUpdate moves the learner's peer URL; errors for unknown ID, URL in use, bad URL")
	upd, err := fcli.MemberUpdate(ctxT(t, 5*time.Second), lid, []string{url2})
	require.NoError(t, err)
	moved := expectedMembers(t, c, nil, fmt.Sprintf(" id=%x peers=%s clients= learner=true", lid, url2))
	require.Equal(t, moved, membersString(upd.Members))
	waitMembers(t, c, moved)
	_, err = fcli.MemberUpdate(ctxT(t, 5*time.Second), 0x1234, []string{url3})
	require.ErrorIs(t, err, rpctypes.ErrMemberNotFound)
	_, err = fcli.MemberUpdate(ctxT(t, 5*time.Second), lid, []string{leader.peerURL})
	require.ErrorIs(t, err, rpctypes.ErrPeerURLExist)
	_, err = raw.MemberUpdate(ctxT(t, 5*time.Second), &pb.MemberUpdateRequest{ID: lid, PeerURLs: []string{"http://no-port"}})
	require.ErrorIs(t, rpctypes.Error(err), rpctypes.ErrMemberBadURLs)
	_, err = raw.MemberUpdate(ctxT(t, 5*time.Second), &pb.MemberUpdateRequest{ID: 0x1234, PeerURLs: []string{"http://no-port"}})
	require.ErrorIs(t, rpctypes.Error(err), rpctypes.ErrMemberNotFound, "an unknown ID is reported before bad URLs, as etcd")

	t.Logf("Step 9: MemberRemove removes the learner; removing it again, or an unknown ID, is MemberNotFound")
	rm, err := fcli.MemberRemove(ctxT(t, 5*time.Second), lid)
	require.NoError(t, err)
	require.Equal(t, base, membersString(rm.Members))
	waitMembers(t, c, base)
	_, err = fcli.MemberRemove(ctxT(t, 5*time.Second), lid)
	require.ErrorIs(t, err, rpctypes.ErrMemberNotFound)
	_, err = fcli.MemberRemove(ctxT(t, 5*time.Second), 0x1234)
	require.ErrorIs(t, err, rpctypes.ErrMemberNotFound)

	t.Logf("Step 10: voters that never start: two are accepted (3 of 5 started is a quorum), a third is refused")
	// NB: fresh URLs: a member ID derives from the URLs and the second, and
	// the removed learner's ID may not be reused.
	v1, err := lcli.MemberAdd(ctxT(t, 5*time.Second), []string{fmt.Sprintf("http://127.0.0.1:%d", free[3])})
	require.NoError(t, err)
	v2, err := lcli.MemberAdd(ctxT(t, 5*time.Second), []string{fmt.Sprintf("http://127.0.0.1:%d", free[4])})
	require.NoError(t, err)
	require.Len(t, v2.Members, 5)
	_, err = lcli.MemberAdd(ctxT(t, 5*time.Second), []string{fmt.Sprintf("http://127.0.0.1:%d", free[5])})
	require.ErrorIs(t, err, rpctypes.ErrMemberNotEnoughStarted)

	t.Logf("Step 11: removing them restores the original list; the cluster still writes")
	for _, id := range []uint64{v1.Member.ID, v2.Member.ID} {
		_, err := lcli.MemberRemove(ctxT(t, 10*time.Second), id)
		require.NoError(t, err)
	}
	waitMembers(t, c, base)
	_, err = fcli.Put(ctxT(t, 5*time.Second), "after", "membership")
	require.NoError(t, err)
}

func TestCluster_LearnerJoinsAndIsPromoted(t *testing.T) {
	for _, engine := range []string{engineRocksDB, engineMemory} {
		t.Run(engine, func(t *testing.T) {
			t.Logf("Step 1: starting 3 %s members and writing 50 keys", engine)
			c := startCluster(t, engine, 3)
			cli := newClient(t, c.endpoints()...)
			for i := 0; i < 50; i++ {
				_, err := cli.Put(ctxT(t, 5*time.Second), fmt.Sprintf("k%02d", i), fmt.Sprint(i))
				require.NoError(t, err)
			}
			waitMembers(t, c, expectedMembers(t, c, nil))

			t.Logf("Step 2: MemberAdd as learner, then start m4 with --initial-cluster-state existing --member-id <hex>")
			m4 := c.newJoiningMember("m4")
			add, err := reconfigure(t, func(ctx context.Context) (*clientv3.MemberAddResponse, error) {
				return cli.MemberAddAsLearner(ctx, []string{m4.peerURL})
			})
			require.NoError(t, err)
			m4.args = joinArgs(m4.args, add.Member.ID)
			m4.start()

			t.Logf("Step 3: the learner catches up (its serializable read sees the last key) and publishes its name")
			m4cli := newClient(t, m4.endpoint())
			waitFor(t, 15*time.Second, "m4 to serve k49", func() bool {
				r, err := m4cli.Get(ctxT(t, 2*time.Second), "k49", clientv3.WithSerializable())
				return err == nil && len(r.Kvs) == 1 && string(r.Kvs[0].Value) == "49"
			})
			require.Equal(t, add.Member.ID, memberID(t, m4))
			st, err := m4.status()
			require.NoError(t, err)
			require.True(t, st.IsLearner)
			waitMembers(t, c, expectedMembers(t, c, []*member{m4}))

			t.Logf("Step 4: promoting it through a follower (forwarded to the leader) succeeds once it is in sync")
			leader := c.leader()
			fol := c.followers(leader)[0] // one of the first three: m4 comes last
			fcli := newClient(t, fol.endpoint())
			var prom *clientv3.MemberPromoteResponse
			waitFor(t, 10*time.Second, "the promotion", func() bool {
				prom, err = fcli.MemberPromote(ctxT(t, 5*time.Second), add.Member.ID)
				if err != nil {
					require.ErrorIs(t, err, rpctypes.ErrMemberLearnerNotReady)
				}
				return err == nil
			})
			voters := expectedMembers(t, c, nil)
			require.Equal(t, voters, membersString(prom.Members))
			require.Equal(t, memberID(t, fol), prom.Header.MemberId)
			waitMembers(t, c, voters)

			t.Logf("Step 5: the new voter takes writes that every member serves")
			_, err = m4cli.Put(ctxT(t, 5*time.Second), "from-m4", "x")
			require.NoError(t, err)
			for _, m := range c.members {
				r, err := newClient(t, m.endpoint()).Get(ctxT(t, 5*time.Second), "from-m4")
				require.NoError(t, err)
				require.Len(t, r.Kvs, 1, m.name)
				require.Equal(t, "x", string(r.Kvs[0].Value))
			}
		})
	}
}

func TestServe_MemberIDFlag(t *testing.T) {
	t.Logf("Step 1: --member-id must be a non-zero hex ID")
	for _, v := range []string{"xyz", "0", "0x"} {
		code, _, stderr := runCLI(t, 10*time.Second, "serve", "--member-id", v)
		require.Equal(t, 1, code, v)
		require.Contains(t, stderr, "--member-id", v)
	}

	t.Logf("Step 2: joining an existing cluster with an empty data dir and no --member-id is refused")
	ports := freePorts(t, 2)
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	code, _, stderr := runCLI(t, 20*time.Second, "serve", "--name", "j", "--data-dir", t.TempDir()+"/j",
		"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", ports[0]), "--listen-peer-urls", peer,
		"--initial-cluster", "j="+peer, "--initial-cluster-state", "existing")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "joining an existing cluster needs the member ID")
}

// TestCluster_StrictReconfigCheck: etcd's --strict-reconfig-check (on by
// default). A member refuses additions, learners too, while the voters it
// has been connected to for 5 s, the new member counted as down, would not
// be a quorum, and refuses to remove a live voter that would leave too few
// connected ones; a member that is down may be removed. The check is made
// by the member taking the request, followers included, and
// --strict-reconfig-check=false turns it off.
func TestCluster_StrictReconfigCheck(t *testing.T) {
	t.Logf("Step 1: prepare 3 members; once the leader has been connected to its peers for 5 s a learner can be added, and removed")
	c, base := startPublished(t, engineMemory, 3)
	leader := c.leader()
	fs := c.followers(leader)
	live, down := fs[0], fs[1]
	lcli := newClient(t, leader.endpoint())
	fcli := newClient(t, live.endpoint())
	free := freePorts(t, 4)
	url := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", free[i]) }
	add, err := reconfigure(t, func(ctx context.Context) (*clientv3.MemberAddResponse, error) {
		return lcli.MemberAddAsLearner(ctx, []string{url(0)})
	})
	require.NoError(t, err)
	_, err = lcli.MemberRemove(ctxT(t, 10*time.Second), add.Member.ID)
	require.NoError(t, err)
	waitMembers(t, c, base)

	t.Logf("Step 2: SIGKILL follower %s; wait until the leader's etcd_network_active_peers shows it inactive; a learner is refused: unhealthy cluster", down.name)
	downID := memberID(t, down)
	peerGauge := func(m *member, remote uint64) string {
		return fmt.Sprintf(`etcd_network_active_peers{Local="%x",Remote="%x"}`, memberID(t, m), remote)
	}
	body := string(httpDo(t, "GET", leader.clientURL+"/metrics", nil).body)
	require.Contains(t, body, peerGauge(leader, downID)+" 1")
	require.Contains(t, body, peerGauge(leader, memberID(t, live))+" 1")
	down.kill()
	waitFor(t, 10*time.Second, "the killed member to be inactive on the leader", func() bool {
		return strings.Contains(string(httpDo(t, "GET", leader.clientURL+"/metrics", nil).body), peerGauge(leader, downID)+" 0")
	})
	_, err = lcli.MemberAddAsLearner(ctxT(t, 10*time.Second), []string{url(1)})
	require.ErrorIs(t, err, rpctypes.ErrUnhealthy)

	t.Logf("Step 3: a voter is refused too, through the leader, through follower %s and by metastore member add (with a hint); the member list is unchanged", live.name)
	_, err = lcli.MemberAdd(ctxT(t, 10*time.Second), []string{url(2)})
	require.ErrorIs(t, err, rpctypes.ErrUnhealthy)
	_, err = fcli.MemberAdd(ctxT(t, 10*time.Second), []string{url(2)})
	require.ErrorIs(t, err, rpctypes.ErrUnhealthy)
	code, _, errOut := runCLI(t, 20*time.Second, "member", "add", "m9", "--peer-urls", url(2), "--endpoints", leader.endpoint())
	require.Equal(t, 1, code, errOut)
	require.Contains(t, errOut, "etcdserver: unhealthy cluster", "the CLI prints etcd's error")
	require.Contains(t, errOut, "etcd_network_active_peers", "and what to look at")
	ml, err := lcli.MemberList(ctxT(t, 5*time.Second))
	require.NoError(t, err)
	require.Len(t, ml.Members, 3)

	t.Logf("Step 4: removing the live follower is refused (one connected voter would be left of two); removing the killed one is accepted")
	_, err = lcli.MemberRemove(ctxT(t, 10*time.Second), memberID(t, live))
	require.ErrorIs(t, err, rpctypes.ErrUnhealthy)
	rm, err := lcli.MemberRemove(ctxT(t, 10*time.Second), downID)
	require.NoError(t, err)
	require.Len(t, rm.Members, 2)

	t.Logf("Step 5: restart %s with --strict-reconfig-check=false; right after its restart it adds a learner", live.name)
	require.NoError(t, live.stop())
	live.args = append(live.args, "--strict-reconfig-check=false")
	live.restart()
	c.waitReady(30 * time.Second)
	fcli = newClient(t, live.endpoint())
	add, err = fcli.MemberAddAsLearner(ctxT(t, 10*time.Second), []string{url(3)})
	require.NoError(t, err)
	require.Len(t, add.Members, 3)

	t.Logf("Step 6: verify the two voters still write")
	_, err = lcli.Put(ctxT(t, 10*time.Second), "after", "reconfig")
	require.NoError(t, err)
}
