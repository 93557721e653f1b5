// FlushScope: lets a thread that completes many requests in a row send
// their answers together.
//
// While a FlushScope is alive on a thread, code that would start an output
// there (a write on a client stream) may Defer() it instead; the deferred
// closures run on the same thread, in order, when the outermost scope on
// that thread ends. So the node's loop, answering every write of an apply
// batch, or a read thread, answering a batch of reads, starts one write per
// stream rather than one per answer.
//
// Scopes nest; only the outermost one runs the closures. A closure may
// Defer() more; they run before the scope's destructor returns.
// Thread-compatible: each thread has its own scope stack; never share one.
#ifndef RAFTKV_SERVER_FLUSH_SCOPE_H_
#define RAFTKV_SERVER_FLUSH_SCOPE_H_

#include <functional>

namespace raftkv::server {

class FlushScope {
 public:
  FlushScope();
  ~FlushScope();
  FlushScope(const FlushScope&) = delete;
  FlushScope& operator=(const FlushScope&) = delete;

  // True if a scope is alive on the calling thread.
  static bool Active();
  // REQUIRES: Active(). Runs `f` on this thread when the outermost scope
  // ends.
  static void Defer(std::function<void()> f);
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_FLUSH_SCOPE_H_
