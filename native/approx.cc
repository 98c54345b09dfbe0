// approx.cc: the one place the shim goes around RocksDB's C API.
//
// rocksdb_approximate_sizes_cf (C API, 7.8.3) counts SST files only, so data
// still in memtables, which for a metadata store is often all of it, would
// be reported as 0 bytes. DB::GetApproximateSizes with include_memtables
// counts both. To call it we need the DB* and ColumnFamilyHandle* inside the
// C API's handles. Their definitions below are copied from RocksDB 7.8.3's
// db/c.cc (lines 133 and 186): each is a struct whose only member is the C++
// pointer, a layout that has not changed since the C API was written.
// native_test.go (TestApproximateSizeCountsMemtable) checks it end to end.
#include <rocksdb/c.h>
#include <rocksdb/db.h>

#include <stdlib.h>
#include <string.h>

#include <string>

struct rocksdb_t {
  rocksdb::DB* rep;
};
struct rocksdb_column_family_handle_t {
  rocksdb::ColumnFamilyHandle* rep;
};

extern "C" char* ms_approx_sizes_with_memtables(rocksdb_t* db, rocksdb_column_family_handle_t* cf,
                                                const char* start, size_t start_len,
                                                const char* limit, size_t limit_len,
                                                uint64_t* size) {
  rocksdb::SizeApproximationOptions o;
  o.include_memtables = true;
  o.include_files = true;
  rocksdb::Range r(rocksdb::Slice(start, start_len), rocksdb::Slice(limit, limit_len));
  *size = 0;
  rocksdb::Status s = db->rep->GetApproximateSizes(o, cf->rep, &r, 1, size);
  if (s.ok()) return nullptr;
  std::string m = s.ToString();
  char* e = static_cast<char*>(malloc(m.size() + 1));
  if (e != nullptr) memcpy(e, m.c_str(), m.size() + 1);
  return e;
}
