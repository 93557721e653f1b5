// The Simulator class behind RunSimulation (simulator.h). Internal to
// raft/sim: simulator.cc holds the driver and the phases, actions.cc the
// client requests and faults it injects.
#ifndef RAFTKV_RAFT_SIM_SIMULATOR_IMPL_H_
#define RAFTKV_RAFT_SIM_SIMULATOR_IMPL_H_

#include <cstdint>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "raft/memory_log.h"
#include "raft/raft.h"
#include "raft/sim/kv_state_machine.h"
#include "raft/sim/network.h"
#include "raft/sim/safety_checker.h"
#include "raft/sim/simulator.h"

namespace raftkv::raft::sim {

inline constexpr int kKeys = 5;
inline constexpr uint64_t kMaxBacklog = 48;  // uncommitted entries a leader accepts

struct Node {
  uint64_t id = 0;
  std::unique_ptr<MemoryLog> log;  // durable
  KvStateMachine sm;               // durable (persisted with its applied index)
  std::unique_ptr<Raft> raft;      // null while down
  int boots = 0;
  bool retired = false;  // removed from the cluster for good
  struct Waiting {
    uint64_t index;
    std::string key;
  };
  std::vector<Waiting> waiting_reads;  // ReadStates awaiting the state machine
  // Asynchronous writes: the writer's queue, oldest first; not durable (a
  // crash loses it). Each completes at step `due` or later, in order.
  struct Write {
    std::vector<raftpb::Entry> entries;
    std::optional<raftpb::HardState> hard_state;
    std::vector<raftpb::Message> persisted_messages;
    uint64_t due = 0;
  };
  std::deque<Write> writes;
};

struct ReadRecord {
  uint64_t node = 0;
  std::string key;
  uint64_t min_index = 0;
};

class Simulator {
 public:
  explicit Simulator(const Options& o) : o_(o), rng_(o.seed), net_(&rng_) {}
  Result Run();

 private:
  bool Chance(double p) {
    return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < p;
  }
  uint64_t Uniform(uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }
  template <class T>
  T Pick(const std::vector<T>& v) {
    return v[Uniform(0, v.size() - 1)];
  }
  bool ok() const { return checker_.ok(); }
  void Trace(uint64_t x) { res_.trace_hash = Mix(res_.trace_hash, x); }
  template <class... Args>
  void Log(const Args&... args) {
    if (o_.verbose) std::cout << "[" << now_ << "] " << absl::StrCat(args...) << "\n";
  }

  std::vector<uint64_t> Ids(bool live) const;
  uint64_t Leader() const;
  const KvStateMachine& Furthest() const;
  void ChooseConfig();
  Config MakeConfig(const Node& n) const;

  void AddNode(uint64_t id, const raftpb::ConfState& cs);
  void Boot(Node& n);
  void Crash(Node& n, const char* why);
  void Retire(Node& n);
  void Drain(Node& n);
  bool Persist(Node& n, const std::vector<raftpb::Entry>& entries,
               const std::optional<raftpb::HardState>& hs);
  void QueueWrite(Node& n, Ready& rd);
  void CompleteWrites(Node& n);
  void FlushWrites(Node& n, std::vector<std::pair<uint64_t, uint64_t>>* persisted);
  void Apply(Node& n, const raftpb::Entry& e);
  void ServeReads(Node& n);
  void SendAll(std::vector<raftpb::Message> msgs);
  void Observe(const Node* touched = nullptr);
  const std::vector<NodeView>& LiveViews();
  void Adversary(const std::vector<NodeView>& live);
  void AfterInput(Node& n) {
    Drain(n);
    Observe(&n);
  }
  void Deliver(const raftpb::Message& m);
  void TickAll();
  void ReportFailures();

  void Propose();
  void Read();
  void ChangeMembership();
  void Transfer();
  void Compact();
  void CrashSome();
  void RestartSome();
  void Partition();
  void Hostile();

  void StepOnce(bool chaos);
  void Chaos(int steps);
  void Calm();
  void CheckLogs();
  void DumpNodes();

  Options o_;
  std::mt19937_64 rng_;
  Network net_;
  SafetyChecker checker_;
  std::map<uint64_t, std::unique_ptr<Node>> nodes_;
  raftpb::ConfState bootstrap_;
  Config base_;  // the core config chosen for this seed (id/seed/applied unset)
  bool chaos_ = false;
  uint64_t now_ = 0;
  uint64_t next_id_ = 0;
  uint64_t read_seq_ = 0, put_seq_ = 0, marker_seq_ = 0;
  std::map<std::string, ReadRecord> reads_;
  std::vector<Network::Failure> down_failures_;  // sends to nodes that are down
  struct LeaderMark {
    uint64_t term = 0;
    uint64_t commit = 0;
  };
  std::map<uint64_t, LeaderMark> leader_marks_;
  std::vector<NodeView> views_;  // the live nodes (LiveViews)
  bool views_dirty_ = true;
  std::set<std::string> answered_reads_;
  std::set<uint64_t> was_member_;  // ids in some applied (committed) membership
  std::set<std::string> markers_;  // liveness markers of the current calm phase
  bool marker_applied_ = false;
  Result res_;
};

}  // namespace raftkv::raft::sim

#endif  // RAFTKV_RAFT_SIM_SIMULATOR_IMPL_H_
