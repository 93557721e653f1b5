#include "server/callback_pool.h"

#include <pthread.h>

#include <utility>

#include "glog/logging.h"

namespace raftkv::server {

CallbackPool::CallbackPool(int threads) {
  CHECK_GE(threads, 1);
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "callback-pool");  // for top -H and perf
      Work();
    });
  }
}

CallbackPool::~CallbackPool() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  for (auto& t : threads_) t.join();
}

void CallbackPool::Post(std::function<void()> fn) {
  absl::MutexLock l(&mu_);
  queue_.push_back(std::move(fn));
}

void CallbackPool::Work() {
  while (true) {
    std::function<void()> fn;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stopping_;
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, and everything posted has run
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    fn();
  }
}

}  // namespace raftkv::server
