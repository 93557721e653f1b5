// AwaitNode: a blocking wait for one of the node's callbacks (Node::Propose,
// ProposeConfChange, TransferLeadership, or anything answering the same way),
// for callers on a thread that may block (sync gRPC handlers, background
// threads). Never on the node's loop thread.
#ifndef RAFTKV_SERVER_AWAIT_NODE_H_
#define RAFTKV_SERVER_AWAIT_NODE_H_

#include <functional>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace raftkv::server {

// Runs start(callback) and waits for the callback (which may run on another
// thread, possibly after this returns: the state is shared). The node fails
// its callbacks at their deadline (checked every tick), so past `deadline`
// plus a grace of 2 s this gives up with DEADLINE_EXCEEDED (outcome unknown).
template <typename T>
absl::StatusOr<T> AwaitNode(absl::Time deadline,
                            const std::function<void(std::function<void(absl::StatusOr<T>)>)>& start) {
  struct State {
    absl::Notification done;
    absl::StatusOr<T> result = absl::UnknownError("no answer");
  };
  auto state = std::make_shared<State>();
  start([state](absl::StatusOr<T> r) {
    state->result = std::move(r);
    state->done.Notify();
  });
  if (!state->done.WaitForNotificationWithDeadline(deadline + absl::Seconds(2))) {
    return absl::DeadlineExceededError("no answer from the node in time; outcome unknown");
  }
  return std::move(state->result);
}

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_AWAIT_NODE_H_
