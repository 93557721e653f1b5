// The child process of crash_test.cc.
//
//   crash_test_child run DIR SEED FD   opens the store in DIR, runs
//       crash::Workload(ReadState(store), SEED) forever, and after each op
//       returns OK (durable) writes the count of completed ops to FD as a
//       native uint64. Exits 3 on any error; the parent SIGKILLs it.
//   crash_test_child hold DIR FD       opens the store, writes one byte to
//       FD, then sleeps until killed (the parent tests the directory lock).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "storage/crash_workload.h"
#include "storage/log_store.h"

namespace {

using raftkv::storage::LogStore;
namespace crash = raftkv::storage::crash;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "crash_test_child: %s\n", what.c_str());
  std::fflush(stderr);
  _exit(3);
}

bool WriteAll(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) Die("usage: run DIR SEED FD | hold DIR FD");
  const std::string mode = argv[1];
  raftkv::storage::Options options;
  options.dir = argv[2];
  auto store = LogStore::Open(options);
  if (!store.ok()) Die(store.status().ToString());

  if (mode == "hold") {
    const int fd = std::atoi(argv[3]);
    const char ready = 'r';
    if (!WriteAll(fd, &ready, 1)) Die("write to parent failed");
    for (;;) pause();
  }
  if (mode != "run" || argc < 5) Die("bad arguments");
  const uint64_t seed = std::strtoull(argv[3], nullptr, 10);
  const int fd = std::atoi(argv[4]);
  auto initial = crash::ReadState(**store);
  if (!initial.ok()) Die(initial.status().ToString());
  crash::Workload workload(*std::move(initial), seed);
  for (uint64_t done = 1;; ++done) {
    const crash::Op op = workload.Next();
    absl::Status s = crash::Execute(op, store->get());
    if (!s.ok()) Die(s.ToString());
    if (!WriteAll(fd, &done, sizeof(done))) Die("write to parent failed");
  }
}
