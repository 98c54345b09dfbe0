package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/metastore/metastore/bench"
)

// benchWorkload is one `metastore bench` subcommand.
type benchWorkload struct {
	name, usage string
	run         func(context.Context, bench.Options) (*bench.Result, error)
	defaults    func(*bench.Options) // per-workload defaults over bench.DefaultOptions
	flags       []cli.Flag
	apply       func(*cli.Context, *bench.Options) error // reads the workload's own flags
	watch       bool                                     // --total/--rate also answer to --put-total/--put-rate
}

func benchCommand() *cli.Command {
	workloads := []benchWorkload{
		{name: "put", usage: "Put keys (KV.Put)", run: bench.Put},
		{
			name: "range", usage: "read a key or range (KV.Range); arguments: [key [end]] (default key foo)",
			run: bench.Range,
			flags: []cli.Flag{
				consistencyFlag(),
				&cli.Int64Flag{Name: "limit", Usage: "maximum keys per range (0: no limit)"},
			},
			apply: func(c *cli.Context, o *bench.Options) error {
				for _, a := range c.Args().Slice() {
					if strings.HasPrefix(a, "-") {
						return fmt.Errorf("bench range: flag %s after the key: flags go before [key [end]]", a)
					}
				}
				if c.NArg() > 2 {
					return fmt.Errorf("bench range: at most two arguments (key and end), got %d", c.NArg())
				}
				if c.NArg() > 0 {
					o.RangeKey = c.Args().Get(0)
				}
				o.RangeEnd = c.Args().Get(1)
				o.Consistency, o.RangeLimit = c.String("consistency"), c.Int64("limit")
				return nil
			},
		},
		{
			name: "txn-put", usage: "txns of --txn-ops puts (KV.Txn)", run: bench.TxnPut,
			flags: []cli.Flag{&cli.IntFlag{Name: "txn-ops", Value: 1, Usage: "puts per txn"}},
			apply: func(c *cli.Context, o *bench.Options) error { o.TxnOps = c.Int("txn-ops"); return nil },
		},
		{
			name: "txn-mixed", usage: "single-op txns that read a range or put a key, in --rw-ratio", run: bench.TxnMixed,
			flags: []cli.Flag{
				consistencyFlag(),
				&cli.Float64Flag{Name: "rw-ratio", Value: 1, Usage: "reads per write"},
				&cli.Int64Flag{Name: "limit", Value: 1000, Usage: "maximum keys per read"},
			},
			apply: func(c *cli.Context, o *bench.Options) error {
				o.Consistency, o.RWRatio, o.RangeLimit = c.String("consistency"), c.Float64("rw-ratio"), c.Int64("limit")
				return nil
			},
		},
		{
			name: "mixed", usage: "Put, Get, Delete and Range on the key space, by weight", run: bench.Mixed,
			flags: []cli.Flag{
				consistencyFlag(),
				&cli.Float64Flag{Name: "put-ratio", Value: 50, Usage: "weight of Put"},
				&cli.Float64Flag{Name: "get-ratio", Value: 40, Usage: "weight of Get (one key)"},
				&cli.Float64Flag{Name: "delete-ratio", Value: 5, Usage: "weight of Delete"},
				&cli.Float64Flag{Name: "range-ratio", Value: 5, Usage: "weight of Range (from a key, up to --limit keys)"},
				&cli.Int64Flag{Name: "limit", Value: 100, Usage: "maximum keys per Range"},
			},
			apply: func(c *cli.Context, o *bench.Options) error {
				o.Consistency, o.RangeLimit = c.String("consistency"), c.Int64("limit")
				o.PutRatio, o.GetRatio = c.Float64("put-ratio"), c.Float64("get-ratio")
				o.DeleteRatio, o.RangeRatio = c.Float64("delete-ratio"), c.Float64("range-ratio")
				return nil
			},
		},
		{
			name: "watch", usage: "watch fan-out: events delivered per second to many watchers", run: bench.Watch, watch: true,
			defaults: func(o *bench.Options) { o.Total, o.WatchersPerStream = 1000, 100 },
			flags:    watchFlags(100),
			apply:    applyWatchFlags,
		},
		{
			name: "watch-latency", usage: "delay from a Put's return to each watcher's event", run: bench.WatchLatency, watch: true,
			defaults: func(o *bench.Options) { o.Total, o.Rate, o.WatchersPerStream = 1000, 100, 10 },
			flags:    watchFlags(10),
			apply:    applyWatchFlags,
		},
		{
			name: "lease-keepalive", usage: "lease renewals, one stream per client (Lease.LeaseKeepAlive)", run: bench.LeaseKeepAlive,
			flags: []cli.Flag{&cli.Int64Flag{Name: "ttl", Value: 100, Usage: "TTL of the leases granted, in seconds"}},
			apply: func(c *cli.Context, o *bench.Options) error { o.LeaseTTL = c.Int64("ttl"); return nil },
		},
		{name: "rest-put", usage: "PUT http://ENDPOINT/v1/kv/{key} (MetaStore's REST API)", run: bench.RESTPut},
		{name: "rest-get", usage: "GET http://ENDPOINT/v1/kv/{key} (fill the keys first with rest-put)", run: bench.RESTGet},
	}
	cmd := &cli.Command{
		Name:  "bench",
		Usage: "load generator for MetaStore and etcd alike (etcd v3 gRPC API, /v1 REST API)",
		Description: "Each subcommand runs one workload and prints throughput, latency percentiles\n" +
			"(p50, p90, p99, p99.9, max) and errors by kind; --json prints the same as JSON,\n" +
			"--plot FILE.png draws latency over time and its distribution.",
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return fmt.Errorf("bench: unknown workload %q (see 'metastore bench --help')", c.Args().First())
			}
			return cli.ShowSubcommandHelp(c)
		},
	}
	for _, w := range workloads {
		cmd.Subcommands = append(cmd.Subcommands, w.command())
	}
	return cmd
}

