// Fuzz target: peer messages into the Raft core. The input drives a
// cluster of four cores (voters 1-3; node 4 starts empty, outside the
// membership, and can be added) over MemoryLogs, per the driver contract of
// raft.h, as the simulator does (raft/sim/simulator.h) but with every choice
// taken from the input:
//   - the network: which queued message is delivered next, duplicated or
//     dropped (any order, any loss);
//   - clients: proposals, reads, membership changes, leadership transfers;
//     ticks, crashes and restarts, log compaction (then MSG_SNAPSHOT);
//   - hostile peers: messages of raft/sim/hostile_peer.h (which a core must
//     refuse, or may take without harm), messages whose every field is
//     chosen by the input around the receiver's state, and raw bytes parsed
//     as a raftpb::Message (the wire format of a MessageBatch's messages).
// Checked after every step: no crash; Raft::CheckInvariants() on every live
// core; a message Step refuses changes nothing; per node, the persisted term
// never decreases, a vote is never changed within a term, the persisted
// commit never decreases, and an entry once committed never changes.
// Until a forged message is accepted (a well-formed forgery is
// indistinguishable from a real peer's message; only the transport's peer
// authentication keeps those out), all of the SafetyChecker's cross-node
// properties too (Figure 3 of the Raft paper, linearizable reads).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_input.h"
#include "glog/logging.h"
#include "proto/raft.pb.h"
#include "raft/memory_log.h"
#include "raft/membership.h"
#include "raft/raft.h"
#include "raft/sim/hostile_peer.h"
#include "raft/sim/kv_state_machine.h"
#include "raft/sim/safety_checker.h"

