// Majority quorum arithmetic: pure functions, no state.
#ifndef RAFTKV_RAFT_QUORUM_H_
#define RAFTKV_RAFT_QUORUM_H_

#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/types/span.h"

namespace raftkv::raft {

// The largest value v such that a majority of `voters` have acked(id) >= v.
// Used for the commit index (acked = match index, Raft paper §5.3) and for
// confirmed read rounds (acked = highest heartbeat round answered, §6.4).
// Returns 0 when `voters` is empty.
uint64_t MajorityValue(absl::Span<const uint64_t> voters,
                       absl::FunctionRef<uint64_t(uint64_t)> acked);

enum class VoteResult { kPending, kWon, kLost };

// kWon once a majority of `voters` granted, kLost once a majority can no
// longer grant, else kPending. Votes from non-voters are ignored.
VoteResult TallyVotes(absl::Span<const uint64_t> voters,
                      const absl::flat_hash_map<uint64_t, bool>& votes);

}  // namespace raftkv::raft

#endif  // RAFTKV_RAFT_QUORUM_H_
