// TestCluster: nodes of the Raft core driven per the contract in raft.h,
// over MemoryLogs and a manual, in-memory network. Test-only.
//
// Messages are queued, never delivered until Deliver()/Stabilize() is
// called, so a test scripts exactly what happens. Links can be cut
// (Isolate, Cut) and healed.
#ifndef RAFTKV_RAFT_TEST_CLUSTER_H_
#define RAFTKV_RAFT_TEST_CLUSTER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "raft/memory_log.h"
#include "raft/raft.h"

namespace raftkv::raft {

// One node: its durable log (survives Crash) and the core (does not).
struct TestNode {
  uint64_t id = 0;
  Config config;
  std::unique_ptr<MemoryLog> log;
  std::unique_ptr<Raft> raft;
  std::vector<raftpb::Entry> applied;  // every entry applied, in order
  std::vector<ReadState> reads;         // every read state delivered
  std::vector<std::string> dropped_reads;
  bool down = false;
};

class TestCluster {
 public:
  // Voters 1..n, all starting from an empty log with that membership.
  explicit TestCluster(int n, std::function<void(Config*)> tweak = nullptr);

  TestNode& node(uint64_t id) { return *nodes_.at(id); }
  Raft& raft(uint64_t id) { return *nodes_.at(id)->raft; }
  std::vector<uint64_t> ids() const;

  // Adds a node with an empty log and empty membership (to be added by a
  // conf change), like a server started with a join flag.
  void AddEmptyNode(uint64_t id);

  // Drains each node's Ready per the driver contract; queues messages.
  void ProcessReadies();
  // Delivers queued messages (and processes readies) until none are left,
  // at most max_rounds times.
  void Stabilize(int max_rounds = 1000);
  // Ticks every live node once, then processes readies.
  void TickAll();
  // Ticks until some node is leader, stabilizing in between; returns it.
  uint64_t ElectLeader(int max_ticks = 200);
  // Makes `id` campaign and delivers only the election's messages: it ends
  // leader (returns true) with nothing of its term replicated; pending
  // messages are dropped.
  bool ElectWithoutAppends(uint64_t id);
  // Forces `id` to campaign and stabilizes.
  void Campaign(uint64_t id);
  uint64_t Leader() const;

  // Network faults. Cut is one-directional.
  void Cut(uint64_t from, uint64_t to) { cut_.insert({from, to}); }
  void Isolate(uint64_t id);
  void Heal() { cut_.clear(); }
  // Queued messages, for tests that inspect or tamper with traffic.
  std::deque<raftpb::Message>& pending() { return pending_; }

  // The node loses everything not persisted, then restarts from its log.
  void Crash(uint64_t id);
  void Restart(uint64_t id);

  // Proposes on the leader; returns false if there is none.
  bool Propose(const std::string& data);

 private:
  void DrainReady(TestNode& n);
  void Boot(TestNode& n);

  std::map<uint64_t, std::unique_ptr<TestNode>> nodes_;
  std::deque<raftpb::Message> pending_;
  std::set<std::pair<uint64_t, uint64_t>> cut_;
  std::function<void(Config*)> tweak_;
};

}  // namespace raftkv::raft

#endif  // RAFTKV_RAFT_TEST_CLUSTER_H_
