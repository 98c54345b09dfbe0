package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/server"
)

// Operations commands (defrag, alarm, move-leader) and what the client-side
// tools share: the --endpoints flags, a clientv3 client, output formats.
// They talk to members over the etcd v3 API, so they work against etcd too.

// opsFlags are serve's operational flags, etcd's names (serveFlags appends
// them; serveConfig copies them with applyOpsFlags).
func opsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Int64Flag{Name: "quota-backend-bytes", Usage: "raise a NOSPACE alarm and refuse writes when the database exceeds this size (0: 8 GiB; negative: no quota)"},
		&cli.Int64Flag{Name: "disk-free-min-bytes", Usage: "raise a NOSPACE alarm and refuse writes when the data directory's filesystem would have less free space than this (0: 256 MiB; negative: no check)"},
		&cli.StringFlag{Name: "auto-compaction-mode", Value: server.CompactionPeriodic, Usage: "periodic or revision: how --auto-compaction-retention is read"},
		&cli.StringFlag{Name: "auto-compaction-retention", Value: "0", Usage: "periodic: history to keep (a duration, or hours); revision: revisions to keep; 0: off"},
		&cli.DurationFlag{Name: "auto-compaction-interval", Hidden: true, Usage: "how often the leader checks for auto-compaction (tests; default as etcd)"},
		&cli.DurationFlag{Name: "corrupt-check-time", Usage: "how often the leader compares its data hash with the other members' (0: never)"},
		&cli.StringFlag{Name: "feature-gates", Usage: "etcd's feature gates, Name=true|false,...: InitialCorruptCheck (check the data against the peers' before serving), CompactHashCheck (the leader compares the members' hashes at each compaction), PriorityRequest (a LeaseRevoke goes in while writes are refused for apply lag) and SetMemberLocalAddr (peer connections leave from the advertised peer IP) act; LeaseCheckpoint, LeaseCheckpointPersist, FastLeaseKeepAlive, StopGRPCServiceOnDefrag and TxnModeWriteWithSharedBuffer change nothing"},
		&cli.DurationFlag{Name: "compact-hash-check-time", Value: server.DefaultCompactHashCheckTime, Usage: "with --feature-gates CompactHashCheck=true, how often the leader compares the members' hashes at the newest compaction"},
	}
}

// applyOpsFlags copies opsFlags into cfg.
func applyOpsFlags(c *cli.Context, cfg *server.Config) {
	cfg.QuotaBackendBytes = c.Int64("quota-backend-bytes")
	cfg.DiskFreeMinBytes = c.Int64("disk-free-min-bytes")
	cfg.AutoCompactionMode = c.String("auto-compaction-mode")
	cfg.AutoCompactionRetention = c.String("auto-compaction-retention")
	cfg.AutoCompactionInterval = c.Duration("auto-compaction-interval")
	cfg.CorruptCheckTime = c.Duration("corrupt-check-time")
}

// clientFlags are the flags of every command that talks to members.
func clientFlags(withFormat bool) []cli.Flag {
	fs := []cli.Flag{
		&cli.StringFlag{Name: "endpoints", Value: "127.0.0.1:2379", Usage: "comma-separated member client endpoints (host:port or URL)"},
		&cli.DurationFlag{Name: "dial-timeout", Value: 2 * time.Second, Usage: "timeout to connect to a member"},
		&cli.DurationFlag{Name: "command-timeout", Value: 5 * time.Second, Usage: "timeout of each request"},
	}
	fs = append(fs, clientTLSFlags()...) // --cacert, --cert, --key: cmd_tls.go
	if withFormat {
		fs = append(fs, &cli.StringFlag{Name: "write-out", Aliases: []string{"w"}, Value: "table", Usage: "output format: table, json or simple"})
	}
	return fs
}

func endpointsFlag(c *cli.Context) []string {
	var eps []string
	for _, e := range strings.Split(c.String("endpoints"), ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, strings.TrimPrefix(strings.TrimPrefix(e, "http://"), "https://"))
		}
	}
	return eps
}

