// shim.c: see shim.h. Everything here runs inside a single cgo call; nothing
// keeps a pointer into Go memory after it returns.
#include "shim.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static char* ms_strdup(const char* s) {
  size_t n = strlen(s) + 1;
  char* p = malloc(n);
  if (p != NULL) memcpy(p, s, n);
  return p;
}

static int ms_rocks_compression(int c) {
  switch (c) {
    case MS_COMPRESS_LZ4:
      return rocksdb_lz4_compression;
    case MS_COMPRESS_ZSTD:
      return rocksdb_zstd_compression;
  }
  return rocksdb_no_compression;
}

static void ms_free_db(ms_db* d) {
  if (d->cfs != NULL) {
    for (int i = 0; i < d->ncf; i++) {
      if (d->cfs[i] != NULL) rocksdb_column_family_handle_destroy(d->cfs[i]);
    }
    free(d->cfs);
  }
  free(d->cf_ids);
  if (d->db != NULL) rocksdb_close(d->db);
  if (d->co != NULL) rocksdb_compactoptions_destroy(d->co);
  if (d->ro != NULL) rocksdb_readoptions_destroy(d->ro);
  if (d->wo_sync != NULL) rocksdb_writeoptions_destroy(d->wo_sync);
  if (d->wo_nosync != NULL) rocksdb_writeoptions_destroy(d->wo_nosync);
  if (d->opts != NULL) rocksdb_options_destroy(d->opts);
  if (d->prefix_opts != NULL) rocksdb_options_destroy(d->prefix_opts);
  if (d->cache != NULL) rocksdb_cache_destroy(d->cache);
  free(d);
}

// The prefix extractor of prefix_cf: a key without its last N bytes (N is
// the state). Keys shorter than that are outside its domain.
static char* ms_strip_transform(void* state, const char* key, size_t len, size_t* dst_len) {
  *dst_len = len - (size_t)(uintptr_t)state;
  return (char*)key;
}
static unsigned char ms_strip_in_domain(void* state, const char* key, size_t len) {
  (void)key;
  return len > (size_t)(uintptr_t)state;
}
static unsigned char ms_strip_in_range(void* state, const char* key, size_t len) {
  (void)state;
  (void)key;
  (void)len;
  return 0;
}
static const char* ms_strip_name(void* state) {
  (void)state;
  // The name is stored with the SST files: filters built under another
  // name are ignored, never misread. The suffix length is part of it.
  return "metastore.StripSuffix.8";
}
static void ms_strip_destroy(void* state) { (void)state; }

