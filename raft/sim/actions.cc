// The simulator's workload and faults: client requests (proposals, reads,
// membership changes, transfers), compaction, crashes, restarts and
// partitions, chosen by the PRNG; and the asynchronous writer, whose writes
// complete after random delays.
#include <algorithm>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "raft/membership.h"
#include "raft/sim/hostile_peer.h"
#include "raft/sim/simulator_impl.h"

namespace raftkv::raft::sim {

void Simulator::Propose() {
  const std::vector<uint64_t> live = Ids(true);
  if (live.empty()) return;
  const uint64_t leader = Leader();
  Node& n = *nodes_[leader != 0 && Chance(0.85) ? leader : Pick(live)];
  // Clients wait for acknowledgements: the uncommitted backlog stays bounded.
  if (n.raft->log().LastIndex() > n.raft->log().committed() + kMaxBacklog) return;
  std::vector<std::string> data;
  for (int k = Uniform(1, 3); k > 0; --k) {
    data.push_back(KvStateMachine::EncodePut(absl::StrCat("k", Uniform(0, kKeys - 1)),
                                             absl::StrCat("v", ++put_seq_)));
  }
  auto ids = n.raft->Propose(data);
  Trace(Mix(0x50, n.id));
  if (ids.ok()) {
    res_.proposals += data.size();
    Log("node ", n.id, " proposes ", absl::StrJoin(data, " "), " at ", ids->front().index);
  }
  AfterInput(n);
}

void Simulator::Read() {
  const std::vector<uint64_t> live = Ids(true);
  if (live.empty()) return;
  Node& n = *nodes_[Pick(live)];
  const std::string ctx = absl::StrCat("r", ++read_seq_);
  const std::string key = absl::StrCat("k", Uniform(0, kKeys - 1));
  const uint64_t min_index = checker_.applied_max();
  Trace(Mix(0x52, n.id));
  if (n.raft->ReadIndex(ctx).ok()) {
    ++res_.reads_requested;
    reads_[ctx] = ReadRecord{n.id, key, min_index};
    Log("node ", n.id, " reads ", key, " (", ctx, ", acknowledged up to ", min_index, ")");
  }
  AfterInput(n);
}

void Simulator::ChangeMembership() {
  const uint64_t leader = Leader();
  if (leader == 0) return;
  Node& l = *nodes_[leader];
  const raftpb::ConfState cs = l.raft->conf_state();
  const int voters = cs.voters_size();
  const size_t running = Ids(true).size() + Ids(false).size();
  std::vector<int> ops;  // 0 add learner, 1 promote, 2 remove voter, 3 remove learner
  if (cs.voters_size() + cs.learners_size() < o_.nodes + 2 && running < o_.nodes + 3u) {
    ops.push_back(0);
  }
  // Promote only a learner that caught up with the commit index (as etcd
  // requires): a voter far behind stalls every commit until it catches up.
  std::vector<uint64_t> ready;
  for (const PeerStatus& p : l.raft->GetStatus().progress) {
    if (IsLearner(cs, p.id) && p.match >= l.raft->log().committed()) ready.push_back(p.id);
  }
  if (!ready.empty()) ops.insert(ops.end(), {1, 1});
  if (voters >= 2 && (voters >= o_.nodes || Chance(0.3))) ops.insert(ops.end(), {2, 2});
  if (cs.learners_size() > 0) ops.push_back(3);
  if (ops.empty()) return;
  raftpb::ConfChange cc;
  switch (Pick(ops)) {
    case 0:
      cc.set_type(raftpb::CONF_ADD_LEARNER);
      cc.set_node_id(next_id_++);
      AddNode(cc.node_id(),
              o_.empty_joiners || Chance(0.5) ? raftpb::ConfState() : bootstrap_);
      break;
    case 1:
      cc.set_type(raftpb::CONF_ADD_VOTER);
      cc.set_node_id(Pick(ready));
      break;
    case 2:
      cc.set_type(raftpb::CONF_REMOVE_NODE);
      cc.set_node_id(Pick(std::vector<uint64_t>(cs.voters().begin(), cs.voters().end())));
      break;
    default:
      cc.set_type(raftpb::CONF_REMOVE_NODE);
      cc.set_node_id(Pick(std::vector<uint64_t>(cs.learners().begin(), cs.learners().end())));
      break;
  }
  auto r = l.raft->ProposeConfChange(cc);
  Trace(Mix(0xCC, Mix(cc.type(), cc.node_id())));
  if (r.ok()) {
    ++res_.conf_changes;
    Log("node ", l.id, " proposes ", raftpb::ConfChangeType_Name(cc.type()), " ",
        cc.node_id(), " at ", r->index);
  } else if (cc.type() == raftpb::CONF_ADD_LEARNER) {
    Retire(*nodes_[cc.node_id()]);  // never became a member
  }
  AfterInput(l);
}

void Simulator::Transfer() {
  const uint64_t leader = Leader();
  if (leader == 0) return;
  Node& l = *nodes_[leader];
  std::vector<uint64_t> targets;
  for (uint64_t v : l.raft->conf_state().voters()) {
    if (v != leader) targets.push_back(v);
  }
  if (targets.empty()) return;
  // 0: the core picks the most up-to-date voter.
  const uint64_t target = Chance(0.25) ? 0 : Pick(targets);
  Trace(Mix(0x7F, target));
  if (l.raft->TransferLeadership(target).ok()) {
    ++res_.transfers;
    Log("node ", leader, " transfers leadership to ", target);
  }
  AfterInput(l);
}

void Simulator::Compact() {
  const std::vector<uint64_t> live = Ids(true);
  if (live.empty()) return;
  Node& n = *nodes_[Pick(live)];
  const uint64_t index = n.sm.applied();
  if (index < n.log->FirstIndex() || index > n.log->LastIndex()) return;
  if (absl::Status s = n.log->Compact(index, n.sm.conf(), n.sm.Serialize()); !s.ok()) {
    return checker_.Fail(absl::StrCat("node ", n.id, ": Compact: ", s.ToString()));
  }
  ++res_.compactions;
  Trace(Mix(0xC7, Mix(n.id, index)));
  Log("node ", n.id, " compacts its log up to ", index);
  Observe();
}

void Simulator::CrashSome() {
  const std::vector<uint64_t> live = Ids(true);
  if (live.empty()) return;
  const uint64_t leader = Leader();
  ++res_.crashes;
  Crash(*nodes_[leader != 0 && Chance(0.4) ? leader : Pick(live)], "");
  Observe();
}

void Simulator::RestartSome() {
  const std::vector<uint64_t> down = Ids(false);
  if (down.empty()) return;
  Node& n = *nodes_[Pick(down)];
  ++res_.restarts;
  Trace(Mix(0xB0, n.id));
  Boot(n);
  if (n.raft) AfterInput(n);
}

void Simulator::QueueWrite(Node& n, Ready& rd) {
  if (rd.entries.empty() && !rd.hard_state && rd.persisted_messages.empty()) return;
  // FIFO: a write never completes before the ones queued ahead of it.
  uint64_t due = now_ + Uniform(0, o_.max_write_delay);
  if (!n.writes.empty()) due = std::max(due, n.writes.back().due);
  n.writes.push_back(
      Node::Write{rd.entries, rd.hard_state, std::move(rd.persisted_messages), due});
  res_.max_queued_writes = std::max<uint64_t>(res_.max_queued_writes, n.writes.size());
  Trace(Mix(0xD1, Mix(n.id, due)));
}

// The writer finishes the due writes at the head of the queue (at random
// several as one synced write); then their acknowledgements go out and the
// core learns, in queue order, what is durable.
void Simulator::CompleteWrites(Node& n) {
  while (ok() && n.raft && !n.writes.empty() && n.writes.front().due <= now_) {
    size_t k = 1;
    if (Chance(0.5)) {
      while (k < n.writes.size() && n.writes[k].due <= now_) ++k;
    }
    std::vector<Node::Write> batch(std::make_move_iterator(n.writes.begin()),
                                   std::make_move_iterator(n.writes.begin() + k));
    n.writes.erase(n.writes.begin(), n.writes.begin() + k);
    for (const Node::Write& w : batch) {
      if (!Persist(n, w.entries, w.hard_state)) return;
    }
    res_.writes += k;
    Trace(Mix(0xD2, Mix(n.id, k)));
    const int crash_at = (chaos_ && Chance(o_.crash_in_write)) ? Uniform(1, 2) : 0;
    if (crash_at) {
      ++res_.crashes;
      ++res_.crashes_in_write;
    }
    if (crash_at == 1) return Crash(n, "after a write, before its acknowledgements");
    for (Node::Write& w : batch) SendAll(std::move(w.persisted_messages));
    if (crash_at == 2) return Crash(n, "after a write, before Persisted()");
    for (const Node::Write& w : batch) {
      if (w.entries.empty()) continue;
      n.raft->Persisted(w.entries.back().index(), w.entries.back().term());
    }
    AfterInput(n);
  }
}

// Before a Ready written synchronously (inside GetReady..Advance, where no
// input may be fed): every queued write, in order; the Persisted() reports
// are returned for after Advance.
void Simulator::FlushWrites(Node& n, std::vector<std::pair<uint64_t, uint64_t>>* persisted) {
  if (n.writes.empty()) return;
  Trace(Mix(0xD3, Mix(n.id, n.writes.size())));
  res_.writes += n.writes.size();
  for (Node::Write& w : n.writes) {
    if (!Persist(n, w.entries, w.hard_state)) return;
    SendAll(std::move(w.persisted_messages));
    if (w.entries.empty()) continue;
    persisted->emplace_back(w.entries.back().index(), w.entries.back().term());
  }
  n.writes.clear();
}

void Simulator::Partition() {
  std::vector<uint64_t> all = Ids(true);
  for (uint64_t id : Ids(false)) all.push_back(id);
  std::sort(all.begin(), all.end());
  if (all.size() < 2) return;
  std::shuffle(all.begin(), all.end(), rng_);
  const uint64_t leader = Leader();
  std::string what;
  switch (Uniform(0, 4)) {
    case 0:  // isolate the leader
      if (leader != 0) {
        all.erase(std::find(all.begin(), all.end(), leader));
        net_.Split({leader}, all);
        what = absl::StrCat("isolates leader ", leader);
        break;
      }
      [[fallthrough]];
    case 1:  // isolate one node
      net_.Split({all[0]}, std::vector<uint64_t>(all.begin() + 1, all.end()));
      what = absl::StrCat("isolates ", all[0]);
      break;
    case 2: {  // a minority against the rest
      const size_t k = std::max<size_t>(1, (all.size() - 1) / 2);
      std::vector<uint64_t> a(all.begin(), all.begin() + k), b(all.begin() + k, all.end());
      net_.Split(a, b);
      what = absl::StrCat("splits {", absl::StrJoin(a, ","), "} from {",
                          absl::StrJoin(b, ","), "}");
      break;
    }
    case 3: {  // a bridge: all[0] talks to both sides, which do not talk
      if (all.size() < 3) return;
      const size_t k = Uniform(1, all.size() - 2);
      std::vector<uint64_t> a(all.begin() + 1, all.begin() + 1 + k),
          b(all.begin() + 1 + k, all.end());
      net_.Split(a, b);
      what = absl::StrCat("bridge ", all[0], " between {", absl::StrJoin(a, ","),
                          "} and {", absl::StrJoin(b, ","), "}");
      break;
    }
    default:  // a few one-way links
      for (int k = Uniform(1, 3); k > 0; --k) {
        net_.Cut(all[0], all[1]);
        std::shuffle(all.begin(), all.end(), rng_);
      }
      what = absl::StrCat("cuts links ", net_.DescribeCuts());
      break;
  }
  ++res_.partitions;
  Trace(Mix(0xAA, HashBytes(what)));
  Log("network ", what);
}

// Faults timed to the moments that matter most: right after a node wins an
// election, or right after a leader advances its commit index, the leader
// is cut off (what it has not replicated yet stays behind, uncommitted).
void Simulator::Adversary(const std::vector<NodeView>& live) {
  for (const NodeView& v : live) {
    if (v.raft->role() != Role::kLeader) continue;
    LeaderMark& mark = leader_marks_[v.id];
    const LeaderMark now{v.raft->term(), v.raft->log().committed()};
    const bool event = now.term != mark.term || now.commit != mark.commit;
    mark = now;
    if (event && Chance(o_.isolate_leader_on_event)) {
      std::vector<uint64_t> others;
      for (const auto& [id, n] : nodes_) {
        if (id != v.id && !n->retired) others.push_back(id);
      }
      net_.Heal();
      net_.Split({v.id}, others);
      ++res_.partitions;
      Trace(Mix(0xAD, v.id));
      Log("network isolates leader ", v.id, " (term ", now.term, ", commit ", now.commit, ")");
    }
  }
}

// A hostile peer's message (hostile_peer.h), stepped straight into a live
// node. One the core must refuse has to leave it exactly as it was.
void Simulator::Hostile() {
  const std::vector<uint64_t> live = Ids(true);
  if (live.empty()) return;
  const uint64_t leader = Leader();  // gets the messages only a leader must refuse
  Node& n = *nodes_[leader != 0 && Chance(0.4) ? leader : Pick(live)];
  std::vector<uint64_t> others = {next_id_ + 100};  // never a member
  for (const auto& [id, node] : nodes_) {
    if (id != n.id) others.push_back(id);
  }
  const HostileMessage h = MakeHostileMessage(rng_, *n.raft, Pick(others),
                                              base_.read_mode != ReadMode::kLeaseBased);
  ++res_.hostile;
  Trace(Mix(0x48, Mix(h.msg.type(), Mix(h.msg.term(), h.msg.index()))));
  Log("node ", n.id, " gets a hostile message (", h.kind, "): ", h.msg.ShortDebugString());
  auto state = [](const Raft& r) {
    const Status st = r.GetStatus();
    return absl::StrCat("term=", st.term, " vote=", st.vote, " leader=", st.leader, " ",
                        RoleName(st.role), " commit=", st.commit, " log=[", st.first_index, ",",
                        st.last_index, "] ready=", r.HasReady());
  };
  const std::string before = state(*n.raft);
  const uint64_t rejected = n.raft->GetStatus().rejected_messages;
  const absl::Status s = n.raft->Step(h.msg);
  if (h.must_refuse) {
    const std::string after = state(*n.raft);
    if (s.ok() || after != before || n.raft->GetStatus().rejected_messages != rejected + 1) {
      return checker_.Fail(absl::StrCat(
          "node ", n.id, " took a hostile message it must refuse (", h.kind,
          "): ", h.msg.ShortDebugString(), ": Step: ", s.ToString(), "; before: ", before,
          "; after: ", after));
    }
    ++res_.hostile_refused;
  }
  AfterInput(n);
}

void Simulator::DumpNodes() {
  for (const auto& [id, n] : nodes_) {
    if (!n->raft) {
      Log("node ", id, n->retired ? " retired" : " down");
      continue;
    }
    const Status st = n->raft->GetStatus();
    Log("node ", id, " ", RoleName(st.role), " term=", st.term, " vote=", st.vote,
        " leader=", st.leader, " commit=", st.commit, " applied=", st.applied,
        " log=[", st.first_index, ",", st.last_index, "] transferee=", st.lead_transferee,
        " ", ConfStateString(st.conf_state));
    for (const PeerStatus& p : st.progress) {
      Log("    peer ", p.id, " match=", p.match, " next=", p.next, " ",
          ProgressStateName(p.state), " active=", p.recent_active);
    }
  }
}

}  // namespace raftkv::raft::sim
