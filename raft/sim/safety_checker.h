// SafetyChecker: the cross-node safety properties of Raft (paper, Figure 3),
// checked incrementally while the simulator runs.
//
//  - Election Safety: at most one leader per term.
//  - Log Matching: logs that hold an entry with the same index and term are
//    identical up to it. Checked on every durable write (each (index, term)
//    ever written must always carry the same content and follow the same
//    previous term: by induction the prefixes then agree), and by a full
//    pairwise comparison of the durable logs (CheckLogs).
//  - Leader Completeness: an entry committed in term T is in the log of
//    every leader of a term > T. A node's commit index observed while it is
//    in term T commits its entries in a term <= T, so the check is sound.
//  - State Machine Safety: no two nodes apply different entries at one
//    index; the chained hash of the state machine agrees at every index,
//    also after a snapshot was installed in place of the entries.
//  - Reads: a ReadState's index is >= the index of every write that was
//    acknowledged (applied on some node) before the read was requested, and
//    a served read returns the value of the latest write at or below the
//    index the serving state machine has applied.
//  - Durable state: a node's persisted term never decreases, it never votes
//    for two candidates in one term, its persisted commit never decreases;
//    Raft::CheckInvariants() holds on every live node.
//
// The first violation is kept; after it the checker ignores further input.
#ifndef RAFTKV_RAFT_SIM_SAFETY_CHECKER_H_
#define RAFTKV_RAFT_SIM_SAFETY_CHECKER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "proto/raft.pb.h"
#include "raft/memory_log.h"
#include "raft/raft.h"

namespace raftkv::raft::sim {

struct NodeView {
  uint64_t id = 0;
  const Raft* raft = nullptr;  // null while the node is down
  const MemoryLog* log = nullptr;
};

class SafetyChecker {
 public:
  bool ok() const { return violation_.empty(); }
  const std::string& violation() const { return violation_; }

  // After every event: leaders and commit indices of the live nodes, and
  // Raft::CheckInvariants() of the node that took the input (`touched`, 0 if
  // none).
  void Observe(const std::vector<NodeView>& live, uint64_t touched);
  // Raft::CheckInvariants() of every live node (after every step).
  void CheckInvariants(const std::vector<NodeView>& live);

  // Driver hooks, called as the driver performs each step of a Ready.
  void OnPersist(uint64_t node, const std::vector<raftpb::Entry>& entries,
                 const MemoryLog& log);
  void OnHardState(uint64_t node, const raftpb::HardState& hs);
  void OnApply(uint64_t node, const raftpb::Entry& e, uint64_t chain_after);
  void OnSnapshotInstalled(uint64_t node, const raftpb::SnapshotMetadata& meta,
                           uint64_t image_applied, uint64_t image_chain,
                           const raftpb::ConfState& image_conf);

  // A ReadState for a read requested when applied_max() was `min_index`.
  void OnReadState(uint64_t node, const std::string& context, uint64_t index,
                   uint64_t min_index);
  // A read of `key` served by a state machine that applied `applied`.
  void OnReadServed(uint64_t node, const std::string& key,
                    const std::optional<std::string>& value, uint64_t applied);

  // Full pairwise comparison of durable logs (Log Matching).
  void CheckLogs(const std::vector<NodeView>& nodes);

  // Highest index applied on any node: every write at or below it has been
  // acknowledged to its client.
  uint64_t applied_max() const { return applied_max_; }
  uint64_t max_commit() const { return max_commit_; }
  size_t leaders() const { return leader_of_term_.size(); }
  // Times a leader's commit index moved to an entry of an earlier term (only
  // the planted bug does that; it is what Figure 8 needs).
  uint64_t old_term_commits() const { return old_term_commits_; }

  void Fail(std::string what);

 private:
  struct Committed {
    bool known = false;
    uint64_t term = 0;
    uint64_t commit_term = 0;  // a term in which it was known committed
  };
  struct Applied {
    bool known = false;
    uint64_t term = 0;
    uint64_t hash = 0;
    uint64_t chain = 0;
  };
  struct Written {
    uint64_t hash = 0;
    uint64_t prev_term = 0;
  };
  struct Durable {
    uint64_t term = 0;
    uint64_t vote = 0;
    uint64_t commit = 0;
  };

  void RecordCommitted(const NodeView& v, uint64_t lo, uint64_t hi,
                       std::vector<uint64_t>* fresh);
  void NoteCommitted(uint64_t node, uint64_t index, uint64_t term, uint64_t commit_term,
                     std::vector<uint64_t>* fresh);
  void CheckLeaderHas(const NodeView& leader, uint64_t index);
  void CheckPair(const NodeView& a, const NodeView& b);

  std::string violation_;
  std::map<uint64_t, uint64_t> leader_of_term_;
  std::map<uint64_t, uint64_t> seen_commit_;  // node -> commit index last observed
  std::vector<Committed> committed_;          // by index
  std::vector<Applied> applied_;              // by index
  uint64_t applied_max_ = 0;
  uint64_t max_commit_ = 0;
  uint64_t old_term_commits_ = 0;
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, Written> written_;
  std::map<uint64_t, Durable> durable_;
  // key -> (index, value) of every applied write, by index.
  std::map<std::string, std::vector<std::pair<uint64_t, std::string>>> writes_;
};

}  // namespace raftkv::raft::sim

#endif  // RAFTKV_RAFT_SIM_SAFETY_CHECKER_H_
