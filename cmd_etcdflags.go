package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/metastore/metastore/raft"
)

// More of etcd's serve flags, with etcd's names, defaults and meaning, so
// that a unit or a config file written for etcd starts MetaStore as it is:
// the logger and its outputs, pre-vote, the gRPC keep-alive policy, the
// JSON gateway switch, socket reuse and the TLS versions and cipher
// suites. docs/operations.md lists them.

// Defaults of etcd's gRPC keep-alive flags.
const (
	defaultGRPCKeepAliveMinTime  = 5 * time.Second
	defaultGRPCKeepAliveInterval = 2 * time.Hour
	defaultGRPCKeepAliveTimeout  = 20 * time.Second
)

func etcdCompatFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "logger", Value: "zap", Usage: "the logger: zap (etcd's only logger since 3.5)"},
		&cli.StringFlag{Name: "log-outputs", Value: "default", Usage: "comma-separated log outputs: default or stderr, stdout, systemd/journal (stderr, which systemd keeps in the journal), or file paths"},
		&cli.DurationFlag{Name: "downgrade-check-time", Value: 5 * time.Second, Usage: "etcd's interval of the leader's check whether a downgrade has finished; MetaStore's members always run one version, so an enabled downgrade never finishes on its own and the check has nothing to do (accepted for etcd's command lines)"},
		&cli.StringFlag{Name: "v2-deprecation", Value: "write-only", Usage: "etcd's v2 store deprecation phase (not-yet, write-only, write-only-drop-data, gone); MetaStore has no v2 store: as etcd 3.7, the value is checked and otherwise ignored"},
		&cli.BoolFlag{Name: "memory-mlock", Usage: "keep the member's memory in RAM (mlockall): pages it touches are never swapped out; needs RLIMIT_MEMLOCK (LimitMEMLOCK= in the unit) or CAP_IPC_LOCK"},
		&cli.BoolFlag{Name: "enable-log-rotation", Usage: "rotate the one file among --log-outputs as --log-rotation-config-json says"},
		&cli.StringFlag{Name: "log-rotation-config-json", Value: defaultLogRotationConfig, Usage: "with --enable-log-rotation: a new file past maxsize MB; maxbackups old files kept (0: all) for maxage days (0: no limit); localtime names them in local time; compress gzips them"},
		&cli.IntFlag{Name: "max-learners", Value: raft.DefaultMaxLearners, Usage: "how many learners the membership may hold at once (every member should run with the same value)"},
		&cli.BoolFlag{Name: "force-new-cluster", Usage: "restart this member of a cluster that lost its quorum as the cluster's only member, with its data (entries it does not know to be committed are dropped); other members must not come back with their old data"},
		&cli.BoolFlag{Name: "initial-election-tick-advance", Value: true, Usage: "shorten the first election after a start: a one-member cluster leads at once, a member of a larger one that hears from a quorum advances its election clock"},
		&cli.BoolFlag{Name: "pre-vote", Value: true, Usage: "run raft's pre-vote before an election, so a member cut off from the others does not disturb the leader when it comes back"},
		&cli.DurationFlag{Name: "grpc-keepalive-min-time", Value: defaultGRPCKeepAliveMinTime, Usage: "the shortest interval a client may send keep-alive pings at; more often closes its connection (too_many_pings)"},
		&cli.DurationFlag{Name: "grpc-keepalive-interval", Value: defaultGRPCKeepAliveInterval, Usage: "how often the member pings a quiet client connection"},
		&cli.DurationFlag{Name: "grpc-keepalive-timeout", Value: defaultGRPCKeepAliveTimeout, Usage: "how long the member waits for a ping's answer before closing the connection"},
		&cli.StringFlag{Name: "metrics", Value: "basic", Usage: "basic, or extensive: also gRPC latency histograms (grpc_server_handling_seconds)"},
		&cli.BoolFlag{Name: "enable-grpc-gateway", Value: true, Usage: "serve etcd's JSON gateway (/v3/...) on the client URLs"},
		&cli.BoolFlag{Name: "socket-reuse-port", Usage: "set SO_REUSEPORT on the client and peer listeners"},
		&cli.BoolFlag{Name: "socket-reuse-address", Usage: "set SO_REUSEADDR on the client and peer listeners (bind while old connections are in TIME_WAIT)"},
		&cli.StringFlag{Name: "tls-min-version", Value: "TLS1.2", Usage: "the lowest TLS version served and dialled: TLS1.2 or TLS1.3"},
		&cli.StringFlag{Name: "tls-max-version", Usage: "the highest TLS version: TLS1.2 or TLS1.3 (empty: the newest Go supports)"},
		&cli.StringFlag{Name: "cipher-suites", Usage: "comma-separated TLS 1.2 cipher suites (Go's names, e.g. TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); empty: Go's choice"},
	}
}

// newLogger builds the member's logger from --log-level, --log-format,
// --logger and --log-outputs.
func newLogger(c *cli.Context) (*zap.Logger, error) {
	zc, err := logConfig(c)
	if err != nil {
		return nil, err
	}
	lg, err := zc.Build()
	if err != nil {
		return nil, fmt.Errorf("--log-outputs %q: %w", c.String("log-outputs"), err)
	}
	return lg, nil
}