ms_open_result ms_open(const char* dir, const ms_config* cfg, const char* const* names, int n) {
  ms_open_result r = {NULL, NULL};
  ms_db* d = calloc(1, sizeof(ms_db));
  if (d == NULL) {
    r.err = ms_strdup("out of memory");
    return r;
  }

  rocksdb_options_t* o = rocksdb_options_create();
  d->opts = o;
  rocksdb_options_set_create_if_missing(o, 1);
  rocksdb_options_set_create_missing_column_families(o, 1);
  rocksdb_options_set_max_background_jobs(o, cfg->max_background_jobs);
  rocksdb_options_set_bytes_per_sync(o, cfg->bytes_per_sync);
  rocksdb_options_set_wal_bytes_per_sync(o, cfg->bytes_per_sync);
  rocksdb_options_set_write_buffer_size(o, (size_t)cfg->write_buffer_bytes);
  rocksdb_options_set_max_write_buffer_number(o, cfg->max_write_buffer_number);
  rocksdb_options_set_max_total_wal_size(o, cfg->max_total_wal_bytes);
  // One memtable budget for all column families: past it RocksDB flushes
  // the largest memtable, so four busy column families cannot each hold
  // max_write_buffer_number full memtables at once.
  if (cfg->db_write_buffer_bytes > 0)
    rocksdb_options_set_db_write_buffer_size(o, (size_t)cfg->db_write_buffer_bytes);
  if (cfg->arena_block_bytes > 0)
    rocksdb_options_set_arena_block_size(o, (size_t)cfg->arena_block_bytes);
  rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
  rocksdb_options_set_compression(o, ms_rocks_compression(cfg->compression));
  rocksdb_options_set_bottommost_compression(o, ms_rocks_compression(cfg->bottommost_compression));
  // Keep the info LOG bounded: a long-running member must not fill the disk
  // with RocksDB's own diagnostics.
  rocksdb_options_set_max_log_file_size(o, 16 << 20);
  rocksdb_options_set_keep_log_file_num(o, 5);

  rocksdb_block_based_table_options_t* t = rocksdb_block_based_options_create();
  d->cache = rocksdb_cache_create_lru((size_t)cfg->block_cache_bytes);
  rocksdb_block_based_options_set_block_cache(t, d->cache);
  if (cfg->bloom_bits_per_key > 0) {
    // The table options take ownership of the policy.
    rocksdb_block_based_options_set_filter_policy(
        t, rocksdb_filterpolicy_create_bloom_full((double)cfg->bloom_bits_per_key));
  }
  rocksdb_block_based_options_set_format_version(t, 5);
  rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
  rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(t, 1);
  rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(t, 1);
  // Partitioned index and filters (kTwoLevelIndexSearch): a file's index
  // and filter are cut into 4 KiB partitions under a small top level that
  // stays pinned, so a lookup brings one partition into the block cache,
  // not the whole filter of the file (about 1 MiB per million keys). With
  // whole filters a 64 MiB cache halved etcdctl check perf (3,100 against
  // 5,200 writes/s): data blocks evicted the filters and every lookup read
  // them back. Partitioned, 64 MiB serves it as fast as 256 MiB did.
  rocksdb_block_based_options_set_index_type(t, 2);
  rocksdb_block_based_options_set_partition_filters(t, 1);
  rocksdb_block_based_options_set_metadata_block_size(t, 4096);
  rocksdb_block_based_options_set_pin_top_level_index_and_filter(t, 1);
  // The factory copies the table options; every column family shares them,
  // and with them the one block cache.
  rocksdb_options_set_block_based_table_factory(o, t);
  rocksdb_block_based_options_destroy(t);

  d->wo_sync = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(d->wo_sync, cfg->disable_fsync ? 0 : 1);
  d->wo_nosync = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(d->wo_nosync, 0);
  d->ro = rocksdb_readoptions_create();
  // Every iterator is total-order unless it asks for prefix mode.
  rocksdb_readoptions_set_total_order_seek(d->ro, 1);
  d->co = rocksdb_compactoptions_create();
  rocksdb_compactoptions_set_exclusive_manual_compaction(d->co, 0);
  // kForceOptimized: rewrite the bottommost level too, so deleted keys
  // really give their space back.
  rocksdb_compactoptions_set_bottommost_level_compaction(d->co, 3);

  d->ncf = n;
  d->cfs = calloc((size_t)n, sizeof(rocksdb_column_family_handle_t*));
  const rocksdb_options_t** cfopts = calloc((size_t)n, sizeof(rocksdb_options_t*));
  if (d->cfs == NULL || cfopts == NULL) {
    free(cfopts);
    ms_free_db(d);
    r.err = ms_strdup("out of memory");
    return r;
  }
  for (int i = 0; i < n; i++) cfopts[i] = o;
  if (cfg->prefix_cf >= 0 && cfg->prefix_cf < n && cfg->prefix_suffix_len == 8) {
    // Options are copied with the table factory (and so share the block
    // cache); the options take ownership of the transform.
    d->prefix_opts = rocksdb_options_create_copy(o);
    rocksdb_options_set_prefix_extractor(
        d->prefix_opts,
        rocksdb_slicetransform_create((void*)(uintptr_t)cfg->prefix_suffix_len, ms_strip_destroy,
                                      ms_strip_transform, ms_strip_in_domain, ms_strip_in_range,
                                      ms_strip_name));
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(d->prefix_opts, 0.1);
    cfopts[cfg->prefix_cf] = d->prefix_opts;
  }

  char* err = NULL;
  d->db = rocksdb_open_column_families(o, dir, n, names, cfopts, d->cfs, &err);
  free(cfopts);
  if (err != NULL) {
    d->db = NULL;
    for (int i = 0; i < n; i++) d->cfs[i] = NULL;
    ms_free_db(d);
    r.err = err;
    return r;
  }
  d->cf_ids = calloc((size_t)n, sizeof(uint32_t));
  if (d->cf_ids == NULL) {
    ms_free_db(d);
    r.err = ms_strdup("out of memory");
    return r;
  }
  for (int i = 0; i < n; i++) d->cf_ids[i] = rocksdb_column_family_handle_get_id(d->cfs[i]);
  r.db = d;
  return r;
}

