#include "raft/sim/safety_checker.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "raft/sim/kv_state_machine.h"

namespace raftkv::raft::sim {

#ifdef NDEBUG
constexpr bool kCoreChecksItself = false;
#else
constexpr bool kCoreChecksItself = true;
#endif

void SafetyChecker::Fail(std::string what) {
  if (violation_.empty()) violation_ = std::move(what);
}

void SafetyChecker::CheckInvariants(const std::vector<NodeView>& live) {
  for (const NodeView& v : live) {
    if (!ok()) return;
    if (absl::Status s = v.raft->CheckInvariants(); !s.ok()) {
      Fail(absl::StrCat("node ", v.id, ": CheckInvariants: ", s.ToString()));
    }
  }
}

void SafetyChecker::Observe(const std::vector<NodeView>& live, uint64_t touched) {
  if (!ok()) return;
  std::vector<const NodeView*> leaders, new_leaders;
  std::vector<uint64_t> fresh;  // indices newly known committed
  for (const NodeView& v : live) {
    const Raft& r = *v.raft;
    // Debug builds of the core check their invariants after every input
    // themselves (CHECK-failing); optimized builds are checked here.
    if (v.id == touched && !kCoreChecksItself) {
      if (absl::Status s = r.CheckInvariants(); !s.ok()) {
        return Fail(absl::StrCat("node ", v.id, ": CheckInvariants: ", s.ToString()));
      }
    }
    if (r.role() == Role::kLeader) {
      auto [it, inserted] = leader_of_term_.emplace(r.term(), v.id);
      if (it->second != v.id) {
        return Fail(absl::StrCat("Election Safety: nodes ", it->second, " and ", v.id,
                                 " are both leaders of term ", r.term()));
      }
      leaders.push_back(&v);
      if (inserted) new_leaders.push_back(&v);
    }
    const uint64_t commit = r.log().committed();
    uint64_t& seen = seen_commit_[v.id];
    if (commit > seen) {
      RecordCommitted(v, seen + 1, commit, &fresh);
      if (r.role() == Role::kLeader && r.log().TermOrZero(commit) < r.term()) {
        ++old_term_commits_;
      }
    }
    seen = commit;
    max_commit_ = std::max(max_commit_, commit);
    if (!ok()) return;
  }
  // Leader Completeness: a new leader holds everything committed in an
  // earlier term; a sitting leader holds what was committed meanwhile.
  for (const NodeView* l : new_leaders) {
    const uint64_t lo = std::max<uint64_t>(1, l->raft->log().FirstIndex() - 1);
    for (uint64_t i = lo; i < committed_.size() && ok(); ++i) {
      if (committed_[i].known && committed_[i].commit_term < l->raft->term()) {
        CheckLeaderHas(*l, i);
      }
    }
  }
  for (uint64_t i : fresh) {
    for (const NodeView* l : leaders) {
      if (committed_[i].commit_term < l->raft->term() &&
          i + 1 >= l->raft->log().FirstIndex()) {
        CheckLeaderHas(*l, i);
      }
    }
  }
}

void SafetyChecker::CheckLeaderHas(const NodeView& leader, uint64_t index) {
  const Committed& c = committed_[index];
  const RaftLog& log = leader.raft->log();
  const uint64_t term = log.TermOrZero(index);
  if (index > log.LastIndex() || term != c.term) {
    Fail(absl::StrCat("Leader Completeness: entry ", index, " (term ", c.term,
                      ") was committed in term ", c.commit_term, " but leader ",
                      leader.id, " of term ", leader.raft->term(),
                      index > log.LastIndex()
                          ? absl::StrCat(" has no entry there (last index ",
                                         log.LastIndex(), ")")
                          : absl::StrCat(" holds term ", term, " there")));
  }
}

void SafetyChecker::RecordCommitted(const NodeView& v, uint64_t lo, uint64_t hi,
                                    std::vector<uint64_t>* fresh) {
  const RaftLog& log = v.raft->log();
  const uint64_t term = v.raft->term();
  const uint64_t first = log.FirstIndex();
  if (lo < first) {
    // Covered by the node's snapshot: only its last entry's term is known.
    NoteCommitted(v.id, first - 1, log.TermOrZero(first - 1), term, fresh);
    lo = first;
  }
  // Terms suffice: Log Matching (checked separately) makes entries with the
  // same index and term identical, and OnApply compares contents.
  for (uint64_t i = lo; i <= hi && ok(); ++i) {
    auto t = log.Term(i);
    if (!t.ok()) {
      return Fail(absl::StrCat("node ", v.id, ": committed entry ", i,
                               " unreadable: ", t.status().ToString()));
    }
    NoteCommitted(v.id, i, *t, term, fresh);
  }
}

void SafetyChecker::NoteCommitted(uint64_t node, uint64_t index, uint64_t term,
                                  uint64_t commit_term, std::vector<uint64_t>* fresh) {
  if (index == 0) return;
  if (committed_.size() <= index) committed_.resize(index + 1);
  Committed& c = committed_[index];
  if (!c.known) {
    c.known = true;
    c.term = term;
    c.commit_term = commit_term;
    fresh->push_back(index);
  } else {
    if (c.term != term) {
      return Fail(absl::StrCat("State Machine Safety: node ", node, " committed entry ",
                               index, " of term ", term, " but term ", c.term,
                               " was committed there before"));
    }
    if (commit_term < c.commit_term) {
      c.commit_term = commit_term;
      fresh->push_back(index);
    }
  }
}

void SafetyChecker::OnPersist(uint64_t node, const std::vector<raftpb::Entry>& entries,
                              const MemoryLog& log) {
  if (!ok()) return;
  for (size_t k = 0; k < entries.size(); ++k) {
    const raftpb::Entry& e = entries[k];
    uint64_t prev_term;
    if (k > 0) {
      prev_term = entries[k - 1].term();
    } else {
      auto t = log.Term(e.index() - 1);
      if (!t.ok()) {
        return Fail(absl::StrCat("node ", node, ": no entry before persisted entry ",
                                 e.index(), ": ", t.status().ToString()));
      }
      prev_term = *t;
    }
    if (prev_term > e.term()) {
      return Fail(absl::StrCat("node ", node, ": terms decrease at index ", e.index()));
    }
    const Written w{EntryHash(e), prev_term};
    auto [it, inserted] = written_.emplace(std::make_pair(e.index(), e.term()), w);
    if (!inserted && (it->second.hash != w.hash || it->second.prev_term != w.prev_term)) {
      return Fail(absl::StrCat(
          "Log Matching: node ", node, " wrote entry ", e.index(), " of term ", e.term(),
          it->second.hash != w.hash ? " with different content than another log"
                                    : absl::StrCat(" after term ", prev_term,
                                                   " where another log has term ",
                                                   it->second.prev_term)));
    }
  }
}

void SafetyChecker::OnHardState(uint64_t node, const raftpb::HardState& hs) {
  if (!ok()) return;
  auto [it, inserted] = durable_.emplace(node, Durable{});
  Durable& d = it->second;
  if (hs.term() < d.term) {
    return Fail(absl::StrCat("node ", node, ": persisted term went back from ", d.term,
                             " to ", hs.term()));
  }
  if (hs.term() == d.term && d.vote != 0 && hs.vote() != d.vote) {
    return Fail(absl::StrCat("node ", node, ": voted for ", d.vote, " and then ",
                             hs.vote(), " in term ", hs.term()));
  }
  if (hs.commit() < d.commit) {
    return Fail(absl::StrCat("node ", node, ": persisted commit went back from ",
                             d.commit, " to ", hs.commit()));
  }
  d = Durable{hs.term(), hs.vote(), hs.commit()};
}

void SafetyChecker::OnApply(uint64_t node, const raftpb::Entry& e, uint64_t chain_after) {
  if (!ok()) return;
  const uint64_t i = e.index();
  if (applied_.size() <= i) applied_.resize(i + 1);
  Applied& a = applied_[i];
  const uint64_t hash = EntryHash(e);
  if (a.known) {
    if (a.term != e.term() || a.hash != hash) {
      return Fail(absl::StrCat("State Machine Safety: node ", node, " applied entry ", i,
                               " of term ", e.term(), " but another node applied term ",
                               a.term, " there"));
    }
    if (a.chain != chain_after) {
      return Fail(absl::StrCat("State Machine Safety: node ", node, "'s state at index ",
                               i, " differs from another node's"));
    }
  } else {
    if (i != applied_max_ + 1) {
      return Fail(absl::StrCat("node ", node, " applied entry ", i,
                               " but no node applied ", applied_max_ + 1));
    }
    a = Applied{true, e.term(), hash, chain_after};
    applied_max_ = i;
    std::string key, value;
    if (e.type() == raftpb::ENTRY_NORMAL && KvStateMachine::DecodePut(e.data(), &key, &value)) {
      writes_[key].emplace_back(i, value);
    }
  }
  if (i < committed_.size() && committed_[i].known && committed_[i].term != e.term()) {
    Fail(absl::StrCat("State Machine Safety: node ", node, " applied entry ", i,
                      " of term ", e.term(), " but term ", committed_[i].term,
                      " was committed there"));
  }
}

void SafetyChecker::OnSnapshotInstalled(uint64_t node, const raftpb::SnapshotMetadata& meta,
                                        uint64_t image_applied, uint64_t image_chain,
                                        const raftpb::ConfState& image_conf) {
  if (!ok()) return;
  const uint64_t i = meta.index();
  if (image_applied != i) {
    return Fail(absl::StrCat("node ", node, ": snapshot at ", i,
                             " holds a state machine at ", image_applied));
  }
  if (image_conf.SerializeAsString() != meta.conf_state().SerializeAsString()) {
    return Fail(absl::StrCat("node ", node, ": snapshot at ", i,
                             " has membership ", ConfStateString(meta.conf_state()),
                             " but its image has ", ConfStateString(image_conf)));
  }
  if (i < applied_.size() && applied_[i].known &&
      (applied_[i].chain != image_chain || applied_[i].term != meta.term())) {
    return Fail(absl::StrCat("State Machine Safety: node ", node,
                             " installed a snapshot at ", i,
                             " whose state differs from what nodes applied"));
  }
  if (i > applied_max_) {
    Fail(absl::StrCat("node ", node, " installed a snapshot at ", i,
                      " past every applied index (", applied_max_, ")"));
  }
}

void SafetyChecker::OnReadState(uint64_t node, const std::string& context, uint64_t index,
                                uint64_t min_index) {
  if (!ok()) return;
  if (index < min_index) {
    Fail(absl::StrCat("Linearizability: read ", context, " on node ", node,
                      " got read index ", index, " but entry ", min_index,
                      " was applied before the read was requested"));
  } else if (index > max_commit_) {
    Fail(absl::StrCat("read ", context, " on node ", node, " got read index ", index,
                      " past every commit index seen (", max_commit_, ")"));
  }
}

void SafetyChecker::OnReadServed(uint64_t node, const std::string& key,
                                 const std::optional<std::string>& value, uint64_t applied) {
  if (!ok()) return;
  std::optional<std::string> want;
  auto it = writes_.find(key);
  if (it != writes_.end()) {
    const auto& w = it->second;
    auto pos = std::upper_bound(w.begin(), w.end(), applied,
                                [](uint64_t i, const auto& p) { return i < p.first; });
    if (pos != w.begin()) want = std::prev(pos)->second;
  }
  if (want != value) {
    Fail(absl::StrCat("Linearizability: node ", node, " at applied index ", applied,
                      " read ", key, "=", value.value_or("<none>"),
                      " but the committed history has ", want.value_or("<none>")));
  }
}

void SafetyChecker::CheckLogs(const std::vector<NodeView>& nodes) {
  for (size_t a = 0; a < nodes.size() && ok(); ++a) {
    for (size_t b = a + 1; b < nodes.size() && ok(); ++b) CheckPair(nodes[a], nodes[b]);
  }
}

void SafetyChecker::CheckPair(const NodeView& a, const NodeView& b) {
  const MemoryLog& la = *a.log;
  const MemoryLog& lb = *b.log;
  const uint64_t lo = std::max(la.FirstIndex(), lb.FirstIndex());
  const uint64_t hi = std::min(la.LastIndex(), lb.LastIndex());
  if (lo > hi) return;
  // The highest index where both hold the same term: everything from lo up
  // to it must be identical.
  uint64_t match = 0;
  for (uint64_t i = hi; i >= lo; --i) {
    if (*la.Term(i) == *lb.Term(i)) {
      match = i;
      break;
    }
  }
  if (match == 0) return;
  auto ea = la.Entries(lo, match + 1, UINT64_MAX);
  auto eb = lb.Entries(lo, match + 1, UINT64_MAX);
  if (!ea.ok() || !eb.ok() || ea->size() != eb->size()) {
    return Fail(absl::StrCat("logs of ", a.id, " and ", b.id, " unreadable"));
  }
  for (size_t k = 0; k < ea->size(); ++k) {
    const auto& x = (*ea)[k];
    const auto& y = (*eb)[k];
    if (x.term() != y.term() || EntryHash(x) != EntryHash(y)) {
      return Fail(absl::StrCat("Log Matching: nodes ", a.id, " and ", b.id,
                               " agree on entry ", match, " (term ", *la.Term(match),
                               ") but differ at ", x.index()));
    }
  }
}

}  // namespace raftkv::raft::sim
