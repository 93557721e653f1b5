// Gives memory freed by answers back to the system. glibc keeps what a
// program frees in its arenas for reuse (one per group of threads), and
// returns little of it on its own: 2000 cancelled streams' answers of
// 1 MiB left a node at ~275 MiB resident 20 s later instead of ~40, while a
// single malloc_trim(0) brought it back to ~80 (tests/memory_bound_test).
// A thread looks every `interval` at how far the answers held
// (server/answer_budget.h) fell since its last look, and trims when they
// fell by at least `min_drop_bytes`: a trim walks every arena under its
// lock, so it runs only after a large drop, never on the steady path.
//
// Under AddressSanitizer, whose allocator replaces glibc's, trimming is a
// no-op; that allocator returns freed memory on its own.
//
// Thread safety: construct and destroy on one thread.
#ifndef RAFTKV_SERVER_MEMORY_TRIMMER_H_
#define RAFTKV_SERVER_MEMORY_TRIMMER_H_

#include <cstddef>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/answer_budget.h"

namespace raftkv::server {

struct MemoryTrimOptions {
  absl::Duration interval = absl::Seconds(1);
  size_t min_drop_bytes = size_t{64} << 20;

  absl::Status Validate() const;
};

class MemoryTrimmer {
 public:
  // Starts the thread. `budget` is not owned and must outlive this.
  // REQUIRES: options.Validate().ok().
  MemoryTrimmer(MemoryTrimOptions options, AnswerBudget* budget);
  ~MemoryTrimmer();  // stops and joins the thread
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

  // Returns the free memory of every arena to the system now; the bytes
  // released, as far as glibc's statistics tell (0 if it cannot tell).
  static size_t TrimNow();

 private:
  void Run();

  const MemoryTrimOptions options_;
  AnswerBudget* const budget_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_MEMORY_TRIMMER_H_
