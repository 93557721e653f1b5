#include "raft/quorum.h"

#include <algorithm>
#include <functional>

#include "absl/container/inlined_vector.h"

namespace raftkv::raft {

uint64_t MajorityValue(absl::Span<const uint64_t> voters,
                       absl::FunctionRef<uint64_t(uint64_t)> acked) {
  if (voters.empty()) return 0;
  absl::InlinedVector<uint64_t, 7> values;
  values.reserve(voters.size());
  for (uint64_t id : voters) values.push_back(acked(id));
  // After sorting descending, the first n/2+1 values are all >= values[n/2]:
  // that many voters form a majority.
  const size_t k = voters.size() / 2;
  std::nth_element(values.begin(), values.begin() + k, values.end(),
                   std::greater<uint64_t>());
  return values[k];
}

VoteResult TallyVotes(absl::Span<const uint64_t> voters,
                      const absl::flat_hash_map<uint64_t, bool>& votes) {
  size_t granted = 0, rejected = 0;
  for (uint64_t id : voters) {
    auto it = votes.find(id);
    if (it == votes.end()) continue;
    (it->second ? granted : rejected)++;
  }
  const size_t majority = voters.size() / 2 + 1;
  if (granted >= majority) return VoteResult::kWon;
  if (rejected > voters.size() - majority) return VoteResult::kLost;
  return VoteResult::kPending;
}

}  // namespace raftkv::raft
