package main

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/metastore/metastore/server"
)

// etcd's --feature-gates (server/features in etcd 3.7): the same names,
// defaults and syntax ("Name=true,Other=false"), so that a unit written
// for etcd, kubeadm's manifest among them (InitialCorruptCheck=true),
// starts MetaStore as it is (docs/operations.md, Corruption check).

// gateSpec is a gate's stage (alpha or beta: AllAlpha and AllBeta set
// them) and etcd's default.
type gateSpec struct {
	beta bool
	def  bool
}

var etcdFeatureGates = map[string]gateSpec{
	// Gates that act (applyFeatureGates).
	"CompactHashCheck":    {},
	"InitialCorruptCheck": {},
	"PriorityRequest":     {},
	"SetMemberLocalAddr":  {},
	// Gates that change nothing: MetaStore behaves one way whatever the
	// value (docs/operations.md says how), and either value is accepted.
	"FastLeaseKeepAlive":           {beta: true, def: true},
	"LeaseCheckpoint":              {},
	"LeaseCheckpointPersist":       {},
	"StopGRPCServiceOnDefrag":      {},
	"TxnModeWriteWithSharedBuffer": {beta: true, def: true},
}

// parseFeatureGates reads --feature-gates and returns every gate's value
// (etcd's defaults, then AllAlpha and AllBeta, then the gates named).
// Errors read as etcd's.
func parseFeatureGates(value string) (map[string]bool, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("invalid value %q for flag --feature-gates: %s", value, fmt.Sprintf(format, a...))
	}
	set := map[string]bool{}
	for _, part := range strings.Split(value, ",") {
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok {
			return nil, bad("missing bool value for %s", k)
		}
		v = strings.TrimSpace(v)
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, bad("invalid value of %s=%s, err: %v", k, v, err)
		}
		if _, known := etcdFeatureGates[k]; !known && k != "AllAlpha" && k != "AllBeta" {
			return nil, bad("unrecognized feature gate: %s", k)
		}
		set[k] = b // a gate named twice: the last value, as etcd
	}
	gates := map[string]bool{}
	for name, g := range etcdFeatureGates {
		gates[name] = g.def
		if all, ok := set["AllAlpha"]; ok && !g.beta {
			gates[name] = all
		}
		if all, ok := set["AllBeta"]; ok && g.beta {
			gates[name] = all
		}
	}
	for k, b := range set {
		if _, known := etcdFeatureGates[k]; known {
			gates[k] = b
		}
	}
	if gates["LeaseCheckpointPersist"] && !gates["LeaseCheckpoint"] {
		return nil, fmt.Errorf("enabling feature gate LeaseCheckpointPersist requires enabling feature gate LeaseCheckpoint")
	}
	return gates, nil
}

// applyFeatureGates copies the gates that act, and
// --compact-hash-check-time, into cfg; advPeer is the member's advertised
// peer URLs (serveConfig's, with its fallback to --listen-peer-urls).
func applyFeatureGates(c *cli.Context, advPeer string, cfg *server.Config) error {
	gates, err := parseFeatureGates(c.String("feature-gates"))
	if err != nil {
		return err
	}
	cfg.InitialCorruptCheck = gates["InitialCorruptCheck"]
	cfg.CompactHashCheck = gates["CompactHashCheck"]
	cfg.PriorityRequests = gates["PriorityRequest"]
	if gates["SetMemberLocalAddr"] {
		cfg.PeerLocalAddr = memberLocalAddr(advPeer)
	}
	cfg.CompactHashCheckTime = c.Duration("compact-hash-check-time")
	if cfg.CompactHashCheckTime <= 0 {
		return fmt.Errorf("--compact-hash-check-time must be >0 (set to %v)", cfg.CompactHashCheckTime)
	}
	return nil
}

// memberLocalAddr is etcd's choice for SetMemberLocalAddr: the first
// advertised peer URL whose host is an IP address, neither loopback nor
// unspecified ("" when none is: the system chooses, as in etcd).
func memberLocalAddr(advertisePeerURLs string) string {
	for _, raw := range strings.Split(advertisePeerURLs, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil {
			continue
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && !a.IsLoopback() && !a.IsUnspecified() {
			return a.String()
		}
	}
	return ""
}