namespace raftkv::raft {
namespace {

using fuzz::FuzzInput;
using raftpb::Message;
using sim::KvStateMachine;

constexpr uint64_t kNodes = 4;

struct Node {
  uint64_t id = 0;
  std::unique_ptr<MemoryLog> log;  // durable
  KvStateMachine sm;               // durable (persisted with its applied index)
  bool sm_valid = true;            // false after a forged snapshot's image
  std::unique_ptr<Raft> raft;      // null while down
  int boots = 0;
  std::map<uint64_t, uint64_t> committed;  // index -> term, as observed committed here
  struct Waiting {
    uint64_t index;
    std::string key;
  };
  std::vector<Waiting> waiting_reads;
};

struct ReadRecord {
  uint64_t node;
  std::string key;
  uint64_t min_index;
};

// Debugging switches: set and not empty.
bool EnvSet(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

std::string StateOf(const Raft& r) {
  const Status s = r.GetStatus();
  return absl::StrCat("term=", s.term, " vote=", s.vote, " leader=", s.leader,
                      " role=", RoleName(s.role), " commit=", s.commit, " applied=", s.applied,
                      " log=[", s.first_index, ",", s.last_index, "] last_term=",
                      r.log().LastTerm(), " ", ConfStateString(s.conf_state),
                      " transferee=", s.lead_transferee, " ready=", r.HasReady());
}

class Cluster {
 public:
  explicit Cluster(FuzzInput* in) : in_(*in) {
    const uint8_t f = in_.U8();
    base_.election_ticks = 3 + f % 3;
    base_.heartbeat_ticks = 1;
    base_.pre_vote = (f & 0x08) == 0;
    base_.check_quorum = (f & 0x10) == 0;
    if (base_.check_quorum && (f & 0x20)) base_.read_mode = ReadMode::kLeaseBased;
    base_.max_msg_bytes = (f & 0x40) ? 1 : 1 << 20;
    base_.commit_notices = (f & 0x80) == 0;
    // RAFTKV_FUZZ_PLANTED_BUG=1: the core's deliberately broken commit rule
    // (Config::unsafe_commit_old_terms), to show the checks catch it (the
    // figure8 seed does).
    base_.unsafe_commit_old_terms = EnvSet("RAFTKV_FUZZ_PLANTED_BUG");
    raftpb::ConfState voters;
    for (uint64_t id = 1; id <= 3; ++id) voters.add_voters(id);
    for (uint64_t id = 1; id <= kNodes; ++id) {
      Node& n = nodes_[id];
      n.id = id;
      // Node 4 starts like a server started with --join: no membership.
      const raftpb::ConfState cs = id <= 3 ? voters : raftpb::ConfState();
      n.log = std::make_unique<MemoryLog>(cs);
      n.sm = KvStateMachine(cs);
      Boot(n);
    }
  }

  bool Step() {
    if (in_.exhausted() || !checker_.ok()) return false;
    const uint8_t op = in_.U8();
    if (trace_) std::cerr << "op " << op % 20 << "\n";
    switch (op % 20) {
      case 0: case 1: case 2: case 3: case 4: case 5:
        Deliver(in_.U8(), /*keep=*/false);
        break;
      case 6:
        Deliver(in_.U8(), /*keep=*/true);
        break;
      case 7:
        if (!pending_.empty()) pending_.erase(pending_.begin() + in_.U8() % pending_.size());
        break;
      case 8: case 9:
        Tick(in_.Range(0, kNodes));
        break;
      case 10:
        Propose();
        break;
      case 11:
        Read();
        break;
      case 12:
        CrashOrRestart(Pick());
        break;
      case 13:
        Compact(Pick());
        break;
      case 14:
        ConfChange();
        break;
      case 15:
        Transfer();
        break;
      case 16:
        Hostile();
        break;
      case 17: case 18:
        Forge(Structured());
        break;
      default: {
        Message m;
        if (m.ParseFromString(in_.Bytes(96))) Forge(m);
        break;
      }
    }
    Observe();
    return checker_.ok();
  }

  // The end of the input: the durable logs must still match pairwise.
  void Finish() {
    if (forged_ || !checker_.ok()) return;
    std::vector<sim::NodeView> all;
    for (auto& [id, n] : nodes_) all.push_back({id, n.raft.get(), n.log.get()});
    checker_.CheckLogs(all);
  }

  const sim::SafetyChecker& checker() const { return checker_; }

  // For a look at what an input did (RAFTKV_FUZZ_SUMMARY=1).
  std::string Summary() const {
    std::string out = absl::StrCat("terms with a leader: ", checker_.leaders(),
                                   ", max commit: ", checker_.max_commit(),
                                   ", applied: ", checker_.applied_max(),
                                   forged_ ? ", forged" : "");
    for (const auto& [id, n] : nodes_) {
      absl::StrAppend(&out, "\n  node ", id, ": ", n.raft ? StateOf(*n.raft) : "down");
    }
    return out;
  }

 private:
  uint64_t Pick() { return 1 + in_.U8() % kNodes; }
  uint64_t Leader() const {
    uint64_t leader = 0, term = 0;
    for (const auto& [id, n] : nodes_) {
      if (n.raft && n.raft->role() == Role::kLeader && n.raft->term() >= term) {
        leader = id;
        term = n.raft->term();
      }
    }
    return leader;
  }
  // The leader, or the node the input names.
  Node* Target() {
    const uint64_t l = Leader();
    const uint8_t k = in_.U8();
    Node& n = nodes_[k < 192 && l != 0 ? l : 1 + k % kNodes];
    return n.raft ? &n : nullptr;
  }

  Config MakeConfig(const Node& n) const {
    Config c = base_;
    c.id = n.id;
    c.seed = sim::Mix(n.id, n.boots);
    c.applied = n.sm_valid ? n.sm.applied() : n.log->FirstIndex() - 1;
    return c;
  }

  void Boot(Node& n) {
    // A crash between writing a snapshot and installing its image leaves the
    // state machine behind the log: reload it from the snapshot.
    if (n.sm_valid && n.sm.applied() + 1 < n.log->FirstIndex()) {
      auto snap = n.log->GetSnapshot();
      auto sm = snap.ok() ? KvStateMachine::Parse(snap->data()) : snap.status();
      if (sm.ok()) {
        n.sm = std::move(*sm);
      } else {
        CHECK(forged_) << "node " << n.id << ": its own snapshot does not parse: " << sm.status();
        n.sm_valid = false;
      }
    }
    ++n.boots;
    auto r = Raft::Create(MakeConfig(n), n.log.get());
    CHECK(r.ok()) << "node " << n.id << " cannot restart: " << r.status();
    n.raft = std::move(*r);
  }

  void Drain(Node& n) {
    while (checker_.ok() && n.raft && n.raft->HasReady()) {
      Ready rd = n.raft->GetReady();
      for (auto& m : rd.messages) pending_.push_back(std::move(m));
      if (rd.snapshot) {
        CHECK(n.log->ApplySnapshot(*rd.snapshot).ok()) << "node " << n.id;
      }
      if (!rd.entries.empty()) {
        absl::Status s = n.log->Append(rd.entries);
        CHECK(s.ok()) << "node " << n.id << ": Append: " << s;
        if (!forged_) checker_.OnPersist(n.id, rd.entries, *n.log);
      }
      if (rd.hard_state) {
        n.log->SetHardState(*rd.hard_state);
        checker_.OnHardState(n.id, *rd.hard_state);  // per node: sound under forgery too
      }
      if (rd.snapshot) InstallImage(n, *rd.snapshot);
      for (auto& m : rd.persisted_messages) pending_.push_back(std::move(m));
      for (const auto& e : rd.committed_entries) Apply(n, e);
      if (!forged_ && !rd.read_states.empty()) checker_.Observe(Views(), 0);
      for (const ReadState& rs : rd.read_states) {
        auto it = reads_.find(rs.context);
        if (it == reads_.end()) continue;  // a forged read's, or one answered before
        if (!forged_) checker_.OnReadState(n.id, rs.context, rs.index, it->second.min_index);
        n.waiting_reads.push_back({rs.index, it->second.key});
        reads_.erase(it);
      }
      for (const auto& ctx : rd.dropped_reads) reads_.erase(ctx);
      n.raft->Advance(rd);
      ServeReads(n);
    }
  }

  void InstallImage(Node& n, const raftpb::Snapshot& snap) {
    auto sm = KvStateMachine::Parse(snap.data());
    if (!sm.ok() || sm->applied() != snap.metadata().index()) {
      // Only a forged snapshot carries an image that is not of its index (a
      // node stages the image its leader streams for that index).
      CHECK(forged_) << "node " << n.id << ": a snapshot from a peer holds another image";
      n.sm_valid = false;  // the node's state machine is lost
      return;
    }
    n.sm = std::move(*sm);
    n.sm_valid = true;
    if (!forged_) {
      checker_.OnSnapshotInstalled(n.id, snap.metadata(), n.sm.applied(), n.sm.chain(),
                                   n.sm.conf());
    }
  }

  void Apply(Node& n, const raftpb::Entry& e) {
    auto stored = n.log->Term(e.index());
    CHECK(stored.ok() && *stored == e.term())
        << "node " << n.id << " applies entry " << e.index() << " its log does not hold";
    if (!n.sm_valid) return;
    // Committed entries come in order, whatever the peers sent.
    absl::Status s = n.sm.Apply(e);
    CHECK(s.ok()) << "node " << n.id << ": " << s;
    if (!forged_) checker_.OnApply(n.id, e, n.sm.chain());
  }

  void ServeReads(Node& n) {
    auto& w = n.waiting_reads;
    for (auto it = w.begin(); it != w.end();) {
      if (!n.sm_valid || n.sm.applied() < it->index) {
        ++it;
        continue;
      }
      if (!forged_) checker_.OnReadServed(n.id, it->key, n.sm.Get(it->key), n.sm.applied());
      it = w.erase(it);
    }
  }

  const std::vector<sim::NodeView>& Views() {
    views_.clear();
    for (auto& [id, n] : nodes_) {
      if (n.raft) views_.push_back({id, n.raft.get(), n.log.get()});
    }
    return views_;
  }

  // After every input: drain, then check every live node.
  void Observe() {
    for (auto& [id, n] : nodes_) Drain(n);
    if (!forged_) checker_.Observe(Views(), 0);
    for (auto& [id, n] : nodes_) {
      if (!n.raft) continue;
      absl::Status s = n.raft->CheckInvariants();
      CHECK(s.ok()) << "node " << id << ": " << s;
      CheckCommitted(n);
    }
  }

  // An entry this node saw committed keeps its term for as long as the node
  // holds it (a snapshot covering it must agree at its own index).
  void CheckCommitted(Node& n) {
    const RaftLog& log = n.raft->log();
    const uint64_t first = log.FirstIndex(), commit = log.committed();
    for (auto it = n.committed.lower_bound(first - 1); it != n.committed.end(); ++it) {
      if (it->first > log.LastIndex()) {
        CHECK(false) << "node " << n.id << " lost committed entry " << it->first
                     << " (its log ends at " << log.LastIndex() << ")";
      }
      absl::StatusOr<uint64_t> t = log.Term(it->first);
      CHECK(t.ok() && *t == it->second)
          << "node " << n.id << ": committed entry " << it->first << " of term " << it->second
          << " now has term " << (t.ok() ? absl::StrCat(*t) : t.status().ToString());
    }
    const uint64_t from = n.committed.empty() ? first : n.committed.rbegin()->first + 1;
    for (uint64_t i = std::max(from, first); i <= commit; ++i) {
      absl::StatusOr<uint64_t> t = log.Term(i);
      CHECK(t.ok()) << "node " << n.id << ": committed entry " << i << ": " << t.status();
      n.committed[i] = *t;
    }
  }

  void Deliver(uint8_t k, bool keep) {
    if (pending_.empty()) return;
    const size_t i = k % pending_.size();
    const Message m = pending_[i];
    if (!keep) pending_.erase(pending_.begin() + i);
    if (trace_) std::cerr << "  deliver " << m.ShortDebugString() << "\n";
    auto it = nodes_.find(m.to());
    if (it == nodes_.end() || !it->second.raft) {
      // The transport tells the sender it could not deliver.
      auto from = nodes_.find(m.from());
      if (from != nodes_.end() && from->second.raft) {
        if (m.type() == raftpb::MSG_SNAPSHOT) {
          from->second.raft->ReportSnapshot(m.to(), false);
        } else if (m.type() == raftpb::MSG_APPEND) {
          from->second.raft->ReportUnreachable(m.to());
        }
      }
      return;
    }
    (void)it->second.raft->Step(m);
    if (m.type() == raftpb::MSG_SNAPSHOT) {  // the transport reports it sent
      auto from = nodes_.find(m.from());
      if (from != nodes_.end() && from->second.raft) from->second.raft->ReportSnapshot(m.to(), true);
    }
  }

  void Tick(uint64_t which) {
    for (auto& [id, n] : nodes_) {
      if (n.raft && (which == 0 || which == id)) n.raft->Tick();
    }
  }

  void Propose() {
    Node* n = Target();
    if (n == nullptr) return;
    const std::string key(1, static_cast<char>('a' + in_.U8() % 3));
    (void)n->raft->Propose(KvStateMachine::EncodePut(key, absl::StrCat(++put_seq_)));
  }

  void Read() {
    Node* n = Target();
    if (n == nullptr) return;
    const std::string ctx = absl::StrCat("read-", ++read_seq_);
    const std::string key(1, static_cast<char>('a' + in_.U8() % 3));
    if (n->raft->ReadIndex(ctx).ok()) reads_[ctx] = {n->id, key, checker_.applied_max()};
  }

  void CrashOrRestart(uint64_t id) {
    Node& n = nodes_[id];
    if (trace_) std::cerr << "  node " << id << (n.raft ? " crashes" : " restarts") << "\n";
    if (n.raft) {
      n.raft.reset();
      n.waiting_reads.clear();
      for (auto it = reads_.begin(); it != reads_.end();) {
        it = it->second.node == id ? reads_.erase(it) : std::next(it);
      }
    } else {
      Boot(n);
    }
  }

  void Compact(uint64_t id) {
    Node& n = nodes_[id];
    if (!n.raft || !n.sm_valid) return;
    const uint64_t index = n.sm.applied();
    if (index < n.log->FirstIndex() || index > n.log->LastIndex()) return;
    CHECK(n.log->Compact(index, n.sm.conf(), n.sm.Serialize()).ok());
  }

  void ConfChange() {
    Node* n = Target();
    if (n == nullptr) return;
    raftpb::ConfChange cc;
    cc.set_type(static_cast<raftpb::ConfChangeType>(in_.U8() % 3));
    cc.set_node_id(Pick());
    (void)n->raft->ProposeConfChange(cc);
  }

  void Transfer() {
    Node* n = Target();
    if (n == nullptr) return;
    (void)n->raft->TransferLeadership(in_.Range(0, kNodes));
  }

  // A hostile peer's message (hostile_peer.h): refused ones must change
  // nothing; the rest are harmless, so every cross-node check still holds.
  void Hostile() {
    Node* n = Target();
    if (n == nullptr) return;
    std::mt19937_64 rng(in_.U64());
    const uint64_t from = n->id % kNodes + 1;
    const sim::HostileMessage h = sim::MakeHostileMessage(
        rng, *n->raft, in_.Bool() ? from : 9, base_.read_mode != ReadMode::kLeaseBased);
    const std::string before = StateOf(*n->raft);
    const uint64_t rejected = n->raft->GetStatus().rejected_messages;
    const absl::Status s = n->raft->Step(h.msg);
    if (h.must_refuse) {
      CHECK(!s.ok()) << "node " << n->id << " took a hostile message it must refuse (" << h.kind
                     << "): " << h.msg.ShortDebugString();
      CHECK_EQ(StateOf(*n->raft), before) << h.msg.ShortDebugString();
      CHECK_EQ(n->raft->GetStatus().rejected_messages, rejected + 1);
    }
  }

  // A value around the receiver's state, or the edges of the range.
  uint64_t Around(const Raft& r) {
    switch (in_.U8() % 12) {
      case 0: return 0;
      case 1: return 1;
      case 2: return r.term();
      case 3: return r.term() + 1;
      case 4: return r.term() > 0 ? r.term() - 1 : 0;
      case 5: return r.log().committed();
      case 6: return r.log().LastIndex();
      case 7: return r.log().LastIndex() + 1;
      case 8: return r.log().FirstIndex() - 1;
      case 9: return kMaxTerm;
      case 10: return UINT64_MAX;
      default: return in_.Range(0, 12);
    }
  }

  // A message whose every field the input picks, around the receiver.
  std::pair<uint64_t, Message> Structured() {
    const uint64_t to = Pick();
    Node& n = nodes_[to];
    Message m;
    if (!n.raft) return {to, m};
    const Raft& r = *n.raft;
    m.set_type(static_cast<raftpb::MessageType>(in_.Range(0, 13)));
    const uint8_t ids = in_.U8();
    m.set_from(ids % 8 < 6 ? 1 + ids % kNodes : ids % 8 == 6 ? 0 : 9);
    m.set_to(ids & 0x80 ? Pick() : to);
    m.set_term(Around(r));
    m.set_log_term(Around(r));
    m.set_index(Around(r));
    m.set_commit(Around(r));
    const uint8_t f = in_.U8();
    m.set_reject(f & 1);
    m.set_commit_only(f & 2);
    if (f & 4) {
      m.set_reject_hint(Around(r));
      m.set_reject_term(Around(r));
    }
    if (f & 8) m.set_read_round(Around(r));
    if (f & 16) m.set_context(in_.Bool() ? "transfer" : absl::StrCat("read-", in_.Range(0, 9)));
    for (int k = (f >> 5) % 4, i = 1; k > 0; --k, ++i) {
      raftpb::Entry* e = m.add_entries();
      e->set_index(in_.Bool() ? m.index() + i : Around(r));
      e->set_term(in_.Bool() ? m.term() : Around(r));
      if (in_.U8() % 4 == 0) {
        e->set_type(raftpb::ENTRY_CONF_CHANGE);
        raftpb::ConfChange cc;
        cc.set_type(static_cast<raftpb::ConfChangeType>(in_.U8() % 3));
        cc.set_node_id(Pick());
        *cc.mutable_result() = r.conf_state();
        e->set_data(cc.SerializeAsString());
      } else {
        e->set_data(KvStateMachine::EncodePut("a", "forged"));
      }
    }
    if (m.type() == raftpb::MSG_SNAPSHOT || in_.U8() % 8 == 0) {
      auto* meta = m.mutable_snapshot()->mutable_metadata();
      meta->set_index(Around(r));
      meta->set_term(Around(r));
      *meta->mutable_conf_state() = r.conf_state();
    }
    return {to, m};
  }
  void Forge(const std::pair<uint64_t, Message>& p) { Forge(p.first, p.second); }
  void Forge(const Message& m) { Forge(Pick(), m); }

  // Any message into node `to`: refused ones change nothing; one it takes
  // may be a forgery no core can tell from a real message, after which only
  // the per-node properties are checked.
  void Forge(uint64_t to, const Message& m) {
    Node& n = nodes_[to];
    if (!n.raft) return;
    const std::string before = StateOf(*n.raft);
    const uint64_t rejected = n.raft->GetStatus().rejected_messages;
    const absl::Status s = n.raft->Step(m);
    if (!s.ok()) {
      CHECK_EQ(StateOf(*n.raft), before) << "a refused message changed node " << to << ": "
                                         << s << ": " << m.ShortDebugString();
      CHECK_EQ(n.raft->GetStatus().rejected_messages, rejected + 1);
    } else if (StateOf(*n.raft) != before || m.type() != raftpb::MSG_UNKNOWN) {
      forged_ = true;
    }
  }

  FuzzInput& in_;
  Config base_;
  std::map<uint64_t, Node> nodes_;
  std::vector<Message> pending_;
  sim::SafetyChecker checker_;
  std::vector<sim::NodeView> views_;
  std::map<std::string, ReadRecord> reads_;
  uint64_t put_seq_ = 0, read_seq_ = 0;
  bool forged_ = false;  // a forged message was taken: cross-node checks are off
  // RAFTKV_FUZZ_TRACE=1: print every operation and delivered message.
  const bool trace_ = EnvSet("RAFTKV_FUZZ_TRACE");
};

}  // namespace
}  // namespace raftkv::raft

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    FLAGS_minloglevel = 2;  // refusals are logged at WARNING
    return true;
  }();
  (void)quiet;
  raftkv::fuzz::FuzzInput in(data, size);
  raftkv::raft::Cluster c(&in);
  for (int n = 0; n < 2000 && c.Step(); ++n) {
  }
  c.Finish();
  CHECK(c.checker().ok()) << c.checker().violation();
  if (raftkv::raft::EnvSet("RAFTKV_FUZZ_SUMMARY")) std::cerr << c.Summary() << "\n";
  return 0;
}
