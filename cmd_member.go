package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// metastore member list|add|remove|promote: etcdctl's member commands and
// output, over the Cluster API.

func memberCommand() *cli.Command {
	return &cli.Command{
		Name:  "member",
		Usage: "list, add, remove or promote cluster members",
		Subcommands: []*cli.Command{{
			Name: "list", Usage: "list the members", Flags: clientFlags(true), Before: noArgs, Action: memberList,
		}, {
			Name: "add", Usage: "add a member (then start it with --initial-cluster-state existing and the printed --member-id)",
			ArgsUsage: "NAME",
			Flags: append(clientFlags(false),
				&cli.StringFlag{Name: "peer-urls", Usage: "the new member's peer URLs, comma-separated"},
				&cli.BoolFlag{Name: "learner", Usage: "add as a learner (promote it once it caught up)"}),
			Action: memberAdd,
		}, {
			Name: "remove", Usage: "remove a member", ArgsUsage: "ID", Flags: clientFlags(false), Action: memberRemove,
		}, {
			Name: "promote", Usage: "promote a learner to a voting member", ArgsUsage: "ID", Flags: clientFlags(false), Action: memberPromote,
		}},
	}
}

func memberRows(ms []*pb.Member) [][]string {
	var rows [][]string
	for _, m := range ms {
		st := "started"
		if m.Name == "" {
			st = "unstarted"
		}
		rows = append(rows, []string{hexID(m.ID), st, m.Name, strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","),
			strconv.FormatBool(m.IsLearner)})
	}
	return rows
}

func memberList(c *cli.Context) error {
	f, err := format(c)
	if err != nil {
		return err
	}
	return withOpsClient(c, func(ctx context.Context, cli *clientv3.Client) error {
		resp, err := cli.MemberList(ctx)
		if err != nil {
			return clientErr(err)
		}
		rows := memberRows(resp.Members)
		switch f {
		case "json":
			return writeJSON(c.App.Writer, resp)
		case "simple":
			for _, r := range rows {
				fmt.Fprintln(c.App.Writer, strings.Join(r, ", "))
			}
		default:
			writeTable(c.App.Writer, []string{"ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"}, rows)
		}
		return nil
	})
}

func memberAdd(c *cli.Context) error {
	name, err := oneArg(c, "the member name")
	if err != nil {
		return err
	}
	var urls []string
	for _, u := range strings.Split(c.String("peer-urls"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		return errors.New("member add: --peer-urls is required")
	}
	return withOpsClient(c, func(ctx context.Context, cli *clientv3.Client) error {
		add := cli.MemberAdd
		if c.Bool("learner") {
			add = cli.MemberAddAsLearner
		}
		resp, err := add(ctx, urls)
		if err != nil {
			return reconfigErr(err)
		}
		kind := "Member"
		if c.Bool("learner") {
			kind = "Learner"
		}
		fmt.Fprintf(c.App.Writer, "%s %s added to cluster %s\n\n", kind, hexID(resp.Member.ID), hexID(resp.Header.ClusterId))
		var conf []string
		for _, m := range resp.Members {
			n := m.Name
			if m.ID == resp.Member.ID {
				n = name
			}
			for _, u := range m.PeerURLs {
				if n != "" {
					conf = append(conf, n+"="+u)
				}
			}
		}
		fmt.Fprintf(c.App.Writer, "--name %s --initial-cluster %s --initial-cluster-state existing --member-id %s\n",
			name, strings.Join(conf, ","), hexID(resp.Member.ID))
		return nil
	})
}

func memberIDArg(c *cli.Context) (uint64, error) {
	arg, err := oneArg(c, "the member ID")
	if err != nil {
		return 0, err
	}
	return parseHexID(arg)
}

func memberRemove(c *cli.Context) error {
	id, err := memberIDArg(c)
	if err != nil {
		return err
	}
	return withOpsClient(c, func(ctx context.Context, cli *clientv3.Client) error {
		resp, err := cli.MemberRemove(ctx, id)
		if err != nil {
			return reconfigErr(err)
		}
		fmt.Fprintf(c.App.Writer, "Member %s removed from cluster %s\n", hexID(id), hexID(resp.Header.ClusterId))
		return nil
	})
}

func memberPromote(c *cli.Context) error {
	id, err := memberIDArg(c)
	if err != nil {
		return err
	}
	return withOpsClient(c, func(ctx context.Context, cli *clientv3.Client) error {
		resp, err := cli.MemberPromote(ctx, id)
		if err != nil {
			return clientErr(err)
		}
		fmt.Fprintf(c.App.Writer, "Member %s promoted in cluster %s\n", hexID(id), hexID(resp.Header.ClusterId))
		return nil
	})
}

// reconfigErr is clientErr, with what to do about etcd's strict
// reconfiguration refusal added to its message.
func reconfigErr(err error) error {
	err = clientErr(err)
	if err.Error() == rpctypes.ErrUnhealthy.Error() {
		return fmt.Errorf("%w (the member that took the request has not been hearing from enough voters for 5 s "+
			"to keep a quorum through this change: retry once the members are up and connected, "+
			"see etcd_network_active_peers in /metrics; docs/operations.md, Member replacement)", err)
	}
	return err
}
