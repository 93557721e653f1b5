// A scratch directory for one fuzz target process: the storage targets
// write a RocksDB store per input. Made once, under /dev/shm (memory: the
// fsyncs of a store per input cost nothing), else $TEST_TMPDIR, $TMPDIR or
// /tmp, and removed when the process exits normally (a crash leaves it).
#ifndef RAFTKV_FUZZ_TEMP_DIR_H_
#define RAFTKV_FUZZ_TEMP_DIR_H_

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace raftkv::fuzz {

inline const std::string& ProcessTempDir(const std::string& name) {
  static const std::string* dir = [&name] {
    std::string base;
    std::error_code ec;
    if (std::filesystem::is_directory("/dev/shm", ec) && access("/dev/shm", W_OK) == 0) {
      base = "/dev/shm";
    } else if (const char* t = std::getenv("TEST_TMPDIR")) {
      base = t;
    } else if (const char* t = std::getenv("TMPDIR")) {
      base = t;
    } else {
      base = "/tmp";
    }
    auto* d = new std::string(base + "/raftkv-fuzz-" + name + "-" + std::to_string(getpid()));
    std::filesystem::remove_all(*d, ec);
    std::filesystem::create_directories(*d);
    std::atexit([] {
      std::error_code e;
      std::filesystem::remove_all(*dir, e);
    });
    return d;
  }();
  return *dir;
}

}  // namespace raftkv::fuzz

#endif  // RAFTKV_FUZZ_TEMP_DIR_H_
