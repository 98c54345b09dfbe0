package bench

import (
	"context"
	"fmt"
	"math/rand/v2"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Put writes ValSize-byte values to keys of the key space, one Put per
// operation.
func Put(ctx context.Context, o Options) (*Result, error) {
	return runKV(ctx, o, "put", []string{"put"}, func(conns []*clientv3.Client) opFunc {
		val := o.value()
		return func(ctx context.Context, c int, n int64) (int, error) {
			_, err := conns[c%len(conns)].Put(ctx, o.keyFor(o.keyIndex(n)), val)
			return 0, err
		}
	})
}

// Range reads RangeKey (to RangeEnd when set) with the chosen consistency.
func Range(ctx context.Context, o Options) (*Result, error) {
	if o.RangeKey == "" {
		return nil, fmt.Errorf("%w: range needs a key", ErrBadOption)
	}
	return runKV(ctx, o, "range", []string{"range"}, func(conns []*clientv3.Client) opFunc {
		opts := o.readOpts()
		if o.RangeEnd != "" {
			opts = append(opts, clientv3.WithRange(o.RangeEnd))
		}
		if o.RangeLimit > 0 {
			opts = append(opts, clientv3.WithLimit(o.RangeLimit))
		}
		return func(ctx context.Context, c int, _ int64) (int, error) {
			_, err := conns[c%len(conns)].Get(ctx, o.RangeKey, opts...)
			return 0, err
		}
	})
}

// TxnPut commits txns of TxnOps puts each, on random (or sequential) keys.
func TxnPut(ctx context.Context, o Options) (*Result, error) {
	if o.TxnOps < 1 {
		return nil, fmt.Errorf("%w: --txn-ops must be at least 1, got %d", ErrBadOption, o.TxnOps)
	}
	if int64(o.TxnOps) > o.KeySpaceSize {
		// A txn may not put one key twice.
		return nil, fmt.Errorf("%w: --txn-ops %d exceeds --key-space-size %d (a txn puts distinct keys)", ErrBadOption, o.TxnOps, o.KeySpaceSize)
	}
	return runKV(ctx, o, "txn-put", []string{"txn-put"}, func(conns []*clientv3.Client) opFunc {
		val := o.value()
		return func(ctx context.Context, c int, n int64) (int, error) {
			// Consecutive keys from a random (or the next) start: distinct
			// within the txn.
			first := o.keyIndex(n * int64(o.TxnOps))
			ops := make([]clientv3.Op, o.TxnOps)
			for j := range ops {
				ops[j] = clientv3.OpPut(o.keyFor((first+int64(j))%o.KeySpaceSize), val)
			}
			_, err := conns[c%len(conns)].Txn(ctx).Then(ops...).Commit()
			return 0, err
		}
	})
}

// TxnMixed commits single-op txns that either read a range of up to
// RangeLimit keys from the start of the key space or put one key, reads
// and writes in the ratio RWRatio (etcd's txn-mixed).
func TxnMixed(ctx context.Context, o Options) (*Result, error) {
	if o.RWRatio < 0 {
		return nil, fmt.Errorf("%w: --rw-ratio must not be negative, got %v", ErrBadOption, o.RWRatio)
	}
	return runKV(ctx, o, "txn-mixed", []string{"read", "write"}, func(conns []*clientv3.Client) opFunc {
		val := o.value()
		readP := o.RWRatio / (1 + o.RWRatio)
		readOpts := append(o.readOpts(), clientv3.WithFromKey())
		if o.RangeLimit > 0 {
			readOpts = append(readOpts, clientv3.WithLimit(o.RangeLimit))
		}
		return func(ctx context.Context, c int, n int64) (int, error) {
			kind, op := 1, clientv3.OpPut(o.keyFor(o.keyIndex(n)), val)
			if rand.Float64() < readP {
				kind, op = 0, clientv3.OpGet(o.keyFor(0), readOpts...)
			}
			_, err := conns[c%len(conns)].Txn(ctx).Then(op).Commit()
			return kind, err
		}
	})
}

// Mixed issues Put, Get, Delete and Range (up to RangeLimit keys from a
// random key) on the key space, chosen at random by the weights PutRatio,
// GetRatio, DeleteRatio and RangeRatio.
func Mixed(ctx context.Context, o Options) (*Result, error) {
	weights := []float64{o.PutRatio, o.GetRatio, o.DeleteRatio, o.RangeRatio}
	var sum float64
	for _, w := range weights {
		if w < 0 {
			return nil, fmt.Errorf("%w: ratios must not be negative, got %v", ErrBadOption, weights)
		}
		sum += w
	}
	if sum == 0 {
		return nil, fmt.Errorf("%w: at least one of --put-ratio, --get-ratio, --delete-ratio, --range-ratio must be positive", ErrBadOption)
	}
	return runKV(ctx, o, "mixed", []string{"put", "get", "delete", "range"}, func(conns []*clientv3.Client) opFunc {
		val := o.value()
		getOpts := o.readOpts()
		rangeOpts := append(o.readOpts(), clientv3.WithFromKey())
		if o.RangeLimit > 0 {
			rangeOpts = append(rangeOpts, clientv3.WithLimit(o.RangeLimit))
		}
		return func(ctx context.Context, c int, n int64) (int, error) {
			kv := conns[c%len(conns)]
			key := o.keyFor(o.keyIndex(n))
			var err error
			kind := pickWeighted(weights, sum, rand.Float64())
			switch kind {
			case 0:
				_, err = kv.Put(ctx, key, val)
			case 1:
				_, err = kv.Get(ctx, key, getOpts...)
			case 2:
				_, err = kv.Delete(ctx, key)
			case 3:
				_, err = kv.Get(ctx, key, rangeOpts...)
			}
			return kind, err
		}
	})
}

// pickWeighted maps u in [0,1) to an index with probability weight/sum.
func pickWeighted(weights []float64, sum, u float64) int {
	x := u * sum
	last := 0
	for i, w := range weights {
		if w <= 0 {
			continue
		}
		last = i
		if x < w {
			return i
		}
		x -= w
	}
	return last // rounding at the top end
}

func (o *Options) readOpts() []clientv3.OpOption {
	if o.Consistency == "s" {
		return []clientv3.OpOption{clientv3.WithSerializable()}
	}
	return nil
}

// runKV validates, connects, runs the op built by mk and summarises.
func runKV(ctx context.Context, o Options, workload string, kinds []string, mk func([]*clientv3.Client) opFunc) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	conns, err := o.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	op := mk(conns)
	rec := newRecorder(kinds)
	elapsed := o.runOps(ctx, rec, workload, op)
	return rec.result(workload, &o, elapsed), nil
}
