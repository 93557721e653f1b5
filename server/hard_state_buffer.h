// HardStateBuffer: decides which hard state a round's write carries.
//
// The term and vote must be durable before anything that depends on them
// goes out (Raft paper, Figure 2); the commit index need not be (it is
// volatile state: a restarted node learns it again from the leader, and its
// stored applied index, written after the entries it covers, already tells
// it where to resume). So a hard state that only moves the commit index is
// held back and written with the next write that has to happen anyway (new
// entries, a snapshot, a new term or vote), instead of costing a store
// write, and for a leader a hand-off to its writer thread, of its own.
//
// Invariant: the hard state last handed out for writing has the current
// term and vote; the stored commit index is at most the core's.
//
// Thread-compatible: the node's loop thread owns it.
#ifndef RAFTKV_SERVER_HARD_STATE_BUFFER_H_
#define RAFTKV_SERVER_HARD_STATE_BUFFER_H_

#include <optional>

#include "proto/raft.pb.h"

namespace raftkv::server {

class HardStateBuffer {
 public:
  // `written`: the hard state the store holds.
  explicit HardStateBuffer(raftpb::HardState written) : written_(std::move(written)) {}

  // The hard state to write with a round that carries `hs` (a Ready's hard
  // state, if it changed) and, if `must_write`, entries or a snapshot;
  // nullopt: none (a round with nothing else to write then writes nothing).
  std::optional<raftpb::HardState> ToWrite(const std::optional<raftpb::HardState>& hs,
                                           bool must_write);

  // The newest hard state not written yet (only its commit index differs
  // from the stored one): for a write at shutdown, which is optional.
  const std::optional<raftpb::HardState>& held() const { return held_; }

 private:
  raftpb::HardState written_;  // as last handed out for writing
  std::optional<raftpb::HardState> held_;
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_HARD_STATE_BUFFER_H_
