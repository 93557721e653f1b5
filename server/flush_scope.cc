#include "server/flush_scope.h"

#include <utility>
#include <vector>

#include "glog/logging.h"

namespace raftkv::server {
namespace {

struct ThreadState {
  int depth = 0;
  std::vector<std::function<void()>> deferred;
};

thread_local ThreadState state;

}  // namespace

FlushScope::FlushScope() { ++state.depth; }

FlushScope::~FlushScope() {
  if (state.depth > 1) {
    --state.depth;
    return;
  }
  // Still active while the closures run, so what they defer joins the queue.
  for (size_t i = 0; i < state.deferred.size(); ++i) {
    std::function<void()> f = std::move(state.deferred[i]);
    f();
  }
  state.deferred.clear();
  state.depth = 0;
}

bool FlushScope::Active() { return state.depth > 0; }

void FlushScope::Defer(std::function<void()> f) {
  CHECK(Active()) << "FlushScope::Defer outside a scope";
  state.deferred.push_back(std::move(f));
}

}  // namespace raftkv::server
