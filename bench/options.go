package bench

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// ErrBadOption is wrapped by every validation error, so callers can tell a
// bad flag from a failed run.
var ErrBadOption = errors.New("bench: bad option")

// Options configures one workload. The zero value is not valid; start from
// DefaultOptions.
type Options struct {
	Endpoints      []string      // host:port (a scheme prefix is accepted and dropped)
	Conns          int           // gRPC connections (REST: HTTP connections)
	Clients        int           // concurrent clients, spread round-robin over Conns
	Total          int64         // operations to run; 0 with Duration set means no count limit
	Duration       time.Duration // stop issuing operations after this long; 0 = no limit
	Rate           float64       // operations per second over all clients; 0 = unlimited
	KeySize        int           // bytes per key
	ValSize        int           // bytes per value
	KeySpaceSize   int64         // distinct keys
	SequentialKeys bool          // key i%KeySpaceSize instead of a random one
	DialTimeout    time.Duration
	RequestTimeout time.Duration // bound on every single request
	TargetLeader   bool          // connect only to the current leader's endpoint

	// Range, TxnMixed, Mixed: "l" linearizable or "s" serializable reads.
	Consistency string
	// Range: the key and optional end of the range read.
	RangeKey, RangeEnd string
	// TxnPut: puts per txn. TxnMixed: reads/writes ratio and range limit.
	TxnOps     int
	RWRatio    float64
	RangeLimit int64
	// Mixed: relative weights of each kind of operation.
	PutRatio, GetRatio, DeleteRatio, RangeRatio float64
	// Watch, WatchLatency: watch streams, watchers per stream, keys watched.
	Streams, WatchersPerStream, WatchedKeys int
	// LeaseKeepAlive: TTL of the leases granted.
	LeaseTTL int64

	// Progress, when non-nil, receives a progress bar (only on a terminal;
	// see ProgressWriter).
	Progress io.Writer
}

// DefaultOptions returns the defaults `metastore bench` starts from; they
// match etcd's benchmark where it has the same flag.
func DefaultOptions() Options {
	return Options{
		Endpoints:         []string{"127.0.0.1:2379"},
		Conns:             1,
		Clients:           1,
		Total:             10000,
		KeySize:           8,
		ValSize:           8,
		KeySpaceSize:      1,
		DialTimeout:       5 * time.Second,
		RequestTimeout:    10 * time.Second,
		Consistency:       "l",
		RangeKey:          "foo",
		TxnOps:            1,
		RWRatio:           1,
		RangeLimit:        1000,
		PutRatio:          50,
		GetRatio:          40,
		DeleteRatio:       5,
		RangeRatio:        5,
		Streams:           10,
		WatchersPerStream: 10,
		WatchedKeys:       1,
		LeaseTTL:          100,
	}
}

// Validate checks the options every workload shares and normalises the
// endpoints. It returns a one-line error wrapping ErrBadOption.
func (o *Options) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadOption}, args...)...)
	}
	var eps []string
	for _, e := range o.Endpoints {
		for _, p := range strings.Split(e, ",") {
			p = strings.TrimSpace(p)
			p = strings.TrimPrefix(strings.TrimPrefix(p, "http://"), "https://")
			p = strings.TrimSuffix(p, "/")
			if p == "" {
				continue
			}
			if !strings.Contains(p, ":") {
				return bad("--endpoints: %q is not host:port", p)
			}
			eps = append(eps, p)
		}
	}
	if len(eps) == 0 {
		return bad("--endpoints: none given")
	}
	o.Endpoints = eps
	switch {
	case o.Conns < 1:
		return bad("--conns must be at least 1, got %d", o.Conns)
	case o.Clients < 1:
		return bad("--clients must be at least 1, got %d", o.Clients)
	case o.Total < 0:
		return bad("--total must not be negative, got %d", o.Total)
	case o.Duration < 0:
		return bad("--duration must not be negative, got %v", o.Duration)
	case o.Total == 0 && o.Duration == 0:
		return bad("one of --total or --duration must be set")
	case o.Rate < 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0):
		return bad("--rate must be a non-negative number, got %v", o.Rate)
	case o.KeySize < 1:
		return bad("--key-size must be at least 1, got %d", o.KeySize)
	case o.ValSize < 0:
		return bad("--val-size must not be negative, got %d", o.ValSize)
	case o.KeySpaceSize < 1:
		return bad("--key-space-size must be at least 1, got %d", o.KeySpaceSize)
	case o.RequestTimeout <= 0:
		return bad("--request-timeout must be positive, got %v", o.RequestTimeout)
	case o.DialTimeout <= 0:
		return bad("--dial-timeout must be positive, got %v", o.DialTimeout)
	}
	if d := len(strconv.FormatInt(o.KeySpaceSize-1, 10)); d > o.KeySize {
		return bad("--key-space-size %d needs keys of %d digits, more than --key-size %d", o.KeySpaceSize, d, o.KeySize)
	}
	if o.Consistency != "l" && o.Consistency != "s" {
		return bad("--consistency must be l or s, got %q", o.Consistency)
	}
	return nil
}

// keyFor returns key number i of the key space: i in decimal, zero-padded
// to KeySize bytes.
func (o *Options) keyFor(i int64) string {
	s := strconv.FormatInt(i, 10)
	if len(s) >= o.KeySize {
		return s
	}
	return strings.Repeat("0", o.KeySize-len(s)) + s
}

// keyIndex picks the key for operation n: sequential or uniformly random.
func (o *Options) keyIndex(n int64) int64 {
	if o.SequentialKeys {
		return n % o.KeySpaceSize
	}
	return rand.Int64N(o.KeySpaceSize)
}

// value returns a value of ValSize bytes.
func (o *Options) value() string {
	return strings.Repeat("v", o.ValSize)
}

// wantsCount reports whether operation n (0-based) is still within Total.
func (o *Options) wantsCount(n int64) bool {
	return o.Total == 0 || n < o.Total
}
