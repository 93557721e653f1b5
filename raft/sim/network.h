// Network: the simulator's message transport. Deterministic: every random
// choice comes from the simulator's PRNG.
//
// Time is measured in simulator steps. A message sent at `now` is delivered
// at now + delay, delay uniform in [1, max_delay] (occasionally up to
// kLongDelayFactor times that: a straggler that arrives long after newer
// traffic). Messages due at the same step are delivered in random order, so
// messages are reordered freely. Each message may also be dropped or
// duplicated (the copy gets its own delay).
//
// Partitions cut directed links; a cut link drops a message at delivery
// time, so a partition also swallows what was already in flight.
#ifndef RAFTKV_RAFT_SIM_NETWORK_H_
#define RAFTKV_RAFT_SIM_NETWORK_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "proto/raft.pb.h"

namespace raftkv::raft::sim {

struct NetworkFaults {
  double drop = 0;        // probability a message is lost
  double duplicate = 0;   // probability a message is delivered twice
  double long_delay = 0;  // probability of a straggler
  int max_delay = 3;      // steps; at least 1
};

struct NetworkStats {
  uint64_t sent = 0;
  uint64_t delivered = 0;
  uint64_t dropped = 0;     // by the drop probability
  uint64_t duplicated = 0;
  uint64_t cut = 0;         // lost to a partition
};

class Network {
 public:
  static constexpr int kLongDelayFactor = 8;

  explicit Network(std::mt19937_64* rng) : rng_(rng) {}

  void set_faults(const NetworkFaults& f) { faults_ = f; }
  const NetworkFaults& faults() const { return faults_; }

  // A message in flight: one of a batch sent together (shared, not copied).
  struct Parcel {
    std::shared_ptr<const std::vector<raftpb::Message>> batch;
    size_t index = 0;
    const raftpb::Message& msg() const { return (*batch)[index]; }
  };

  // Sends every message of `batch`.
  void Send(std::vector<raftpb::Message> batch, uint64_t now);
  // Removes and returns the next message due at or before `now` whose link
  // is up (messages on cut links are discarded); nullopt when none is due.
  std::optional<Parcel> Next(uint64_t now);
  size_t in_flight() const { return queue_.size(); }

  // Links.
  bool Linked(uint64_t from, uint64_t to) const { return !cut_.count({from, to}); }
  void Cut(uint64_t from, uint64_t to) { cut_.insert({from, to}); }
  void CutBoth(uint64_t a, uint64_t b) {
    Cut(a, b);
    Cut(b, a);
  }
  // No link between any node of `a` and any node of `b`.
  void Split(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);
  void Heal() { cut_.clear(); }
  bool partitioned() const { return !cut_.empty(); }
  std::string DescribeCuts() const;

  // What a real transport learns about failures, for the driver to report
  // to the sender's core (ReportSnapshot(to, false), ReportUnreachable(to)):
  // lost snapshots, and appends lost to a cut link.
  struct Failure {
    uint64_t from = 0;
    uint64_t to = 0;
    bool snapshot = false;
  };
  std::vector<Failure> TakeFailures() { return std::move(failures_); }

  const NetworkStats& stats() const { return stats_; }

 private:
  uint64_t Delay();

  std::mt19937_64* rng_;
  NetworkFaults faults_;
  // (deliver_at, random tie-break, sequence) -> message.
  std::map<std::tuple<uint64_t, uint64_t, uint64_t>, Parcel> queue_;
  uint64_t seq_ = 0;
  std::set<std::pair<uint64_t, uint64_t>> cut_;
  std::vector<Failure> failures_;
  NetworkStats stats_;
};

}  // namespace raftkv::raft::sim

#endif  // RAFTKV_RAFT_SIM_NETWORK_H_
