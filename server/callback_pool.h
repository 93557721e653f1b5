// A fixed set of threads that run posted callbacks, in the order posted
// (one queue; with several threads, callbacks may overlap).
//
// The node's loop thread uses it to hand off work that need not hold up
// the next round (answering linearizable reads once they are safe), so
// that work runs on other cores.
//
// Thread safety: Post() may be called from any thread. The destructor runs
// every callback already posted, then joins the threads; no Post() may
// race with it.
#ifndef RAFTKV_SERVER_CALLBACK_POOL_H_
#define RAFTKV_SERVER_CALLBACK_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace raftkv::server {

class CallbackPool {
 public:
  // REQUIRES: threads >= 1.
  explicit CallbackPool(int threads);
  ~CallbackPool();
  CallbackPool(const CallbackPool&) = delete;
  CallbackPool& operator=(const CallbackPool&) = delete;

  void Post(std::function<void()> fn);
  int threads() const { return static_cast<int>(threads_.size()); }

 private:
  void Work();

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_CALLBACK_POOL_H_