// newClient connects to the --endpoints (or eps when given).
func newOpsClient(c *cli.Context, eps ...string) (*clientv3.Client, error) {
	if len(eps) == 0 {
		eps = endpointsFlag(c)
	}
	if len(eps) == 0 {
		return nil, errors.New("--endpoints is empty")
	}
	tlsCfg, err := clientTLSConfig(c) // cmd_tls.go
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: c.Duration("dial-timeout"), TLS: tlsCfg, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", strings.Join(eps, ","), err)
	}
	return cli, nil
}

// withOpsClient runs fn with a client for the command's endpoints and a
// context bounded by its command timeout, and closes both afterwards.
func withOpsClient(c *cli.Context, fn func(ctx context.Context, cli *clientv3.Client) error) error {
	cli, err := newOpsClient(c)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := commandCtx(c)
	defer cancel()
	return fn(ctx, cli)
}

func commandCtx(c *cli.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Context, c.Duration("command-timeout"))
}

// clientErr shortens a client error to its message (gRPC status text without
// the "rpc error: code = ..." prefix).
func clientErr(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		return errors.New(st.Message())
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return errors.New(ee.Error())
	}
	return errors.New(strings.ReplaceAll(err.Error(), "\n", " "))
}

func format(c *cli.Context) (string, error) {
	f := c.String("write-out")
	switch f {
	case "table", "json", "simple":
		return f, nil
	}
	return "", fmt.Errorf("--write-out %q: want table, json or simple", f)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	return enc.Encode(v)
}

// writeTable prints rows under header, aligned, as etcdctl's tables.
func writeTable(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func hexID(id uint64) string { return strconv.FormatUint(id, 16) }

func parseHexID(s string) (uint64, error) {
	id, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("bad member ID %q: want hex as printed by 'member list'", s)
	}
	return id, nil
}

// clusterEndpoints lists the client URLs of every member when --cluster is
// set, else the --endpoints.
func clusterEndpoints(c *cli.Context) ([]string, error) {
	if !c.Bool("cluster") {
		return endpointsFlag(c), nil
	}
	cli, err := newOpsClient(c)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := commandCtx(c)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return nil, clientErr(err)
	}
	var eps []string
	for _, m := range resp.Members {
		for _, u := range m.ClientURLs {
			eps = append(eps, strings.TrimPrefix(u, "http://"))
		}
	}
	return eps, nil
}

var clusterFlag = &cli.BoolFlag{Name: "cluster", Usage: "use every member's client URL from the member list instead of --endpoints"}

func defragCommand() *cli.Command {
	return &cli.Command{
		Name:   "defrag",
		Usage:  "reclaim free space on the members (online: reads and writes continue)",
		Flags:  append(clientFlags(false), clusterFlag),
		Before: noArgs,
		Action: func(c *cli.Context) error {
			eps, err := clusterEndpoints(c)
			if err != nil {
				return err
			}
			var failed []string
			for _, ep := range eps {
				cli, err := newOpsClient(c, ep)
				if err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(c.Context, max(c.Duration("command-timeout"), time.Minute))
				_, err = cli.Defragment(ctx, ep)
				cancel()
				cli.Close()
				if err != nil {
					fmt.Fprintf(c.App.ErrWriter, "Failed to defragment etcd member[%s] (%v)\n", ep, clientErr(err))
					failed = append(failed, ep)
					continue
				}
				fmt.Fprintf(c.App.Writer, "Finished defragmenting etcd member[%s]\n", ep)
			}
			if len(failed) > 0 {
				return fmt.Errorf("defrag failed on %s", strings.Join(failed, ","))
			}
			return nil
		},
	}
}

