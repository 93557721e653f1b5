// Membership: single-server configuration changes (Raft dissertation §4.1).
//
// Design choice: one voter or learner added, promoted or removed at a time.
// Any two consecutive configurations then share a majority, so no joint
// phase is needed. Two rules make this safe (enforced by the core):
//  - a configuration takes effect on a server as soon as its entry is in
//    that server's log, committed or not (§4.1), and is undone if the entry
//    is truncated away;
//  - a leader proposes a change only when no change is pending in its log
//    and it has committed an entry of its own term (the correction to §4.1
//    published on raft-dev in 2015).
#ifndef RAFTKV_RAFT_MEMBERSHIP_H_
#define RAFTKV_RAFT_MEMBERSHIP_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/raft.pb.h"

namespace raftkv::raft {

bool IsVoter(const raftpb::ConfState& cs, uint64_t id);
bool IsLearner(const raftpb::ConfState& cs, uint64_t id);
inline bool IsMember(const raftpb::ConfState& cs, uint64_t id) {
  return IsVoter(cs, id) || IsLearner(cs, id);
}
std::string ConfStateString(const raftpb::ConfState& cs);

// The configuration after `cc`. Errors (InvalidArgument/FailedPrecondition)
// for a change that is not allowed: node id 0, adding a voter twice, making
// a voter a learner, removing a non-member or the last voter.
absl::StatusOr<raftpb::ConfState> ApplyConfChange(const raftpb::ConfState& cs,
                                                  const raftpb::ConfChange& cc);

// Parses the ConfChange in an ENTRY_CONF_CHANGE entry.
absl::StatusOr<raftpb::ConfChange> DecodeConfChange(const raftpb::Entry& e);

// The configurations recorded in a log: a base (from the snapshot, or the
// last one folded in) and one per conf-change entry after it, by index.
// The latest is in effect. Invariant: indices strictly increase.
class ConfigLog {
 public:
  ConfigLog() = default;

  void Reset(uint64_t base_index, raftpb::ConfState base);
  // REQUIRES: index > LatestIndex().
  void Append(uint64_t index, raftpb::ConfState cs);
  // Drops the configurations at indices >= index (log truncated there).
  // REQUIRES: index > base index (committed entries are never truncated).
  void TruncateFrom(uint64_t index);
  // Folds the configurations at indices <= index into the base.
  void CompactTo(uint64_t index);

  const raftpb::ConfState& Latest() const;
  uint64_t LatestIndex() const;
  uint64_t base_index() const { return base_index_; }
  // The configuration at base_index() (the latest committed one, as the core
  // folds configurations in when they commit).
  const raftpb::ConfState& base() const { return base_; }

 private:
  uint64_t base_index_ = 0;
  raftpb::ConfState base_;
  std::vector<std::pair<uint64_t, raftpb::ConfState>> later_;
};

}  // namespace raftkv::raft

#endif  // RAFTKV_RAFT_MEMBERSHIP_H_
