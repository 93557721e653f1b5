// The simulator's driver (the loop of raft.h for every node, crashes
// included) and its chaos and calm phases.
#include "raft/sim/simulator.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "raft/membership.h"
#include "raft/sim/simulator_impl.h"

namespace raftkv::raft::sim {

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
    base_.commit_notices = Chance(0.5);
  }
  if (o_.max_msg_bytes != 0) base_.max_msg_bytes = o_.max_msg_bytes;
  if (base_.max_msg_bytes == 1 && base_.max_inflight_msgs < 4) base_.max_inflight_msgs = 4;
  base_.unsafe_commit_old_terms = o_.unsafe_commit_old_terms;
  base_.async_storage_writes = o_.async_writes;
  res_.config = absl::StrCat(
      "election=", base_.election_ticks, " heartbeat=", base_.heartbeat_ticks,
      " max_msg_bytes=", base_.max_msg_bytes, " inflight=", base_.max_inflight_msgs,
      " committed_bytes=", base_.max_committed_bytes_per_ready,
      " pre_vote=", base_.pre_vote, " check_quorum=", base_.check_quorum,
      " reads=", base_.read_mode == ReadMode::kLeaseBased ? "lease" : "safe",
      base_.async_storage_writes ? " async_writes" : "",
      base_.commit_notices ? "" : " no_commit_notices");
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
  views_dirty_ = true;
  Log("node ", n.id, " boots: term=", n.raft->term(), " applied=", n.sm.applied(),
      " log=[", n.log->FirstIndex(), ",", n.log->LastIndex(), "] ",
      ConfStateString(n.raft->conf_state()));
}

void Simulator::Crash(Node& n, const char* why) {
  Log("node ", n.id, " crashes ", why);
  n.raft.reset();
  views_dirty_ = true;
  n.waiting_reads.clear();
  n.writes.clear();  // queued writes never reached the disk
  for (auto it = reads_.begin(); it != reads_.end();) {
    it = it->second.node == n.id ? reads_.erase(it) : std::next(it);
  }
  Trace(0xC0 + n.id);
}

void Simulator::Retire(Node& n) {
  if (n.raft) Crash(n, "(retired)");
  n.retired = true;
  Log("node ", n.id, " retired");
}

void Simulator::SendAll(std::vector<raftpb::Message> msgs) {
  net_.Send(std::move(msgs), now_);
}

// Step 2 of a Ready: entries (replacing the stored suffix), then hard state.
bool Simulator::Persist(Node& n, const std::vector<raftpb::Entry>& entries,
                        const std::optional<raftpb::HardState>& hs) {
  if (!entries.empty()) {
    if (absl::Status s = n.log->Append(entries); !s.ok()) {
      checker_.Fail(absl::StrCat("node ", n.id, ": Append: ", s.ToString()));
      return false;
    }
    checker_.OnPersist(n.id, entries, *n.log);
  }
  if (hs) {
    n.log->SetHardState(*hs);
    checker_.OnHardState(n.id, *hs);
  }
  return ok();
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
    if (crash_at) {
      ++res_.crashes;
      ++res_.crashes_in_ready;
    }
    if (crash_at == 1) return Crash(n, "before persisting its Ready");
    // Asynchronous writes: the write is queued, except a snapshot's and, at
    // random, another Ready's, written here once the queue has drained (the
    // drained writes' and this Ready's Persisted() follow Advance).
    const bool queued = o_.async_writes && !rd.snapshot && !Chance(0.1);
    std::vector<std::pair<uint64_t, uint64_t>> persisted;
    if (queued) {
      QueueWrite(n, rd);
      if (crash_at == 2) return Crash(n, "after queuing its write");
    } else {
      if (o_.async_writes) FlushWrites(n, &persisted);
      if (!ok()) return;
      // 2. One durable write: snapshot, entries, hard state.
      if (rd.snapshot) {
        if (absl::Status s = n.log->ApplySnapshot(*rd.snapshot); !s.ok()) {
          return checker_.Fail(absl::StrCat("node ", n.id, ": ApplySnapshot: ", s.ToString()));
        }
      }
      if (!Persist(n, rd.entries, rd.hard_state)) return;
      if (crash_at == 2) return Crash(n, "after persisting its Ready");
      if (rd.snapshot) {
        auto sm = KvStateMachine::Parse(rd.snapshot->data());
        if (!sm.ok()) {
          return checker_.Fail(absl::StrCat("node ", n.id, ": ", sm.status().ToString()));
        }
        n.sm = std::move(*sm);
        ++res_.snapshots_installed;
        Log("node ", n.id, " installs the snapshot at ", rd.snapshot->metadata().index());
        checker_.OnSnapshotInstalled(n.id, rd.snapshot->metadata(), n.sm.applied(),
                                     n.sm.chain(), n.sm.conf());
      }
      // 3. Messages that promise what was just written.
      SendAll(std::move(rd.persisted_messages));
      if (o_.async_writes && !rd.entries.empty()) {
        persisted.emplace_back(rd.entries.back().index(), rd.entries.back().term());
      }
    }
    if (crash_at == 3) return Crash(n, "before applying");
    // 4. Apply, then answer reads.
    for (const auto& e : rd.committed_entries) Apply(n, e);
    // The input that released these reads may have raised the commit index
    // they carry (Persisted() on a lone voter's leader): the checker sees it
    // first (no PRNG draw: traces are unchanged).
    if (!rd.read_states.empty()) checker_.Observe(LiveViews(), 0);
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
    for (const auto& [index, term] : persisted) n.raft->Persisted(index, term);
    ServeReads(n);
  }
}

