// version.cc exposes the ROCKSDB_MAJOR/MINOR/PATCH macros to Go. They live in
// rocksdb/version.h, which is C++ (it includes <string>), so shim.c cannot
// include it; this file uses only the macros and needs no C++ runtime.
#include <rocksdb/version.h>

extern "C" {
int ms_version_major(void) { return ROCKSDB_MAJOR; }
int ms_version_minor(void) { return ROCKSDB_MINOR; }
int ms_version_patch(void) { return ROCKSDB_PATCH; }
}
