package mvcc

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// keyCorpus returns user keys that stress the data key encoding: every key
// of up to 4 bytes over {0x00, 0x01, 'a', 0xFF}, and keys with zero runs
// around the short and long forms' limits, inside and at the end.
func keyCorpus() [][]byte {
	alphabet := []byte{0x00, 0x01, 'a', 0xFF}
	keys := [][]byte{{}}
	level := [][]byte{{}}
	for n := 1; n <= 4; n++ {
		var next [][]byte
		for _, k := range level {
			for _, c := range alphabet {
				next = append(next, append(bytes.Clone(k), c))
			}
		}
		keys = append(keys, next...)
		level = next
	}
	zeros := func(n int) []byte { return make([]byte, n) }
	for _, n := range []int{13, 14, 15, 16, 237, 238, 239, 240, 300, 70000} {
		keys = append(keys,
			zeros(n),
			append([]byte("a"), zeros(n)...),
			append(append([]byte("a"), zeros(n)...), 'b'),
			append(append([]byte("a"), zeros(n)...), 0x01),
			append(append(zeros(n), 0xFF), zeros(n)...),
		)
	}
	return keys
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// checkKeyPair checks the encoding's promises on two user keys: order kept
// (versions of one key newest first), no encoded key a prefix of another's,
// skipKey between a key's versions and the next key, and the format 1 forms.
func checkKeyPair(t testing.TB, a, b []byte, ra, rb int64) {
	pa, pb := appendEscaped(nil, a), appendEscaped(nil, b)
	da, db := dataKey(nil, a, ra), dataKey(nil, b, rb)
	want := sign(bytes.Compare(a, b))
	if want == 0 {
		want = sign(int(rb - ra)) // newest first
	}
	if got := sign(bytes.Compare(da, db)); got != want {
		t.Fatalf("order of %x@%d and %x@%d: encoded %x and %x compare %d, want %d", a, ra, b, rb, da, db, got, want)
	}
	if !bytes.Equal(a, b) && (bytes.HasPrefix(pb, pa) || bytes.HasPrefix(pa, pb)) {
		t.Fatalf("encoded %x (%x) and %x (%x): one is a prefix of the other", a, pa, b, pb)
	}
	skip := skipKey(nil, pa)
	if bytes.Compare(da, skip) >= 0 {
		t.Fatalf("skipKey(%x) = %x is not past version %x", a, skip, da)
	}
	if bytes.Compare(a, b) < 0 && bytes.Compare(skip, db) > 0 {
		t.Fatalf("skipKey(%x) = %x is past %x's version %x", a, skip, b, db)
	}
	got, err := unescape(pa)
	if err != nil || !bytes.Equal(got, a) {
		t.Fatalf("unescape(%x) = %x, %v; want %x", pa, got, err, a)
	}
	v1, err := appendPrefixV1(nil, pa)
	if err != nil || !bytes.Equal(v1, appendEscapedV1(nil, a)) {
		t.Fatalf("format 1 form of %x: %x, %v; want %x", a, v1, err, appendEscapedV1(nil, a))
	}
	back, err := appendUnescapedV1(nil, v1)
	if err != nil || !bytes.Equal(back, a) {
		t.Fatalf("format 1 %x decodes to %x, %v; want %x", v1, back, err, a)
	}
}

// TestKeyEncoding_KeepsOrder: for every pair of keys of the corpus, the data
// keys sort as the user keys do, no encoded key is a prefix of another's,
// skipKey lands between a key's versions and the next key, every key
// decodes to itself, and the format 1 forms (snapshot streams, hashes) are
// those format 1 wrote.
func TestKeyEncoding_KeepsOrder(t *testing.T) {
	t.Logf("Step 1: preparing the corpus of keys...")
	keys := keyCorpus()
	rng := rand.New(rand.NewSource(1))

	t.Logf("Step 2: comparing %d keys pairwise...", len(keys))
	for _, a := range keys {
		for _, b := range keys {
			checkKeyPair(t, a, b, 1+rng.Int63n(1<<40), 1+rng.Int63n(1<<40))
		}
	}

	t.Logf("Step 3: checking range bounds against the user keys...")
	for i := 0; i < 2000; i++ {
		key, end := keys[rng.Intn(len(keys))], keys[rng.Intn(len(keys))]
		lower, upper := keyBounds(key, end)
		for _, k := range keys {
			dk := dataKey(nil, k, 1+rng.Int63n(1<<40))
			in := bytes.Compare(dk, lower) >= 0 && (upper == nil || bytes.Compare(dk, upper) < 0)
			var want bool
			switch {
			case len(end) == 0:
				want = bytes.Equal(k, key)
			case len(end) == 1 && end[0] == 0:
				want = bytes.Compare(k, key) >= 0
			default:
				want = bytes.Compare(k, key) >= 0 && bytes.Compare(k, end) < 0
			}
			require.Equal(t, want, in, "key %x in [%x, %x)", k, key, end)
		}
	}
}

// TestKeyEncoding_ZeroRunsTakeTheirSize: a key of mostly zero bytes, as
// etcdctl check perf and etcd's benchmark write, is stored at about its own
// size; format 1 took twice as much.
func TestKeyEncoding_ZeroRunsTakeTheirSize(t *testing.T) {
	t.Logf("Step 1: building a check perf key (an 8-byte number in 256 bytes)...")
	k := make([]byte, 256)
	binary.PutVarint(k, 6_210_336_715_040_129_113)
	key := append([]byte("/etcdctl-check-perf/"), k...)

	t.Logf("Step 2: encoding it in both formats...")
	v2, v1 := appendEscaped(nil, key), appendEscapedV1(nil, key)
	t.Logf("user key %d bytes, format 2 %d bytes, format 1 %d bytes", len(key), len(v2), len(v1))

	t.Logf("Step 3: verifying the sizes...")
	nonZero := len(bytes.TrimRight(key, "\x00"))
	require.Equal(t, nonZero+6, len(v2), "the trailing zeros: 0x00, their code and 4 count bytes")
	require.Equal(t, len(key)+(len(key)-nonZero)+2, len(v1), "format 1: every zero twice, and the terminator")
	got, err := unescape(v2)
	require.NoError(t, err)
	require.Equal(t, key, got)
}

// TestKeyEncoding_RejectsMalformed: an encoded key that enc could not have
// written is reported as a corrupt record, never decoded to some key.
func TestKeyEncoding_RejectsMalformed(t *testing.T) {
	long := func(code byte, n uint32) string {
		return string(binary.BigEndian.AppendUint32([]byte{0, code}, n))
	}
	cases := map[string]string{
		"no terminator":             "a",
		"truncated escape":          "a\x00",
		"code zero":                 "\x00\x00",
		"terminator inside":         "\x00\x01a\x00\x01",
		"run not followed":          "a\x00\xFF",
		"run followed by a zero":    "a\x00\xFF\x00\x01",
		"tail then more":            "\x00\x02a\x00\x01",
		"short tail in long form":   long(codeTailLong, 14),
		"short run in long form":    long(codeRunLong, ^uint32(238)) + "a\x00\x01",
		"truncated long run":        "\x00\x10\x00\x00",
		"long run then zero":        long(codeRunLong, ^uint32(300)) + "\x00\x01",
		"long tail then more":       long(codeTailLong, 300) + "a",
		"format 1 trailing zero":    "a\x00\xFF\x00\x01",
		"format 1 two zeros inside": "a\x00\xFF\x00\xFFb\x00\x01",
	}
	for name, enc := range cases {
		t.Logf("Step: decoding %s (%x)...", name, enc)
		_, err := unescape([]byte(enc))
		require.ErrorIs(t, err, ErrCorruptRecord, name)
	}
	t.Logf("Step: decoding their format 1 forms fails the same way for format 2 codes...")
	_, err := appendUnescapedV1(nil, []byte("a\x00\x02"))
	require.ErrorIs(t, err, ErrCorruptRecord)
	require.True(t, strings.HasPrefix(string(appendEscapedV1(nil, []byte("a\x00"))), "a\x00\xFF"))
}

// FuzzKeyEncoding checks checkKeyPair's promises on any two keys.
func FuzzKeyEncoding(f *testing.F) {
	for _, k := range keyCorpus()[:60] {
		f.Add(k, []byte("a\x00\x00"), int64(1), int64(2))
	}
	f.Add(make([]byte, 300), make([]byte, 301), int64(5), int64(5))
	f.Fuzz(func(t *testing.T, a, b []byte, ra, rb int64) {
		if ra <= 0 || rb <= 0 {
			return
		}
		checkKeyPair(t, a, b, ra, rb)
	})
}
