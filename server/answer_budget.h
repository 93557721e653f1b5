// The node's budget of answer bytes: memory held for clients in answers
// computed and not yet sent (queued on a Batch stream, or handed to gRPC and
// waiting for the client's HTTP/2 window). A client that does not read its
// answers holds them; the budget bounds what all such clients hold together,
// so the node's memory stays bounded whatever clients do.
//
// Accounting: each answer is charged twice its encoded size (the message and
// the copy gRPC serializes to send it), from when it is computed until gRPC
// reports it sent; an op or read call takes a small reservation when it
// starts, replaced by its answer's charge (kv_batch.cc, kv_service.cc).
//
// Large charges (over kSmallBytes) fill the budget only up to node_bytes
// minus a headroom of node_bytes / 8, kept for small answers: clients stuck
// on big values never crowd out small reads and writes. A waiter for a large
// charge is served in arrival order (later large charges queue behind it).
//
// Thread safety: every method may be called from any thread. `granted`
// callbacks run on a thread calling Release, with no lock of this class
// held; so Release must not be called with a lock that a callback takes.
#ifndef RAFTKV_SERVER_ANSWER_BUDGET_H_
#define RAFTKV_SERVER_ANSWER_BUDGET_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace raftkv::server {

struct AnswerBudgetOptions {
  // Answer bytes held for all clients at once (--answer_budget_bytes).
  size_t node_bytes = size_t{256} << 20;
  // Answer bytes held for one Batch stream (--stream_answer_budget_bytes):
  // past it the stream stops starting ops and reading until its client reads.
  size_t stream_bytes = size_t{16} << 20;

  absl::Status Validate() const;
};

class AnswerBudget {
 public:
  // Charges up to this size use the headroom too.
  static constexpr size_t kSmallBytes = 64 << 10;

  // REQUIRES: options.Validate().ok().
  explicit AnswerBudget(AnswerBudgetOptions options);
  AnswerBudget(const AnswerBudget&) = delete;
  AnswerBudget& operator=(const AnswerBudget&) = delete;

  const AnswerBudgetOptions& options() const { return options_; }

  // Takes `bytes` if they fit (see above; anything fits while nothing is
  // held, so an answer larger than the budget is still served alone).
  bool TryAcquire(size_t bytes);
  // Takes `bytes` whether or not they fit (answers that cannot wait: a
  // write's outcome). Bounded by the callers.
  void Force(size_t bytes);
  // Takes `bytes` now and returns true (`granted` is never called), or
  // queues a waiter and returns false: `granted` runs once the bytes are
  // taken for it. *ticket names the waiter for Cancel.
  bool AcquireOrWait(size_t bytes, std::function<void()> granted, uint64_t* ticket);
  // Removes waiter `ticket`: true if it was waiting (`granted` will never
  // run), false if it was already granted (its callback has run or runs).
  bool Cancel(uint64_t ticket);
  // Gives back `bytes` and grants the waiters that now fit.
  void Release(size_t bytes);

  size_t held() const;
  size_t waiters() const;
  // How far held() fell from its highest since the last call (for
  // server/memory_trimmer.h); starts the next period at the current level.
  size_t TakeDrop();

 private:
  struct Waiter {
    uint64_t ticket;
    size_t bytes;
    std::function<void()> granted;
  };
  bool FitsLocked(size_t bytes) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddLocked(size_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool LargeWaiterLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AnswerBudgetOptions options_;
  mutable absl::Mutex mu_;
  size_t held_ ABSL_GUARDED_BY(mu_) = 0;
  size_t peak_ ABSL_GUARDED_BY(mu_) = 0;  // of held_, since the last TakeDrop
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  std::deque<Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  absl::Time last_full_log_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_ANSWER_BUDGET_H_
