// Where the storage micro-benchmarks keep their stores.
#ifndef RAFTKV_STORAGE_BENCH_DIR_H_
#define RAFTKV_STORAGE_BENCH_DIR_H_

#include <cstdlib>
#include <filesystem>
#include <string>

namespace raftkv::storage {

// "<base>/raftkv_<name>", base being $RAFTKV_BENCH_DIR, else $TEST_TMPDIR,
// else the system temp directory (so the benchmark measures that disk).
inline std::string BenchDir(const std::string& name) {
  std::string base;
  if (const char* d = std::getenv("RAFTKV_BENCH_DIR")) {
    base = d;
  } else if (const char* t = std::getenv("TEST_TMPDIR")) {
    base = t;
  } else {
    base = std::filesystem::temp_directory_path().string();
  }
  return base + "/raftkv_" + name;
}

}  // namespace raftkv::storage

#endif  // RAFTKV_STORAGE_BENCH_DIR_H_