func consistencyFlag() cli.Flag {
	return &cli.StringFlag{Name: "consistency", Value: "l", Usage: "reads are linearizable (l) or serializable (s)"}
}

func watchFlags(perStream int) []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "streams", Value: 10, Usage: "watch streams (each its own gRPC stream)"},
		&cli.IntFlag{Name: "watchers-per-stream", Aliases: []string{"watch-per-stream"}, Value: perStream, Usage: "watchers on each stream"},
		&cli.IntFlag{Name: "watched-key-total", Value: 1, Usage: "keys watched; watchers and puts cycle over them"},
	}
}

func applyWatchFlags(c *cli.Context, o *bench.Options) error {
	o.Streams, o.WatchersPerStream, o.WatchedKeys = c.Int("streams"), c.Int("watchers-per-stream"), c.Int("watched-key-total")
	return nil
}

func (w benchWorkload) command() *cli.Command {
	d := bench.DefaultOptions()
	if w.defaults != nil {
		w.defaults(&d)
	}
	totalAliases, rateAliases := []string(nil), []string(nil)
	if w.watch {
		totalAliases, rateAliases = []string{"put-total"}, []string{"put-rate"}
	}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "endpoints", Value: strings.Join(d.Endpoints, ","), Usage: "comma-separated host:port of the servers"},
		&cli.IntFlag{Name: "conns", Value: d.Conns, Usage: "connections (gRPC, or HTTP for rest-*)"},
		&cli.IntFlag{Name: "clients", Value: d.Clients, Usage: "concurrent clients, spread over the connections"},
		&cli.Int64Flag{Name: "total", Aliases: totalAliases, Value: d.Total, Usage: "operations to run (watch: puts); 0 with --duration: no count limit"},
		&cli.DurationFlag{Name: "duration", Usage: "run for this long instead (with --total: whichever comes first)"},
		&cli.Float64Flag{Name: "rate", Aliases: rateAliases, Value: d.Rate, Usage: "operations per second over all clients (0: unlimited)"},
		&cli.IntFlag{Name: "key-size", Value: d.KeySize, Usage: "key size in bytes"},
		&cli.IntFlag{Name: "val-size", Value: d.ValSize, Usage: "value size in bytes"},
		&cli.Int64Flag{Name: "key-space-size", Value: d.KeySpaceSize, Usage: "distinct keys"},
		&cli.BoolFlag{Name: "sequential-keys", Usage: "use keys in order instead of at random"},
		&cli.BoolFlag{Name: "target-leader", Usage: "connect only to the leader among --endpoints"},
		&cli.DurationFlag{Name: "dial-timeout", Value: d.DialTimeout, Usage: "bound on connecting"},
		&cli.DurationFlag{Name: "request-timeout", Value: d.RequestTimeout, Usage: "bound on each request"},
		&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
		&cli.StringFlag{Name: "plot", Usage: "also draw latency over time and its distribution to this PNG file"},
		&cli.StringFlag{Name: "title", Usage: "title of the plot (default: the workload)"},
		&cli.StringFlag{Name: "cpuprofile", Usage: "write the client's CPU profile (pprof) of the run to this file"},
	}
	before := cli.BeforeFunc(func(c *cli.Context) error {
		if c.Args().Present() {
			return fmt.Errorf("bench %s: unexpected argument %q", w.name, c.Args().First())
		}
		return nil
	})
	if w.name == "range" {
		before = nil // takes [key [end]]
	}
	return &cli.Command{
		Name:   w.name,
		Usage:  w.usage,
		Flags:  append(flags, w.flags...),
		Before: before,
		// main's usageError names only the last command word.
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return fmt.Errorf("bench %s: %w (see 'metastore bench %s --help')", w.name, err, w.name)
		},
		Action: func(c *cli.Context) error {
			defaultGCPercentUnlessSet() // gc.go
			o := d
			o.Endpoints = []string{c.String("endpoints")}
			o.Conns, o.Clients = c.Int("conns"), c.Int("clients")
			o.Total, o.Duration, o.Rate = c.Int64("total"), c.Duration("duration"), c.Float64("rate")
			if c.IsSet("duration") && !c.IsSet("total") && !c.IsSet("put-total") {
				o.Total = 0 // --duration alone: time-driven
			}
			o.KeySize, o.ValSize, o.KeySpaceSize = c.Int("key-size"), c.Int("val-size"), c.Int64("key-space-size")
			o.SequentialKeys, o.TargetLeader = c.Bool("sequential-keys"), c.Bool("target-leader")
			o.DialTimeout, o.RequestTimeout = c.Duration("dial-timeout"), c.Duration("request-timeout")
			if w.apply != nil {
				if err := w.apply(c, &o); err != nil {
					return err
				}
			}
			if !c.Bool("json") {
				o.Progress = bench.ProgressWriter(os.Stderr)
			}
			return runBench(c, w, o)
		},
	}
}

func runBench(c *cli.Context, w benchWorkload, o bench.Options) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if path := c.String("cpuprofile"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return benchError(w.name, err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return benchError(w.name, err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := w.run(ctx, o)
	if err != nil {
		return benchError(w.name, err)
	}
	out := c.App.Writer
	if c.Bool("json") {
		err = res.WriteJSON(out)
	} else {
		err = res.WriteText(out)
	}
	if err != nil {
		return err
	}
	if path := c.String("plot"); path != "" {
		if err := res.WritePlot(path, c.String("title")); err != nil {
			return benchError(w.name, err)
		}
	}
	if res.Succeeded == 0 && res.Ops > 0 {
		return fmt.Errorf("bench %s: every operation failed (%d)", w.name, res.Failed)
	}
	return nil
}

// benchError names the workload once: "bench put: bad option: ...".
func benchError(workload string, err error) error {
	return fmt.Errorf("bench %s: %s", workload, strings.TrimPrefix(err.Error(), "bench: "))
}