void Simulator::Apply(Node& n, const raftpb::Entry& e) {
  if (!ok()) return;
  // The state machine is persisted at once: a crash must find the entry in
  // the durable log too, or the node restarts applied past its log.
  auto stored = n.log->Term(e.index());
  if (!stored.ok() || *stored != e.term()) {
    return checker_.Fail(absl::StrCat("node ", n.id, " applies entry ", e.index(), " of term ",
                                      e.term(), " that its durable log does not hold (",
                                      stored.ok() ? absl::StrCat("term ", *stored)
                                                  : stored.status().ToString(),
                                      ")"));
  }
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
    for (uint64_t id : n.sm.conf().voters()) was_member_.insert(id);
    for (uint64_t id : n.sm.conf().learners()) was_member_.insert(id);
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

const std::vector<NodeView>& Simulator::LiveViews() {
  if (views_dirty_) {
    views_.clear();
    for (const auto& [id, n] : nodes_) {
      if (n->raft) views_.push_back(NodeView{id, n->raft.get(), n->log.get()});
    }
    views_dirty_ = false;
  }
  return views_;
}

void Simulator::Observe(const Node* touched) {
  if (!ok()) return;
  ++res_.events;
  const std::vector<NodeView>& live = LiveViews();
  checker_.Observe(live, touched != nullptr && touched->raft ? touched->id : 0);
  if (chaos_ && ok()) Adversary(live);
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

void Simulator::StepOnce(bool chaos) {
  chaos_ = chaos;
  ++now_;
  ++res_.steps;
  while (ok()) {
    auto parcel = net_.Next(now_);
    if (!parcel) break;
    Deliver(parcel->msg());
  }
  ReportFailures();
  if (o_.async_writes) {
    for (uint64_t id : Ids(true)) {
      if (ok()) CompleteWrites(*nodes_[id]);
    }
  }
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
    if (ok() && Chance(o_.hostile)) Hostile();
  }
  if (ok() && Chance(o_.propose)) Propose();
  if (ok() && Chance(o_.read)) Read();
  if (ok() && Chance(o_.compact)) Compact();
  if (ok()) checker_.CheckInvariants(LiveViews());
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
  // Servers whose removal committed are shut down: left running, one that
  // never learnt of its removal keeps campaigning, and without pre-vote or
  // CheckQuorum nothing stops it from deposing leaders (§4.2.3).
  const KvStateMachine& committed = Furthest();
  for (auto& [id, n] : nodes_) {
    if (!n->retired && was_member_.count(id) && !IsMember(committed.conf(), id)) Retire(*n);
  }
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

Result Simulator::Run() {
  ChooseConfig();
  for (int i = 1; i <= o_.nodes; ++i) {
    bootstrap_.add_voters(i);
    was_member_.insert(i);
  }
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

Result RunSimulation(const Options& options) { return Simulator(options).Run(); }

std::vector<std::tuple<const char*, double, double>> FaultKnobs(const Options& o,
                                                                const Options& d) {
  return {{"drop", o.drop, d.drop},
          {"duplicate", o.duplicate, d.duplicate},
          {"partition", o.partition, d.partition},
          {"crash", o.crash, d.crash},
          {"crash_in_ready", o.crash_in_ready, d.crash_in_ready},
          {"crash_in_write", o.crash_in_write, d.crash_in_write},
          {"isolate_leader_on_event", o.isolate_leader_on_event, d.isolate_leader_on_event},
          {"conf_change", o.conf_change, d.conf_change},
          {"transfer", o.transfer, d.transfer},
          {"compact", o.compact, d.compact},
          {"hostile", o.hostile, d.hostile}};
}

std::string ReplayCommand(const Options& o) {
  std::string cmd = absl::StrCat("bazel run //raft/sim:simulate -- --seed=", o.seed,
                                 " --nodes=", o.nodes, " --steps=", o.steps);
  if (o.unsafe_commit_old_terms) absl::StrAppend(&cmd, " --unsafe_commit_old_terms");
  if (o.empty_joiners) absl::StrAppend(&cmd, " --empty_joiners");
  if (!o.vary_config) absl::StrAppend(&cmd, " --vary_config=false");
  if (o.async_writes) absl::StrAppend(&cmd, " --async_writes");
  if (o.max_write_delay != Options().max_write_delay) {
    absl::StrAppend(&cmd, " --max_write_delay=", o.max_write_delay);
  }
  if (o.max_msg_bytes != 0) absl::StrAppend(&cmd, " --max_msg_bytes=", o.max_msg_bytes);
  const Options d;
  for (const auto& [name, mine, def] : FaultKnobs(o, d)) {
    if (mine != def) absl::StrAppend(&cmd, " --", name, "=", mine);
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
      r.writes ? absl::StrCat(" writes=", r.writes, " (queued<=", r.max_queued_writes,
                              ", crashes in writes ", r.crashes_in_write, ")")
               : "",
      r.old_term_commits ? absl::StrCat(" old_term_commits=", r.old_term_commits) : "",
      r.hostile ? absl::StrCat(" hostile=", r.hostile, " (refused ", r.hostile_refused, ")")
                : "");
}

}  // namespace raftkv::raft::sim
