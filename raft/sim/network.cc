#include "raft/sim/network.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace raftkv::raft::sim {

namespace {
bool Chance(std::mt19937_64* rng, double p) {
  if (p <= 0) return false;
  return std::uniform_real_distribution<double>(0, 1)(*rng) < p;
}
}  // namespace

uint64_t Network::Delay() {
  const int max_delay = std::max(1, faults_.max_delay);
  int hi = max_delay;
  if (Chance(rng_, faults_.long_delay)) hi = max_delay * kLongDelayFactor;
  return std::uniform_int_distribution<int>(1, hi)(*rng_);
}

void Network::Send(std::vector<raftpb::Message> batch, uint64_t now) {
  if (batch.empty()) return;
  auto shared = std::make_shared<const std::vector<raftpb::Message>>(std::move(batch));
  for (size_t i = 0; i < shared->size(); ++i) {
    const raftpb::Message& m = (*shared)[i];
    ++stats_.sent;
    if (Chance(rng_, faults_.drop)) {
      ++stats_.dropped;
      if (m.type() == raftpb::MSG_SNAPSHOT) failures_.push_back({m.from(), m.to(), true});
      continue;
    }
    if (Chance(rng_, faults_.duplicate)) {
      ++stats_.duplicated;
      queue_.emplace(std::make_tuple(now + Delay(), (*rng_)(), seq_++), Parcel{shared, i});
    }
    queue_.emplace(std::make_tuple(now + Delay(), (*rng_)(), seq_++), Parcel{shared, i});
  }
}

std::optional<Network::Parcel> Network::Next(uint64_t now) {
  while (!queue_.empty()) {
    auto it = queue_.begin();
    if (std::get<0>(it->first) > now) return std::nullopt;
    Parcel p = std::move(it->second);
    queue_.erase(it);
    const raftpb::Message& m = p.msg();
    if (!Linked(m.from(), m.to())) {
      ++stats_.cut;
      if (m.type() == raftpb::MSG_SNAPSHOT || m.type() == raftpb::MSG_APPEND) {
        failures_.push_back({m.from(), m.to(), m.type() == raftpb::MSG_SNAPSHOT});
      }
      continue;
    }
    ++stats_.delivered;
    return p;
  }
  return std::nullopt;
}

void Network::Split(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  for (uint64_t x : a) {
    for (uint64_t y : b) {
      if (x != y) CutBoth(x, y);
    }
  }
}

std::string Network::DescribeCuts() const {
  std::string out;
  for (const auto& [from, to] : cut_) {
    absl::StrAppend(&out, out.empty() ? "" : " ", from, "->", to);
  }
  return out.empty() ? "none" : out;
}

}  // namespace raftkv::raft::sim
