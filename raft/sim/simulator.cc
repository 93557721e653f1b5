#include "raft/sim/simulator.h"

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "raft/membership.h"
#include "raft/memory_log.h"
#include "raft/raft.h"
#include "raft/sim/kv_state_machine.h"
#include "raft/sim/network.h"
#include "raft/sim/safety_checker.h"

namespace raftkv::raft::sim {
namespace {

constexpr int kKeys = 5;
constexpr uint64_t kMaxBacklog = 48;  // uncommitted entries a leader accepts

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
  void Apply(Node& n, const raftpb::Entry& e);
  void ServeReads(Node& n);
  void SendAll(std::vector<raftpb::Message> msgs);
  void Observe();
  void Adversary(const std::vector<NodeView>& live);
  void AfterInput(Node& n) {
    Drain(n);
    Observe();
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
  std::vector<Network::Failure> down_failures_;
  struct LeaderMark {
    uint64_t term = 0;
    uint64_t commit = 0;
  };
  std::map<uint64_t, LeaderMark> leader_marks_;  // sends to nodes that are down
  std::set<std::string> answered_reads_;
  std::set<std::string> markers_;  // liveness markers of the current calm phase
  bool marker_applied_ = false;
  Result res_;
};

std::vector<uint64_t> Simulator::Ids(bool live) const {
  std::vector<uint64_t> out;
  for (const auto& [id, n] : nodes_) {
    if (n->retired) continue;
    if (live == (n->raft != nullptr)) out.push_back(id);
  }
  return out;
}

uint64_t Simulator::Leader() const {
  uint64_t leader = 0, term = 0;
  for (const auto& [id, n] : nodes_) {
    if (n->raft && n->raft->role() == Role::kLeader && n->raft->term() >= term) {
      leader = id;
      term = n->raft->term();
    }
  }
  return leader;
}

// The state machine that applied the most: its membership is the latest
// committed one.
const KvStateMachine& Simulator::Furthest() const {
  const KvStateMachine* best = nullptr;
  for (const auto& [id, n] : nodes_) {
    if (best == nullptr || n->sm.applied() > best->applied()) best = &n->sm;
  }
  return *best;
}

void Simulator::ChooseConfig() {
  base_ = Config();
  if (o_.vary_config) {
    base_.election_ticks = Chance(0.7) ? 10 : 5;
    base_.heartbeat_ticks = (base_.election_ticks == 10 && Chance(0.3)) ? 2 : 1;
    const uint64_t msg_bytes[] = {1, 100, 1 << 20};  // 1: one entry per append
    base_.max_msg_bytes = msg_bytes[Uniform(0, 2)];
    // One entry per append with one append in flight replicates too slowly
    // for the liveness bound.
    const size_t inflight[] = {1, 2, 4, 256};
    base_.max_inflight_msgs = inflight[Uniform(base_.max_msg_bytes == 1 ? 2 : 0, 3)];
    base_.max_committed_bytes_per_ready = Chance(0.3) ? 1 : 16 << 20;
    base_.pre_vote = Chance(0.85);
    base_.check_quorum = Chance(0.85);
    if (base_.check_quorum && Chance(0.25)) base_.read_mode = ReadMode::kLeaseBased;
  }
  base_.unsafe_commit_old_terms = o_.unsafe_commit_old_terms;
  res_.config = absl::StrCat(
      "election=", base_.election_ticks, " heartbeat=", base_.heartbeat_ticks,
      " max_msg_bytes=", base_.max_msg_bytes, " inflight=", base_.max_inflight_msgs,
      " committed_bytes=", base_.max_committed_bytes_per_ready,
      " pre_vote=", base_.pre_vote, " check_quorum=", base_.check_quorum,
      " reads=", base_.read_mode == ReadMode::kLeaseBased ? "lease" : "safe");
}

Config Simulator::MakeConfig(const Node& n) const {
  Config c = base_;
  c.id = n.id;
  c.seed = Mix(o_.seed, Mix(n.id, n.boots));
  c.applied = n.sm.applied();
  return c;
}

void Simulator::AddNode(uint64_t id, const raftpb::ConfState& cs) {
  auto n = std::make_unique<Node>();
  n->id = id;
  n->log = std::make_unique<MemoryLog>(cs);
  n->sm = KvStateMachine(cs);
  Node& ref = *n;
  nodes_[id] = std::move(n);
  Boot(ref);
}

void Simulator::Boot(Node& n) {
  // A crash between writing a snapshot to the log and installing its image
  // leaves the state machine behind the log: reload it from the snapshot.
  if (n.sm.applied() + 1 < n.log->FirstIndex()) {
    auto snap = n.log->GetSnapshot();
    auto sm = snap.ok() ? KvStateMachine::Parse(snap->data()) : snap.status();
    if (!sm.ok()) return checker_.Fail(absl::StrCat("node ", n.id, ": ", sm.status().ToString()));
    n.sm = std::move(*sm);
    Log("node ", n.id, " reloads its state machine from the snapshot at ", n.sm.applied());
  }
  ++n.boots;
  auto r = Raft::Create(MakeConfig(n), n.log.get());
  if (!r.ok()) {
    return checker_.Fail(absl::StrCat("node ", n.id, ": restart failed: ",
                                      r.status().ToString()));
  }
  n.raft = std::move(*r);
  Log("node ", n.id, " boots: term=", n.raft->term(), " applied=", n.sm.applied(),
      " log=[", n.log->FirstIndex(), ",", n.log->LastIndex(), "] ",
      ConfStateString(n.raft->conf_state()));
}

void Simulator::Crash(Node& n, const char* why) {
  Log("node ", n.id, " crashes ", why);
  n.raft.reset();
  n.waiting_reads.clear();
  for (auto it = reads_.begin(); it != reads_.end();) {
    it = it->second.node == n.id ? reads_.erase(it) : std::next(it);
  }
  ++res_.crashes;
  Trace(0xC0 + n.id);
}

void Simulator::Retire(Node& n) {
  if (n.raft) Crash(n, "(retired)");
  n.retired = true;
  Log("node ", n.id, " retired");
}

void Simulator::SendAll(std::vector<raftpb::Message> msgs) {
  // Messages to one peer keep their order; across peers the core's order
  // follows hash-map iteration, which is not reproducible between runs.
  std::stable_sort(msgs.begin(), msgs.end(),
                   [](const raftpb::Message& a, const raftpb::Message& b) {
                     return a.to() < b.to();
                   });
  for (auto& m : msgs) net_.Send(std::move(m), now_);
}

void Simulator::Drain(Node& n) {
  while (ok() && n.raft && n.raft->HasReady()) {
    Ready rd = n.raft->GetReady();
    if (rd.soft_state) {
      Log("node ", n.id, " is ", RoleName(rd.soft_state->role), " in term ",
          n.raft->term(), " (leader ", rd.soft_state->leader, ")");
    }
    // 1. Messages that may leave before the write.
    SendAll(std::move(rd.messages));
    const int crash_at = (chaos_ && Chance(o_.crash_in_ready)) ? Uniform(1, 4) : 0;
    if (crash_at) ++res_.crashes_in_ready;
    if (crash_at == 1) return Crash(n, "before persisting its Ready");
    // 2. One durable write: snapshot, entries, hard state.
    if (rd.snapshot) {
      if (absl::Status s = n.log->ApplySnapshot(*rd.snapshot); !s.ok()) {
        return checker_.Fail(absl::StrCat("node ", n.id, ": ApplySnapshot: ", s.ToString()));
      }
    }
    if (!rd.entries.empty()) {
      if (absl::Status s = n.log->Append(rd.entries); !s.ok()) {
        return checker_.Fail(absl::StrCat("node ", n.id, ": Append: ", s.ToString()));
      }
      checker_.OnPersist(n.id, rd.entries, *n.log);
    }
    if (rd.hard_state) {
      n.log->SetHardState(*rd.hard_state);
      checker_.OnHardState(n.id, *rd.hard_state);
    }
    if (crash_at == 2) return Crash(n, "after persisting its Ready");
    if (rd.snapshot) {
      auto sm = KvStateMachine::Parse(rd.snapshot->data());
      if (!sm.ok()) return checker_.Fail(absl::StrCat("node ", n.id, ": ", sm.status().ToString()));
      n.sm = std::move(*sm);
      ++res_.snapshots_installed;
      Log("node ", n.id, " installs the snapshot at ", rd.snapshot->metadata().index());
      checker_.OnSnapshotInstalled(n.id, rd.snapshot->metadata(), n.sm.applied(),
                                   n.sm.chain(), n.sm.conf());
    }
    // 3. Messages that promise what was just written.
    SendAll(std::move(rd.persisted_messages));
    if (crash_at == 3) return Crash(n, "before applying");
    // 4. Apply, then answer reads.
    for (const auto& e : rd.committed_entries) Apply(n, e);
    for (const ReadState& rs : rd.read_states) {
      auto it = reads_.find(rs.context);
      if (it == reads_.end() || it->second.node != n.id) {
        return checker_.Fail(absl::StrCat(
            "node ", n.id, " got a ReadState for ",
            answered_reads_.count(rs.context) ? "an already answered read "
                                              : "a read it does not have ",
            rs.context));
      }
      checker_.OnReadState(n.id, rs.context, rs.index, it->second.min_index);
      n.waiting_reads.push_back({rs.index, it->second.key});
      answered_reads_.insert(rs.context);
      reads_.erase(it);
    }
    for (const auto& ctx : rd.dropped_reads) reads_.erase(ctx);
    if (crash_at == 4) return Crash(n, "before Advance");
    n.raft->Advance(rd);
    ServeReads(n);
  }
}

void Simulator::Apply(Node& n, const raftpb::Entry& e) {
  if (!ok()) return;
  if (absl::Status s = n.sm.Apply(e); !s.ok()) {
    return checker_.Fail(absl::StrCat("node ", n.id, ": ", s.ToString()));
  }
  checker_.OnApply(n.id, e, n.sm.chain());
  std::string key, value;
  if (!markers_.empty() && KvStateMachine::DecodePut(e.data(), &key, &value) &&
      key == "live" && markers_.count(value)) {
    marker_applied_ = true;
  }
  if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
    Log("node ", n.id, " applies conf change at ", e.index(), ": ",
        ConfStateString(n.sm.conf()));
  }
}

void Simulator::ServeReads(Node& n) {
  auto& w = n.waiting_reads;
  for (auto it = w.begin(); it != w.end();) {
    if (n.sm.applied() < it->index) {
      ++it;
      continue;
    }
    checker_.OnReadServed(n.id, it->key, n.sm.Get(it->key), n.sm.applied());
    ++res_.reads_served;
    it = w.erase(it);
  }
}

void Simulator::Observe() {
  if (!ok()) return;
  ++res_.events;
  std::vector<NodeView> live;
  for (const auto& [id, n] : nodes_) {
    if (n->raft) live.push_back(NodeView{id, n->raft.get(), n->log.get()});
  }
  checker_.Observe(live);
  if (chaos_ && ok()) Adversary(live);
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

void Simulator::CheckLogs() {
  std::vector<NodeView> all;
  for (const auto& [id, n] : nodes_) all.push_back(NodeView{id, n->raft.get(), n->log.get()});
  checker_.CheckLogs(all);
}

void Simulator::Deliver(const raftpb::Message& m) {
  auto it = nodes_.find(m.to());
  if (it == nodes_.end() || !it->second->raft) {
    // The transport cannot connect to a node that is down.
    if (m.type() == raftpb::MSG_SNAPSHOT || m.type() == raftpb::MSG_APPEND) {
      down_failures_.push_back({m.from(), m.to(), m.type() == raftpb::MSG_SNAPSHOT});
    }
    return;
  }
  Node& n = *it->second;
  Trace(Mix(Mix(m.type(), m.from() << 8 | m.to()), Mix(m.term(), m.index())));
  if (o_.verbose) {
    Log("  ", m.from(), "->", m.to(), " ", raftpb::MessageType_Name(m.type()), " term=",
        m.term(), " index=", m.index(), " log_term=", m.log_term(),
        " entries=", m.entries_size(), " commit=", m.commit(),
        m.reject() ? absl::StrCat(" reject hint=", m.reject_hint(), "/", m.reject_term()) : "",
        m.has_snapshot() ? absl::StrCat(" snapshot@", m.snapshot().metadata().index()) : "");
  }
  if (absl::Status s = n.raft->Step(m); !s.ok()) {
    return checker_.Fail(absl::StrCat("node ", n.id, ": Step(",
                                      raftpb::MessageType_Name(m.type()), " from ",
                                      m.from(), "): ", s.ToString()));
  }
  AfterInput(n);
  if (m.type() == raftpb::MSG_SNAPSHOT) {
    // The transport finished streaming the snapshot.
    auto from = nodes_.find(m.from());
    if (from != nodes_.end() && from->second->raft && ok()) {
      from->second->raft->ReportSnapshot(m.to(), true);
      AfterInput(*from->second);
    }
  }
}

void Simulator::ReportFailures() {
  std::vector<Network::Failure> failures = net_.TakeFailures();
  failures.insert(failures.end(), down_failures_.begin(), down_failures_.end());
  down_failures_.clear();
  for (const Network::Failure& f : failures) {
    auto it = nodes_.find(f.from);
    if (!ok() || it == nodes_.end() || !it->second->raft) continue;
    if (f.snapshot) {
      it->second->raft->ReportSnapshot(f.to, false);
    } else {
      it->second->raft->ReportUnreachable(f.to);
    }
    Trace(Mix(0xFA, f.from << 8 | f.to));
    AfterInput(*it->second);
  }
}

void Simulator::TickAll() {
  ++res_.ticks;
  // A lease is safe only while clocks drift less than the configured bound.
  const double skip = base_.read_mode == ReadMode::kLeaseBased || !chaos_ ? 0 : o_.tick_skip;
  for (uint64_t id : Ids(true)) {
    if (!ok()) return;
    if (Chance(skip)) continue;
    nodes_[id]->raft->Tick();
    AfterInput(*nodes_[id]);
  }
}

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
  if (cs.learners_size() > 0) ops.insert(ops.end(), {1, 1});
  if (voters >= 2 && (voters >= o_.nodes || Chance(0.3))) ops.insert(ops.end(), {2, 2});
  if (cs.learners_size() > 0) ops.push_back(3);
  if (ops.empty()) return;
  raftpb::ConfChange cc;
  switch (Pick(ops)) {
    case 0:
      cc.set_type(raftpb::CONF_ADD_LEARNER);
      cc.set_node_id(next_id_++);
      AddNode(cc.node_id(), o_.empty_joiners ? raftpb::ConfState() : bootstrap_);
      break;
    case 1:
      cc.set_type(raftpb::CONF_ADD_VOTER);
      cc.set_node_id(Pick(std::vector<uint64_t>(cs.learners().begin(), cs.learners().end())));
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
  const uint64_t target = Pick(targets);
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

void Simulator::StepOnce(bool chaos) {
  chaos_ = chaos;
  ++now_;
  ++res_.steps;
  while (ok()) {
    auto m = net_.Next(now_);
    if (!m) break;
    Deliver(*m);
  }
  ReportFailures();
  if (ok() && now_ % o_.steps_per_tick == 0) TickAll();
  if (chaos) {
    if (ok() && !net_.partitioned() && Chance(o_.partition)) Partition();
    if (ok() && net_.partitioned() && Chance(o_.heal)) {
      net_.Heal();
      Log("network heals");
    }
    if (ok() && Chance(o_.crash)) CrashSome();
    if (ok() && Chance(o_.restart)) RestartSome();
    if (ok() && Chance(o_.conf_change)) ChangeMembership();
    if (ok() && Chance(o_.transfer)) Transfer();
  }
  if (ok() && Chance(o_.propose)) Propose();
  if (ok() && Chance(o_.read)) Read();
  if (ok() && Chance(o_.compact)) Compact();
  if (ok() && now_ % 64 == 0) CheckLogs();
  if (!ok() && res_.violation_step == 0) res_.violation_step = now_;
}

void Simulator::Chaos(int steps) {
  Log("chaos for ", steps, " steps");
  net_.set_faults(NetworkFaults{o_.drop, o_.duplicate, o_.long_delay, o_.max_delay});
  for (int i = 0; i < steps && ok(); ++i) StepOnce(true);
}

void Simulator::Calm() {
  ++res_.calm_phases;
  chaos_ = false;
  Log("calm: the network heals and crashed nodes restart");
  net_.Heal();
  net_.set_faults(NetworkFaults{0, 0, 0, o_.max_delay});
  for (uint64_t id : Ids(false)) {
    if (!ok()) return;
    ++res_.restarts;
    Boot(*nodes_[id]);
    AfterInput(*nodes_[id]);
  }
  markers_.clear();
  marker_applied_ = false;
  const uint64_t start = res_.ticks;
  uint64_t marker_term = 0;
  while (ok() && !marker_applied_) {
    if (res_.ticks - start > static_cast<uint64_t>(o_.liveness_ticks)) {
      checker_.Fail(absl::StrCat("Liveness: no proposal committed within ",
                                 o_.liveness_ticks, " ticks after the network healed"));
      DumpNodes();
      break;
    }
    // Propose a marker once per leader term.
    const uint64_t leader = Leader();
    if (leader != 0 && nodes_[leader]->raft->term() != marker_term) {
      const std::string value = absl::StrCat("m", ++marker_seq_);
      if (nodes_[leader]->raft->Propose(KvStateMachine::EncodePut("live", value)).ok()) {
        marker_term = nodes_[leader]->raft->term();
        markers_.insert(value);
        Log("node ", leader, " proposes liveness marker ", value);
      }
      AfterInput(*nodes_[leader]);
    }
    StepOnce(false);
  }
  if (!ok()) return;
  res_.max_liveness_ticks = std::max<int>(res_.max_liveness_ticks, res_.ticks - start);
  Log("liveness shown after ", res_.ticks - start, " ticks");
  markers_.clear();
  for (int i = 0; i < o_.calm_extra && ok(); ++i) StepOnce(false);
  if (!ok()) return;
  CheckLogs();
  // Retire nodes outside the committed membership once nothing is pending.
  const uint64_t leader = Leader();
  const KvStateMachine& sm = Furthest();
  if (leader != 0 && nodes_[leader]->raft->conf_state().SerializeAsString() ==
                         sm.conf().SerializeAsString()) {
    for (auto& [id, n] : nodes_) {
      if (!n->retired && !IsMember(sm.conf(), id)) Retire(*n);
    }
  }
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

Result Simulator::Run() {
  ChooseConfig();
  for (int i = 1; i <= o_.nodes; ++i) bootstrap_.add_voters(i);
  next_id_ = o_.nodes + 1;
  for (int i = 1; i <= o_.nodes && ok(); ++i) AddNode(i, bootstrap_);
  while (ok() && res_.steps < static_cast<uint64_t>(o_.steps)) {
    const int left = o_.steps - static_cast<int>(res_.steps);
    Chaos(std::min<int>(left, Uniform(o_.chaos_min, o_.chaos_max)));
    if (ok()) Calm();
  }
  if (ok()) CheckLogs();
  res_.ok = ok();
  res_.violation = checker_.violation();
  if (!res_.ok && res_.violation_step == 0) res_.violation_step = now_;
  const NetworkStats& ns = net_.stats();
  res_.messages = ns.delivered;
  res_.dropped = ns.dropped;
  res_.duplicated = ns.duplicated;
  res_.cut = ns.cut;
  res_.leaders = checker_.leaders();
  res_.applied = checker_.applied_max();
  res_.old_term_commits = checker_.old_term_commits();
  Trace(res_.applied);
  Trace(res_.leaders);
  return res_;
}

}  // namespace

Result RunSimulation(const Options& options) { return Simulator(options).Run(); }

std::string ReplayCommand(const Options& o) {
  std::string cmd = absl::StrCat("bazel run //raft/sim:simulate -- --seed=", o.seed,
                                 " --nodes=", o.nodes, " --steps=", o.steps);
  if (o.unsafe_commit_old_terms) absl::StrAppend(&cmd, " --unsafe_commit_old_terms");
  if (o.empty_joiners) absl::StrAppend(&cmd, " --empty_joiners");
  if (!o.vary_config) absl::StrAppend(&cmd, " --vary_config=false");
  if (o.isolate_leader_on_event != Options().isolate_leader_on_event) {
    absl::StrAppend(&cmd, " --isolate_leader_on_event=", o.isolate_leader_on_event);
  }
  absl::StrAppend(&cmd, " --verbose");
  return cmd;
}

std::string Summary(const Result& r) {
  return absl::StrCat(
      r.ok ? "ok" : "VIOLATION", " steps=", r.steps, " ticks=", r.ticks,
      " events=", r.events, " msgs=", r.messages, " dropped=", r.dropped,
      " dup=", r.duplicated, " cut=", r.cut, " leaders=", r.leaders,
      " applied=", r.applied, " proposals=", r.proposals, " reads=", r.reads_served,
      "/", r.reads_requested, " conf_changes=", r.conf_changes,
      " transfers=", r.transfers, " compactions=", r.compactions,
      " snapshots=", r.snapshots_installed, " crashes=", r.crashes,
      " (in ready ", r.crashes_in_ready, ") restarts=", r.restarts,
      " partitions=", r.partitions, " calm=", r.calm_phases,
      " liveness_ticks<=", r.max_liveness_ticks,
      r.old_term_commits ? absl::StrCat(" old_term_commits=", r.old_term_commits) : "");
}

}  // namespace raftkv::raft::sim
