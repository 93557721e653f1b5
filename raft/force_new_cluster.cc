#include "raft/force_new_cluster.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "raft/membership.h"

namespace raftkv::raft {

absl::StatusOr<ForcedLog> PlanForceNewCluster(const LogReader& log, uint64_t self,
                                              uint64_t applied) {
  absl::StatusOr<InitialState> st = log.GetInitialState();
  if (!st.ok()) return st.status();
  ForcedLog out;
  const uint64_t last = log.LastIndex();
  out.commit = std::min(std::max({st->hard_state.commit(), applied, st->snapshot.index()}), last);
  out.dropped = last - out.commit;

  // The membership as of the commit index, and the highest term seen.
  ConfigLog configs;
  configs.Reset(st->snapshot.index(), st->snapshot.conf_state());
  uint64_t max_term = std::max(st->hard_state.term(), st->snapshot.term());
  for (uint64_t lo = log.FirstIndex(); lo <= last;) {
    absl::StatusOr<std::vector<raftpb::Entry>> ents = log.Entries(lo, last + 1, 4 << 20);
    if (!ents.ok()) return ents.status();
    for (const raftpb::Entry& e : *ents) {
      max_term = std::max(max_term, e.term());
      if (e.index() > out.commit || e.type() != raftpb::ENTRY_CONF_CHANGE) continue;
      absl::StatusOr<raftpb::ConfChange> cc = DecodeConfChange(e);
      // The core skips a broken or result-less entry alike (replication.cc).
      if (cc.ok() && cc->has_result()) configs.Append(e.index(), cc->result());
    }
    lo = ents->back().index() + 1;
  }
  out.old_conf = configs.Latest();
  if (!IsVoter(out.old_conf, self)) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", self, " is not a voter of the membership as of its commit index ",
                     out.commit, " (", ConfStateString(out.old_conf), ")"));
  }

  const uint64_t term = max_term + 1;
  std::vector<uint64_t> others(out.old_conf.learners().begin(), out.old_conf.learners().end());
  for (uint64_t v : out.old_conf.voters()) {
    if (v != self) others.push_back(v);
  }
  raftpb::ConfState conf = out.old_conf;
  uint64_t index = out.commit;
  for (uint64_t id : others) {
    raftpb::ConfChange cc;
    cc.set_type(raftpb::CONF_REMOVE_NODE);
    cc.set_node_id(id);
    absl::StatusOr<raftpb::ConfState> next = ApplyConfChange(conf, cc);
    if (!next.ok()) return next.status();  // not reached: self stays a voter
    conf = *next;
    *cc.mutable_result() = conf;
    raftpb::Entry& e = out.entries.emplace_back();
    e.set_term(term);
    e.set_index(++index);
    e.set_type(raftpb::ENTRY_CONF_CHANGE);
    e.set_data(cc.SerializeAsString());
  }
  if (out.entries.empty()) {
    raftpb::Entry& e = out.entries.emplace_back();  // an empty entry: the new term in the log
    e.set_term(term);
    e.set_index(++index);
  }
  out.hard_state.set_term(term);
  out.hard_state.set_commit(index);
  return out;
}

}  // namespace raftkv::raft