void ms_close(ms_db* d) { ms_free_db(d); }

char* ms_list_cfs(const char* dir, int* n, size_t* len, char** err) {
  rocksdb_options_t* o = rocksdb_options_create();
  size_t cnt = 0;
  char** list = rocksdb_list_column_families(o, dir, &cnt, err);
  rocksdb_options_destroy(o);
  if (*err != NULL) return NULL;
  size_t total = 0;
  for (size_t i = 0; i < cnt; i++) total += strlen(list[i]) + 1;
  char* out = malloc(total + 1);
  size_t off = 0;
  if (out != NULL) {
    for (size_t i = 0; i < cnt; i++) {
      size_t l = strlen(list[i]) + 1;
      memcpy(out + off, list[i], l);
      off += l;
    }
  }
  rocksdb_list_column_families_destroy(list, cnt);
  if (out == NULL) {
    *err = ms_strdup("out of memory");
    return NULL;
  }
  *n = (int)cnt;
  *len = off;
  return out;
}

static uint32_t ms_u32(const char* p) {
  const unsigned char* u = (const unsigned char*)p;
  return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static void ms_put_u32(char* p, uint32_t v) {
  unsigned char* u = (unsigned char*)p;
  u[0] = (unsigned char)v;
  u[1] = (unsigned char)(v >> 8);
  u[2] = (unsigned char)(v >> 16);
  u[3] = (unsigned char)(v >> 24);
}

// ms_varint32 decodes a LEB128 varint32 at *p (bounded by end).
static int ms_varint32(const char** p, const char* end, uint32_t* v) {
  uint32_t r = 0;
  for (int shift = 0; shift <= 28 && *p < end; shift += 7) {
    uint32_t byte = (unsigned char)**p;
    (*p)++;
    r |= (byte & 127) << shift;
    if (byte < 128) {
      *v = r;
      return 0;
    }
  }
  return -1;
}

static int ms_skip_string(const char** p, const char* end) {
  uint32_t n;
  if (ms_varint32(p, end, &n) != 0 || (size_t)(end - *p) < n) return -1;
  *p += n;
  return 0;
}

static int ms_known_cf(ms_db* d, uint32_t id) {
  for (int i = 0; i < d->ncf; i++)
    if (d->cf_ids[i] == id) return 1;
  return 0;
}

// ms_check_batch walks a WriteBatch encoding (see batch.go) and returns 0 if
// every record is a put, delete or delete-range to an open column family
// and their number matches the header. RocksDB would only notice a bad
// record after appending it to the WAL, so nothing malformed may reach it.
static int ms_check_batch(ms_db* d, const char* buf, size_t len) {
  if (len < 12) return -1;
  uint32_t count = ms_u32(buf + 8), found = 0;
  const char* p = buf + 12;
  const char* end = buf + len;
  while (p < end) {
    int tag = (unsigned char)*p++;
    uint32_t cf = 0;
    int strings;
    switch (tag) {
      case 0x05:  // put to a column family
      case 0x0E:  // delete-range in a column family
        if (ms_varint32(&p, end, &cf) != 0 || !ms_known_cf(d, cf)) return -1;
        strings = 2;
        break;
      case 0x04:  // delete from a column family
        if (ms_varint32(&p, end, &cf) != 0 || !ms_known_cf(d, cf)) return -1;
        strings = 1;
        break;
      case 0x01:  // put, default column family
      case 0x0F:  // delete-range, default column family
        strings = 2;
        break;
      case 0x00:  // delete, default column family
        strings = 1;
        break;
      default:
        return -1;
    }
    for (int i = 0; i < strings; i++)
      if (ms_skip_string(&p, end) != 0) return -1;
    found++;
  }
  return found == count ? 0 : -1;
}

static const char* ms_bad_batch = "Invalid argument: malformed write batch";

char* ms_write(ms_db* d, const char* buf, size_t len, int sync) {
  if (ms_check_batch(d, buf, len) != 0) return ms_strdup(ms_bad_batch);
  rocksdb_writebatch_t* wb = rocksdb_writebatch_create_from(buf, len);
  char* err = NULL;
  rocksdb_write(d->db, sync ? d->wo_sync : d->wo_nosync, wb, &err);
  rocksdb_writebatch_destroy(wb);
  return err;
}

char* ms_write_spilled(ms_db* d, ms_spill* s, const char* tail, size_t tail_len, uint32_t count,
                       int sync) {
  ms_spill_append(s, tail, tail_len);
  size_t len = 0;
  char* buf = ms_spill_data(s, &len);
  if (len < 12) return ms_strdup(ms_bad_batch);
  for (int i = 0; i < 4; i++) buf[8 + i] = (char)((count >> (8 * i)) & 0xff);
  if (ms_check_batch(d, buf, len) != 0) return ms_strdup(ms_bad_batch);
  rocksdb_writebatch_t* wb = ms_spill_take(s);
  char* err = NULL;
  rocksdb_write(d->db, sync ? d->wo_sync : d->wo_nosync, wb, &err);
  rocksdb_writebatch_destroy(wb);
  return err;
}

int ms_build_batch(ms_db* d, const char* buf, size_t len) {
  if (ms_check_batch(d, buf, len) != 0) return -1;
  rocksdb_writebatch_t* wb = rocksdb_writebatch_create_from(buf, len);
  int n = rocksdb_writebatch_count(wb);
  rocksdb_writebatch_destroy(wb);
  return n;
}

ms_get_result ms_get(ms_db* d, int cf, const rocksdb_readoptions_t* ro, const char* key,
                     size_t klen, char* buf, size_t cap) {
  ms_get_result r = {MS_GET_NOT_FOUND, 0, NULL, NULL};
  char* err = NULL;
  rocksdb_pinnableslice_t* p =
      rocksdb_get_pinned_cf(d->db, ro != NULL ? ro : d->ro, d->cfs[cf], key, klen, &err);
  if (err != NULL) {
    r.status = MS_GET_ERROR;
    r.err = err;
    return r;
  }
  if (p == NULL) return r;
  size_t vlen = 0;
  const char* v = rocksdb_pinnableslice_value(p, &vlen);
  r.len = vlen;
  if (vlen <= cap) {
    if (vlen > 0) memcpy(buf, v, vlen);
    rocksdb_pinnableslice_destroy(p);
    r.status = MS_GET_FOUND;
    return r;
  }
  r.status = MS_GET_TOO_BIG;
  r.pinned = p;
  return r;
}

void ms_pinned_copy(rocksdb_pinnableslice_t* p, char* buf) {
  size_t vlen = 0;
  const char* v = rocksdb_pinnableslice_value(p, &vlen);
  if (vlen > 0) memcpy(buf, v, vlen);
  rocksdb_pinnableslice_destroy(p);
}

ms_snap* ms_snap_new(ms_db* d) {
  ms_snap* s = malloc(sizeof(ms_snap));
  if (s == NULL) return NULL;
  s->snap = rocksdb_create_snapshot(d->db);
  s->ro = rocksdb_readoptions_create();
  rocksdb_readoptions_set_snapshot(s->ro, s->snap);
  return s;
}

void ms_snap_free(ms_db* d, ms_snap* s) {
  rocksdb_readoptions_destroy(s->ro);
  rocksdb_release_snapshot(d->db, s->snap);
  free(s);
}

static char* ms_copy(const char* p, size_t n) {
  char* c = malloc(n > 0 ? n : 1);
  if (c != NULL && n > 0) memcpy(c, p, n);
  return c;
}

ms_iter* ms_iter_new(ms_db* d, int cf, ms_snap* snap, const char* lower, size_t lower_len,
                     int has_lower, const char* upper, size_t upper_len, int has_upper,
                     int reverse, int prefix_mode) {
  ms_iter* it = calloc(1, sizeof(ms_iter));
  if (it == NULL) return NULL;
  it->reverse = reverse;
  it->ro = rocksdb_readoptions_create();
  if (prefix_mode)
    rocksdb_readoptions_set_prefix_same_as_start(it->ro, 1);
  else
    rocksdb_readoptions_set_total_order_seek(it->ro, 1);
  if (snap != NULL) rocksdb_readoptions_set_snapshot(it->ro, snap->snap);
  // NB: the read options keep a Slice pointing at the bound bytes, not a
  // copy, so the bounds live in this object until ms_iter_free.
  if (has_lower) {
    it->lower = ms_copy(lower, lower_len);
    it->lower_len = lower_len;
    rocksdb_readoptions_set_iterate_lower_bound(it->ro, it->lower, lower_len);
  }
  if (has_upper) {
    it->upper = ms_copy(upper, upper_len);
    it->upper_len = upper_len;
    rocksdb_readoptions_set_iterate_upper_bound(it->ro, it->upper, upper_len);
  }
  it->it = rocksdb_create_iterator_cf(d->db, it->ro, d->cfs[cf]);
  return it;
}

void ms_iter_free(ms_iter* it) {
  rocksdb_iter_destroy(it->it);
  rocksdb_readoptions_destroy(it->ro);
  free(it->lower);
  free(it->upper);
  free(it);
}

// ms_cmp compares byte strings the way RocksDB's default comparator does.
static int ms_cmp(const char* a, size_t alen, const char* b, size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int c = n > 0 ? memcmp(a, b, n) : 0;
  if (c != 0) return c;
  return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

static void ms_iter_position(ms_iter* it, int pos, const char* key, size_t klen) {
  rocksdb_iterator_t* i = it->it;
  if (pos == MS_POS_FIRST) {
    if (it->reverse)
      rocksdb_iter_seek_to_last(i);
    else
      rocksdb_iter_seek_to_first(i);
    return;
  }
  // Clamp seeks that start outside the bounds, so the result never depends
  // on how RocksDB treats an out-of-range target.
  if (it->reverse) {
    if (it->upper != NULL && ms_cmp(key, klen, it->upper, it->upper_len) >= 0)
      rocksdb_iter_seek_to_last(i);
    else
      rocksdb_iter_seek_for_prev(i, key, klen);
  } else {
    if (it->lower != NULL && ms_cmp(key, klen, it->lower, it->lower_len) < 0)
      rocksdb_iter_seek(i, it->lower, it->lower_len);
    else
      rocksdb_iter_seek(i, key, klen);
  }
}

ms_page ms_iter_fill(ms_iter* it, int pos, const char* key, size_t klen, char* buf, size_t cap,
                     int max) {
  ms_page r = {MS_PAGE_MORE, 0, 0, 0, NULL};
  rocksdb_iterator_t* i = it->it;
  if (pos != MS_POS_CONTINUE) ms_iter_position(it, pos, key, klen);
  while (r.count < max && rocksdb_iter_valid(i)) {
    size_t kl = 0, vl = 0;
    const char* k = rocksdb_iter_key(i, &kl);
    const char* v = rocksdb_iter_value(i, &vl);
    size_t need = 8 + kl + vl;
    if (cap - r.used < need) {
      if (r.count == 0) {
        r.status = MS_PAGE_NEED;
        r.need = need;
      }
      return r;
    }
    char* p = buf + r.used;
    ms_put_u32(p, (uint32_t)kl);
    if (kl > 0) memcpy(p + 4, k, kl);
    ms_put_u32(p + 4 + kl, (uint32_t)vl);
    if (vl > 0) memcpy(p + 8 + kl, v, vl);
    r.used += need;
    r.count++;
    if (it->reverse)
      rocksdb_iter_prev(i);
    else
      rocksdb_iter_next(i);
  }
  if (!rocksdb_iter_valid(i)) {
    char* err = NULL;
    rocksdb_iter_get_error(i, &err);
    if (err != NULL) {
      r.status = MS_PAGE_ERROR;
      r.err = err;
      return r;
    }
    r.status = MS_PAGE_END;
  }
  return r;
}

char* ms_checkpoint(ms_db* d, const char* dir) {
  char* err = NULL;
  rocksdb_checkpoint_t* c = rocksdb_checkpoint_object_create(d->db, &err);
  if (err != NULL) return err;
  // log_size_for_flush 0: flush memtables first, so the copy is SST files
  // plus a short WAL.
  rocksdb_checkpoint_create(c, dir, 0, &err);
  rocksdb_checkpoint_object_destroy(c);
  return err;
}

ms_size_result ms_approx_size(ms_db* d, int cf, const char* start, size_t start_len,
                              const char* limit, size_t limit_len, int has_limit) {
  ms_size_result r = {0, NULL};
  char* last = NULL;
  if (!has_limit) {
    // "To the end": the smallest key after the last one, last + "\x00".
    rocksdb_iterator_t* i = rocksdb_create_iterator_cf(d->db, d->ro, d->cfs[cf]);
    rocksdb_iter_seek_to_last(i);
    if (rocksdb_iter_valid(i)) {
      size_t kl = 0;
      const char* k = rocksdb_iter_key(i, &kl);
      last = malloc(kl + 1);
      if (last != NULL) {
        memcpy(last, k, kl);
        last[kl] = 0;
        limit = last;
        limit_len = kl + 1;
      }
    }
    rocksdb_iter_destroy(i);
    if (last == NULL) return r;  // empty column family
  }
  if (ms_cmp(start, start_len, limit, limit_len) < 0) {
    r.err = ms_approx_sizes_with_memtables(d->db, d->cfs[cf], start, start_len, limit, limit_len,
                                           &r.size);
  }
  free(last);
  return r;
}

void ms_compact(ms_db* d, int cf, const char* start, size_t start_len, int has_start,
                const char* limit, size_t limit_len, int has_limit) {
  rocksdb_compact_range_cf_opt(d->db, d->cfs[cf], d->co, has_start ? start : NULL, start_len,
                               has_limit ? limit : NULL, limit_len);
}

void ms_stop_compactions(ms_db* d) { rocksdb_disable_manual_compaction(d->db); }

char* ms_flush(ms_db* d) {
  char* err = NULL;
  rocksdb_flushoptions_t* f = rocksdb_flushoptions_create();
  rocksdb_flushoptions_set_wait(f, 1);
  for (int i = 0; i < d->ncf && err == NULL; i++) rocksdb_flush_cf(d->db, f, d->cfs[i], &err);
  rocksdb_flushoptions_destroy(f);
  return err;
}

int ms_property_int(ms_db* d, int cf, const char* name, uint64_t* out) {
  return rocksdb_property_int_cf(d->db, d->cfs[cf], name, out);
}

void ms_malloc_trim(void) { malloc_trim(0); }

int ms_fix_mmap_threshold(size_t n) { return mallopt(M_MMAP_THRESHOLD, (int)n); }

int ms_mapped_after_free(size_t freed, size_t n) {
  free(malloc(freed));
  size_t before = mallinfo2().hblks;
  char* p = malloc(n);
  if (p == NULL) return 0;
  p[0] = 1;
  int mapped = mallinfo2().hblks > before;
  free(p);
  return mapped;
}
