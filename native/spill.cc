// spill.cc: the C memory a large write batch moves to while it is built.
//
// A batch is built in Go memory (batch.go). One that grows past a megabyte
// (a DeleteRange over many keys, a large txn, a snapshot restore) moves what
// it has so far here, a megabyte at a time, so that the Go heap never holds
// it whole: Go's growing slice would copy it at every doubling and the
// garbage collector would let the heap grow to several times its size. At
// the write the bytes are moved, not copied, into RocksDB's WriteBatch
// (WriteBatch(std::string&&) is public C++ API); the C API has only
// rocksdb_writebatch_create_from, which copies. The definition of
// rocksdb_writebatch_t below is copied from RocksDB 7.8.3's db/c.cc (line
// 209): a struct whose only member is the C++ WriteBatch, as approx.cc does
// for rocksdb_t. spill_test.go (TestWriteBatchSpillsToC) checks it end to
// end.
#include <rocksdb/c.h>
#include <rocksdb/write_batch.h>

#include <string>
#include <utility>
#include <vector>

struct rocksdb_writebatch_t {
  rocksdb::WriteBatch rep;
};

// A spill is the chunks moved so far (each about a megabyte, so that no
// growing buffer is copied while the batch is built) and, once the bytes
// are asked for, the whole batch in one string, reserved at its final size
// and filled chunk by chunk, each freed as soon as it is copied: the batch
// is held about once, never three times as a doubling string would at its
// last growth.
struct ms_spill {
  std::vector<std::string> chunks;
  std::string whole;
};

extern "C" {

ms_spill* ms_spill_new(void) { return new ms_spill(); }

void ms_spill_free(ms_spill* s) { delete s; }

void ms_spill_append(ms_spill* s, const char* p, size_t n) {
  if (n > 0) s->chunks.emplace_back(p, n);
}

char* ms_spill_data(ms_spill* s, size_t* len) {
  if (!s->chunks.empty()) {
    size_t total = s->whole.size();
    for (const std::string& c : s->chunks) total += c.size();
    s->whole.reserve(total);
    for (std::string& c : s->chunks) {
      s->whole.append(c);
      std::string().swap(c);
    }
    s->chunks.clear();
  }
  *len = s->whole.size();
  return &s->whole[0];
}

// ms_spill_take moves the bytes (ms_spill_data first) into a new write
// batch; s is left empty.
rocksdb_writebatch_t* ms_spill_take(ms_spill* s) {
  size_t len;
  ms_spill_data(s, &len);
  return new rocksdb_writebatch_t{rocksdb::WriteBatch(std::move(s->whole))};
}

}  // extern "C"
