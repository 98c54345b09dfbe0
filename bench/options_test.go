package bench

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOptions_Validate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Options)
		wantErr string // "" means valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"endpoint list and scheme", func(o *Options) { o.Endpoints = []string{"http://a:1, b:2/", "c:3"} }, ""},
		{"endpoint without port", func(o *Options) { o.Endpoints = []string{"localhost"} }, `--endpoints: "localhost" is not host:port`},
		{"no endpoint", func(o *Options) { o.Endpoints = []string{" , "} }, "--endpoints: none given"},
		{"conns", func(o *Options) { o.Conns = 0 }, "--conns must be at least 1, got 0"},
		{"clients", func(o *Options) { o.Clients = -1 }, "--clients must be at least 1, got -1"},
		{"neither total nor duration", func(o *Options) { o.Total = 0 }, "one of --total or --duration must be set"},
		{"duration alone", func(o *Options) { o.Total, o.Duration = 0, time.Second }, ""},
		{"negative rate", func(o *Options) { o.Rate = -1 }, "--rate must be a non-negative number, got -1"},
		{"key size", func(o *Options) { o.KeySize = 0 }, "--key-size must be at least 1, got 0"},
		{"key space too big for key size", func(o *Options) { o.KeySize, o.KeySpaceSize = 3, 1001 }, "--key-space-size 1001 needs keys of 4 digits, more than --key-size 3"},
		{"key space exactly fits", func(o *Options) { o.KeySize, o.KeySpaceSize = 3, 1000 }, ""},
		{"consistency", func(o *Options) { o.Consistency = "x" }, `--consistency must be l or s, got "x"`},
		{"request timeout", func(o *Options) { o.RequestTimeout = 0 }, "--request-timeout must be positive, got 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOptions()
			tt.mod(&o)
			err := o.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrBadOption), "%v does not wrap ErrBadOption", err)
			require.Equal(t, "bench: bad option: "+tt.wantErr, err.Error())
		})
	}
}

func TestOptions_ValidateNormalisesEndpoints(t *testing.T) {
	o := DefaultOptions()
	o.Endpoints = []string{"http://a:1, b:2/", "c:3"}
	require.NoError(t, o.Validate())
	require.Equal(t, []string{"a:1", "b:2", "c:3"}, o.Endpoints)
}

func TestOptions_Keys(t *testing.T) {
	o := DefaultOptions()
	o.KeySize, o.KeySpaceSize, o.SequentialKeys = 8, 5, true
	require.Equal(t, "00000042", o.keyFor(42))
	require.Equal(t, "12345678", o.keyFor(12345678))
	var got []int64
	for n := int64(0); n < 7; n++ {
		got = append(got, o.keyIndex(n))
	}
	require.Equal(t, []int64{0, 1, 2, 3, 4, 0, 1}, got)

	o.SequentialKeys = false
	seen := map[int64]bool{}
	for n := int64(0); n < 1000; n++ {
		k := o.keyIndex(n)
		require.True(t, k >= 0 && k < 5, "key index %d outside the key space", k)
		seen[k] = true
	}
	require.Len(t, seen, 5, "1000 random picks from 5 keys should hit every key")
	require.Len(t, o.value(), 8)
}

func TestPickWeighted(t *testing.T) {
	weights := []float64{50, 0, 30, 20}
	tests := []struct {
		u    float64
		want int
	}{
		{0, 0}, {0.499, 0}, {0.5, 2}, {0.799, 2}, {0.8, 3}, {0.9999, 3},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, pickWeighted(weights, 100, tt.u), "u=%v", tt.u)
	}
	// The shares come out as the weights say (within 2 points on 100k).
	r := rand.New(rand.NewPCG(1, 2))
	counts := make([]int, len(weights))
	for i := 0; i < 100000; i++ {
		counts[pickWeighted(weights, 100, r.Float64())]++
	}
	require.Zero(t, counts[1], "a zero weight is never picked")
	require.InDelta(t, 50000, counts[0], 2000)
	require.InDelta(t, 30000, counts[2], 2000)
	require.InDelta(t, 20000, counts[3], 2000)
}