// logConfig checks the log flags and returns the logger's configuration
// (without opening its outputs: `config check` calls it too).
func logConfig(c *cli.Context) (zap.Config, error) {
	level, format := c.String("log-level"), c.String("log-format")
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return zap.Config{}, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	if l := c.String("logger"); l != "zap" {
		return zap.Config{}, fmt.Errorf("--logger %q: want zap (etcd's only logger since 3.5)", l)
	}
	outs, err := logOutputs(c.String("log-outputs"))
	if err != nil {
		return zap.Config{}, err
	}
	if c.Bool("enable-log-rotation") {
		if outs, err = withLogRotation(outs, c.String("log-rotation-config-json")); err != nil { // cmd_logrotate.go
			return zap.Config{}, err
		}
	}
	var zc zap.Config
	switch format {
	case "json":
		zc = zap.NewProductionConfig()
	case "console":
		zc = zap.NewDevelopmentConfig()
	default:
		return zap.Config{}, fmt.Errorf("--log-format %q: want json or console", format)
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	zc.OutputPaths, zc.ErrorOutputPaths = outs, outs
	return zc, nil
}

// logOutputs maps etcd's --log-outputs to zap's output paths: default and
// systemd/journal are stderr (a systemd unit's stderr goes to the journal).
func logOutputs(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		switch o {
		case "":
			continue
		case "default", "systemd/journal":
			o = "stderr"
		}
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--log-outputs is empty")
	}
	return out, nil
}

// listenConfig is how serve's listeners are opened: with SO_REUSEPORT and
// SO_REUSEADDR when asked.
func listenConfig(c *cli.Context) net.ListenConfig {
	port, addr := c.Bool("socket-reuse-port"), c.Bool("socket-reuse-address")
	if !port && !addr {
		return net.ListenConfig{}
	}
	return net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if port {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}
			if addr && serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
}

// listen opens one TCP listener with lc.
func listen(lc net.ListenConfig, host string) (net.Listener, error) {
	return lc.Listen(context.Background(), "tcp", host)
}

// tlsVersions is etcd's --tls-min-version, --tls-max-version and
// --cipher-suites, checked as etcd checks them.
func tlsVersions(c *cli.Context) (min, max uint16, suites []uint16, err error) {
	parse := func(flag string) (uint16, error) {
		switch v := c.String(flag); v {
		case "":
			return 0, nil
		case "TLS1.2":
			return tls.VersionTLS12, nil
		case "TLS1.3":
			return tls.VersionTLS13, nil
		default:
			return 0, fmt.Errorf("--%s %q: want TLS1.2 or TLS1.3", flag, v)
		}
	}
	if min, err = parse("tls-min-version"); err != nil {
		return 0, 0, nil, err
	}
	if min == 0 {
		min = tls.VersionTLS12
	}
	if max, err = parse("tls-max-version"); err != nil {
		return 0, 0, nil, err
	}
	if max != 0 && max < min {
		return 0, 0, nil, fmt.Errorf("--tls-min-version %s is above --tls-max-version %s", c.String("tls-min-version"), c.String("tls-max-version"))
	}
	names := strings.TrimSpace(c.String("cipher-suites"))
	if names == "" {
		return min, max, nil, nil
	}
	if min == tls.VersionTLS13 {
		return 0, 0, nil, fmt.Errorf("--cipher-suites cannot be set when only TLS 1.3 is allowed (its suites are fixed)")
	}
	known := map[string]uint16{}
	for _, s := range tls.CipherSuites() {
		known[s.Name] = s.ID
	}
	for _, n := range strings.Split(names, ",") {
		n = strings.TrimSpace(n)
		id, ok := known[n]
		if !ok {
			return 0, 0, nil, fmt.Errorf("--cipher-suites: unknown or insecure cipher suite %q", n)
		}
		suites = append(suites, id)
	}
	return min, max, suites, nil
}

// withTLSVersions sets the TLS flags' versions and suites on i.
func withTLSVersions(c *cli.Context, i raft.TLSInfo) raft.TLSInfo {
	// NB: serveConfig has checked the flags (applyTLSFlags).
	i.MinVersion, i.MaxVersion, i.CipherSuites, _ = tlsVersions(c)
	return i
}

// lockMemory is etcd's --memory-mlock: every page of the process, now and
// later, stays in RAM once touched (MCL_ONFAULT: reserved address space,
// such as a thread's stack, is not filled in ahead of use).
func lockMemory(lg *zap.Logger) error {
	if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT); err != nil {
		return fmt.Errorf("--memory-mlock: mlockall: %w (a member may lock only RLIMIT_MEMLOCK bytes: raise LimitMEMLOCK= in its unit, or give it CAP_IPC_LOCK)", err)
	}
	lg.Info("memory locked in RAM (--memory-mlock)")
	return nil
}

// checkV2Deprecation is etcd 3.7's --v2-deprecation: a phase name is
// required, and any is then ignored with etcd's warning (MetaStore never had
// a v2 store; etcd 3.7 enforces its default).
func checkV2Deprecation(c *cli.Context, lg *zap.Logger) error {
	v := c.String("v2-deprecation")
	switch v {
	case "not-yet", "write-only", "write-only-drop-data", "gone":
	default:
		return fmt.Errorf("invalid value %q for flag --v2-deprecation: invalid value %q", v, v)
	}
	if c.IsSet("v2-deprecation") {
		lg.Warn("--v2-deprecation is deprecated and scheduled for removal in v3.8. The default value is enforced, ignoring user input.")
	}
	return nil
}
