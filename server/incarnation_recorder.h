// IncarnationRecorder: while this node leads, it proposes a record of each
// member's incarnation that the replicated state lacks (its own, and those
// its PeerIncarnations heard), so that every member, once it has applied
// the record, refuses a later incarnation of that node
// (server/peer_incarnations.h). The state machine keeps the first record
// per membership (KvStateMachine::Incarnation).
//
// Owns a thread that checks every `interval`; Stop() (or the destructor)
// joins it. The node, state machine and PeerIncarnations are not owned and
// must outlive the recorder.
#ifndef RAFTKV_SERVER_INCARNATION_RECORDER_H_
#define RAFTKV_SERVER_INCARNATION_RECORDER_H_

#include <cstdint>
#include <map>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/node.h"
#include "server/peer_incarnations.h"
#include "server/state_machine.h"

namespace raftkv::server {

class IncarnationRecorder {
 public:
  IncarnationRecorder(uint64_t self_id, uint64_t self_incarnation, Node* node,
                      const KvStateMachine* sm, const PeerIncarnations* peers,
                      absl::Duration interval = absl::Milliseconds(200));
  ~IncarnationRecorder();
  IncarnationRecorder(const IncarnationRecorder&) = delete;
  IncarnationRecorder& operator=(const IncarnationRecorder&) = delete;

  void Start();
  void Stop();

  // One check: proposes what is missing, if this node leads. For tests.
  void RecordMissing();

 private:
  const uint64_t self_id_;
  const uint64_t self_incarnation_;
  Node* const node_;
  const KvStateMachine* const sm_;
  const PeerIncarnations* const peers_;
  const absl::Duration interval_;
  absl::Notification stop_;
  std::thread thread_;
  absl::Mutex mu_;
  // Proposals in flight: node id -> when another may be made.
  std::map<uint64_t, absl::Time> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_INCARNATION_RECORDER_H_
