#include "server/memory_trimmer.h"

#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

constexpr size_t kMiB = 1 << 20;

long RssMiB() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    long kb = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %ld kB", &kb) == 1) return kb / 1024;
  }
  return -1;
}

// 300 MiB of 1 MiB blocks freed on another thread (its own arena), with
// small blocks kept between them so no heap top can shrink on its own: the
// memory stays resident until a trim.
void LeaveFreeMemory() {
  std::thread([] {
    free(malloc(4 * kMiB));  // lifts glibc's mmap threshold: later blocks come from the heap
    std::vector<void*> big, small;
    for (int i = 0; i < 300; ++i) {
      big.push_back(malloc(kMiB));
      memset(big.back(), 1, kMiB);
      small.push_back(malloc(64));
    }
    for (void* p : big) free(p);
    // `small` leaks on purpose: it pins the heaps' tops.
  }).join();
}

TEST(MemoryTrimmerTest, ALargeDropOfAnswersHeldReturnsFreedMemory) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "ASan's allocator replaces glibc's; trimming is a no-op";
#endif
  LeaveFreeMemory();
  const long before = RssMiB();
  AnswerBudgetOptions bo;
  AnswerBudget budget(bo);
  MemoryTrimOptions o;
  o.interval = absl::Milliseconds(10);
  MemoryTrimmer trimmer(o, &budget);
  // No drop yet: nothing is trimmed.
  budget.Force(200 * kMiB);
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_GT(RssMiB(), before - 100) << "trimmed without a drop";
  budget.Release(200 * kMiB);
  long now = before;
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while ((now = RssMiB()) > before - 200 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_LE(now, before - 200) << "MiB resident, " << before << " before the drop";
}

}  // namespace
}  // namespace raftkv::server
