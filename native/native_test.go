package native

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func testOptions() Options {
	return Options{
		BlockCacheBytes:       8 << 20,
		BloomBitsPerKey:       10,
		Compression:           CompressLZ4,
		BottommostCompression: CompressZSTD,
		BytesPerSync:          1 << 20,
		MaxBackgroundJobs:     2,
		WriteBufferBytes:      4 << 20,
		MaxWriteBufferNumber:  2,
	}
}

func openTest(t *testing.T, cfs ...string) *DB {
	t.Helper()
	db, err := Open(t.TempDir(), testOptions(), cfs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func TestVersion(t *testing.T) {
	if got := Version(); got != "7.8.3" {
		t.Fatalf("Version() = %q, want 7.8.3", got)
	}
}

func TestAppendRecordFormat(t *testing.T) {
	var buf []byte
	buf = AppendPut(buf, 2, []byte("k"), []byte("vv"))
	buf = AppendDelete(buf, 0, []byte{0})
	buf = AppendDeleteRange(buf, 255, []byte("a"), []byte("b"))
	want := []byte{
		OpPut, 2, 1, 0, 0, 0, 'k', 2, 0, 0, 0, 'v', 'v',
		OpDelete, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0,
		OpDeleteRange, 255, 1, 0, 0, 0, 'a', 1, 0, 0, 0, 'b',
	}
	if !bytes.Equal(buf, want) {
		t.Fatalf("encoded %v, want %v", buf, want)
	}
	if len(AppendPut(nil, 0, []byte("abc"), []byte("de"))) != RecordOverhead+5 {
		t.Fatal("RecordOverhead does not match the encoding")
	}
}

func TestWriteGetAcrossColumnFamilies(t *testing.T) {
	db := openTest(t, "one", "two")
	if got := fmt.Sprint(db.ColumnFamilies()); got != "[one two default]" {
		t.Fatalf("column families %s", got)
	}
	var buf []byte
	buf = AppendPut(buf, 0, []byte("k"), []byte("in one"))
	buf = AppendPut(buf, 1, []byte("k"), []byte("in two"))
	buf = AppendPut(buf, 2, []byte("k"), nil)
	if err := db.Write(buf, true); err != nil {
		t.Fatal(err)
	}
	scratch := make([]byte, 3)
	for cf, want := range []string{"in one", "in two", ""} {
		v, found, err := db.Get(cf, nil, []byte("k"), scratch)
		if err != nil || !found || string(v) != want {
			t.Fatalf("cf %d: Get = %q, %v, %v; want %q", cf, v, found, err, want)
		}
	}
	if _, found, err := db.Get(0, nil, []byte("missing"), scratch); found || err != nil {
		t.Fatalf("missing key: found=%v err=%v", found, err)
	}
}

func TestWriteMalformedBatchAppliesNothing(t *testing.T) {
	db := openTest(t, "one")
	good := AppendPut(nil, 0, []byte("a"), []byte("1"))
	tests := map[string][]byte{
		"truncated":     AppendPut(good, 0, []byte("b"), []byte("2"))[:len(good)+8],
		"bad op":        append(append([]byte(nil), good...), 9, 0, 0, 0, 0, 0, 0, 0, 0, 0),
		"bad cf":        AppendPut(good, 7, []byte("b"), []byte("2")),
		"short trailer": append(append([]byte(nil), good...), 1, 0),
	}
	for name, buf := range tests {
		err := db.Write(buf, false)
		var ne *Error
		if !errors.As(err, &ne) || ne.Code != CodeInvalidArgument {
			t.Fatalf("%s: err = %v, want an invalid-argument *Error", name, err)
		}
		if _, found, _ := db.Get(0, nil, []byte("a"), nil); found {
			t.Fatalf("%s: the valid first record was applied", name)
		}
	}
}

// TestApproximateSizeCountsMemtable checks approx.cc's view of the C API's
// handles: unflushed data is only visible through the C++ DB* it extracts.
func TestApproximateSizeCountsMemtable(t *testing.T) {
	db := openTest(t, "one", "two")
	var buf []byte
	for i := 0; i < 512; i++ {
		buf = AppendPut(buf, 1, []byte(fmt.Sprintf("key%04d", i)), bytes.Repeat([]byte{byte(i)}, 1000))
	}
	if err := db.Write(buf, false); err != nil {
		t.Fatal(err)
	}
	size, err := db.ApproximateSize(1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if size < 400<<10 || size > 1<<20 {
		t.Fatalf("memtable estimate %d, want about 512 KiB", size)
	}
	if other, _ := db.ApproximateSize(0, nil, nil); other != 0 {
		t.Fatalf("empty column family estimate %d, want 0", other)
	}
	if n, ok := db.PropertyInt(1, "rocksdb.num-entries-active-mem-table"); !ok || n != 512 {
		t.Fatalf("active memtable entries %d (%v), want 512", n, ok)
	}
}

func TestFillPagesAndNeed(t *testing.T) {
	db := openTest(t, "one")
	var buf []byte
	for i := 0; i < 10; i++ {
		buf = AppendPut(buf, 0, []byte{byte('a' + i), 0}, bytes.Repeat([]byte{'v'}, i*10))
	}
	if err := db.Write(buf, false); err != nil {
		t.Fatal(err)
	}
	it := db.NewIterator(0, nil, []byte("b"), []byte("j"), false)
	defer it.Close()

	t.Logf("Step 1: a 3-entry page")
	page := make([]byte, 4096)
	p, err := it.Fill(PosFirst, nil, page, 3)
	if err != nil || p.Status != PageMore || p.Count != 3 {
		t.Fatalf("first page %+v, %v", p, err)
	}
	off := 0
	for i := 1; i <= 3; i++ {
		var k, v []byte
		k, v, off = PageRecord(page, off)
		if string(k) != string([]byte{byte('a' + i), 0}) || len(v) != i*10 {
			t.Fatalf("record %d: %q=%d bytes", i, k, len(v))
		}
	}
	if off != p.Used {
		t.Fatalf("decoded %d bytes, page used %d", off, p.Used)
	}

	t.Logf("Step 2: a buffer too small for the next entry asks for more")
	small := make([]byte, 20)
	p, err = it.Fill(PosContinue, nil, small, 100)
	if err != nil || p.Status != PageNeed || p.Need != PageOverhead+2+40 || p.Count != 0 {
		t.Fatalf("small page %+v, %v", p, err)
	}
	p, err = it.Fill(PosContinue, nil, page, 100)
	if err != nil || p.Status != PageEnd || p.Count != 5 {
		t.Fatalf("last page %+v, %v", p, err)
	}
	if k, _, _ := PageRecord(page, 0); k[0] != 'e' {
		t.Fatalf("resumed at %q, want e", k)
	}

	t.Logf("Step 3: reverse seek beyond the upper bound clamps to it")
	rit := db.NewIterator(0, nil, []byte("b"), []byte("j"), true)
	defer rit.Close()
	p, err = rit.Fill(PosSeek, []byte("z"), page, 1)
	if k, _, _ := PageRecord(page, 0); err != nil || p.Count != 1 || k[0] != 'i' {
		t.Fatalf("reverse seek: %+v %v %q", p, err, k)
	}
}

func TestSnapshotReads(t *testing.T) {
	db := openTest(t, "one")
	if err := db.Write(AppendPut(nil, 0, []byte("k"), []byte("old")), false); err != nil {
		t.Fatal(err)
	}
	s := db.NewSnapshot()
	defer db.ReleaseSnapshot(s)
	if err := db.Write(AppendPut(nil, 0, []byte("k"), []byte("new")), false); err != nil {
		t.Fatal(err)
	}
	v, _, _ := db.Get(0, s, []byte("k"), make([]byte, 16))
	if string(v) != "old" {
		t.Fatalf("snapshot Get = %q", v)
	}
	it := db.NewIterator(0, s, nil, nil, false)
	defer it.Close()
	page := make([]byte, 64)
	if _, err := it.Fill(PosFirst, nil, page, 10); err != nil {
		t.Fatal(err)
	}
	if _, v, _ := PageRecord(page, 0); string(v) != "old" {
		t.Fatalf("snapshot iterator value %q", v)
	}
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		msg     string
		code    Code
		locked  bool
		noSpace bool
	}{
		{"Corruption: CURRENT file corrupted", CodeCorruption, false, false},
		{"IO error: While lock file: /d/LOCK: Resource temporarily unavailable", CodeIOError, true, false},
		{"IO error: lock hold by current process, acquire time 1 acquiring thread 2: /d/LOCK: No locks available", CodeIOError, true, false},
		{"IO error: No space left on device: While appending to file: /d/000001.log", CodeIOError, false, true},
		{"IO error: No such file or directory: While opening a file for sequentially reading: /d/MANIFEST-1", CodeIOError, false, false},
		{"Invalid argument: Column family not found: x", CodeInvalidArgument, false, false},
		{"something else", CodeUnknown, false, false},
	}
	for _, tt := range tests {
		e := newError(tt.msg)
		if e.Code != tt.code || e.Locked() != tt.locked || e.NoSpace() != tt.noSpace || e.Msg != tt.msg {
			t.Errorf("%q: code %d locked %v nospace %v", tt.msg, e.Code, e.Locked(), e.NoSpace())
		}
	}
	if e := newError("Corruption: a\nb"); e.Msg != "Corruption: a b" {
		t.Errorf("multi-line message kept as %q", e.Msg)
	}
}