func alarmCommand() *cli.Command {
	return &cli.Command{
		Name:  "alarm",
		Usage: "list or disarm alarms (NOSPACE, CORRUPT)",
		Subcommands: []*cli.Command{{
			Name: "list", Usage: "list the active alarms", Flags: clientFlags(false), Before: noArgs,
			Action: func(c *cli.Context) error { return alarmAction(c, false) },
		}, {
			Name: "disarm", Usage: "deactivate every active alarm", Flags: clientFlags(false), Before: noArgs,
			Action: func(c *cli.Context) error { return alarmAction(c, true) },
		}},
	}
}

func alarmAction(c *cli.Context, disarm bool) error {
	return withOpsClient(c, func(ctx context.Context, cli *clientv3.Client) error {
		var resp *clientv3.AlarmResponse
		var err error
		if disarm {
			resp, err = cli.AlarmDisarm(ctx, &clientv3.AlarmMember{})
		} else {
			resp, err = cli.AlarmList(ctx)
		}
		if err != nil {
			return clientErr(err)
		}
		for _, a := range resp.Alarms {
			fmt.Fprintf(c.App.Writer, "memberID:%d alarm:%s\n", a.MemberID, a.Alarm)
		}
		return nil
	})
}

func moveLeaderCommand() *cli.Command {
	return &cli.Command{
		Name:      "move-leader",
		Usage:     "transfer leadership to the member with the given ID (hex)",
		ArgsUsage: "ID",
		Flags:     clientFlags(false),
		Action: func(c *cli.Context) error {
			arg, err := oneArg(c, "the transferee's member ID")
			if err != nil {
				return err
			}
			target, err := parseHexID(arg)
			if err != nil {
				return err
			}
			// As etcdctl: find the leader among the endpoints, then ask it.
			var leaderEP string
			var leaderID uint64
			for _, ep := range endpointsFlag(c) {
				cli, err := newOpsClient(c, ep)
				if err != nil {
					return err
				}
				ctx, cancel := commandCtx(c)
				st, err := cli.Status(ctx, ep)
				cancel()
				cli.Close()
				if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
					leaderEP, leaderID = ep, st.Leader
					break
				}
			}
			if leaderEP == "" {
				return errors.New("move-leader: no leader endpoint given at " + c.String("endpoints"))
			}
			cli, err := newOpsClient(c, leaderEP)
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, cancel := commandCtx(c)
			defer cancel()
			if _, err := cli.MoveLeader(ctx, target); err != nil {
				return clientErr(err)
			}
			fmt.Fprintf(c.App.Writer, "Leadership transferred from %s to %s\n", hexID(leaderID), hexID(target))
			return nil
		},
	}
}

// statusErrors joins a Status reply's errors for a table cell.
func statusErrors(st *pb.StatusResponse) string { return strings.Join(st.Errors, ", ") }

// posArgs returns the command's positional arguments, applying any flags
// written among or after them (`snapshot save FILE --endpoints X`): cli v2
// stops parsing flags at the first positional argument.
func posArgs(c *cli.Context) ([]string, error) {
	bools := map[string]bool{}
	primary := map[string]string{} // every name and alias -> the flag's first name
	for _, f := range c.Command.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			primary[n], bools[n] = f.Names()[0], isBool
		}
	}
	var pos []string
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if primary[name] == "" {
			return nil, fmt.Errorf("%s: flag provided but not defined: -%s", c.Command.Name, name)
		}
		if !hasVal {
			if bools[name] {
				val = "true"
			} else {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("%s: flag needs an argument: -%s", c.Command.Name, name)
				}
				i++
				val = args[i]
			}
		}
		if err := c.Set(primary[name], val); err != nil {
			return nil, fmt.Errorf("%s: invalid value %q for flag -%s: %v", c.Command.Name, val, name, err)
		}
	}
	return pos, nil
}

// oneArg is posArgs for commands that take exactly one argument.
func oneArg(c *cli.Context, what string) (string, error) {
	pos, err := posArgs(c)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", fmt.Errorf("%s: want exactly one argument, %s", c.Command.Name, what)
	}
	return pos[0], nil
}
