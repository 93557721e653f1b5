// Peer input cannot break the core: terms never wrap, and a message that is
// malformed or contradicts the receiver's state is refused (Step's errors),
// changes nothing, is counted (Status::rejected_messages) and leaves the node
// working. Raft paper Figure 3's properties name what each refusal protects.
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "gtest/gtest.h"
#include "raft/raft.h"
#include "raft/test_cluster.h"

namespace raftkv::raft {
namespace {

using raftpb::Message;
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

raftpb::Entry Ent(uint64_t index, uint64_t term) {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  return e;
}

Message Msg(raftpb::MessageType type, uint64_t from, uint64_t to, uint64_t term) {
  Message m;
  m.set_type(type);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  return m;
}

// Everything a refused message must leave as it was.
std::string StateOf(const Raft& r) {
  const Status s = r.GetStatus();
  return absl::StrCat("term=", s.term, " vote=", s.vote, " leader=", s.leader,
                      " role=", RoleName(s.role), " commit=", s.commit, " applied=", s.applied,
                      " log=[", s.first_index, ",", s.last_index, "] last_term=",
                      r.log().LastTerm(), " ", ConfStateString(s.conf_state));
}

void ExpectRefused(TestCluster& c, uint64_t id, const Message& m, absl::StatusCode code) {
  c.ProcessReadies();
  Raft& r = c.raft(id);
  ASSERT_FALSE(r.HasReady());
  const std::string before = StateOf(r);
  const uint64_t rejected = r.GetStatus().rejected_messages;
  const absl::Status s = r.Step(m);
  EXPECT_EQ(s.code(), code) << s << "\n  for " << m.ShortDebugString();
  EXPECT_EQ(StateOf(r), before) << m.ShortDebugString();
  EXPECT_FALSE(r.HasReady()) << "a refused message sends or writes nothing: "
                             << m.ShortDebugString();
  EXPECT_EQ(r.GetStatus().rejected_messages, rejected + 1) << m.ShortDebugString();
}

std::string LastApplied(const TestNode& n) {
  for (auto it = n.applied.rbegin(); it != n.applied.rend(); ++it) {
    if (it->type() == raftpb::ENTRY_NORMAL && !it->data().empty()) return it->data();
  }
  return "";
}

// The cluster still works: a proposal commits and every live node applies it.
void ExpectCommits(TestCluster& c, const std::string& data) {
  c.Stabilize();
  ASSERT_NE(c.Leader(), 0u);
  ASSERT_TRUE(c.Propose(data));
  c.Stabilize();
  for (uint64_t id : c.ids()) {
    if (!c.node(id).down) EXPECT_EQ(LastApplied(c.node(id)), data) << "node " << id;
  }
}

// Figure 3's Election Safety and the persisted term's monotonicity, checked
// after every delivered message and tick.
class Observer {
 public:
  void Observe(TestCluster& c) {
    for (uint64_t id : c.ids()) {
      if (c.node(id).down) continue;
      const Raft& r = c.raft(id);
      EXPECT_LE(r.term(), kMaxTerm) << "node " << id;
      uint64_t& seen = term_[id];
      EXPECT_GE(r.term(), seen) << "node " << id << "'s term went back";
      seen = std::max(seen, r.term());
      if (r.role() == Role::kLeader) {
        auto [it, fresh] = leader_of_.emplace(r.term(), id);
        EXPECT_EQ(it->second, id) << "two leaders in term " << r.term();
      }
    }
  }
  size_t terms_with_leaders() const { return leader_of_.size(); }

 private:
  std::map<uint64_t, uint64_t> term_;
  std::map<uint64_t, uint64_t> leader_of_;
};

// TestCluster::Stabilize, observing after each delivered message.
void Deliver(TestCluster& c, Observer& o) {
  c.ProcessReadies();
  o.Observe(c);
  for (int n = 0; n < 100000 && !c.pending().empty(); ++n) {
    Message m = c.pending().front();
    c.pending().pop_front();
    if (c.node(m.to()).down) continue;
    (void)c.raft(m.to()).Step(m);
    c.ProcessReadies();
    o.Observe(c);
  }
}

// Ticks (delivering everything in between) until there is a leader.
uint64_t TickUntilLeader(TestCluster& c, Observer& o, int max_ticks = 300) {
  for (int t = 0; t < max_ticks; ++t) {
    Deliver(c, o);
    if (uint64_t l = c.Leader(); l != 0) return l;
    c.TickAll();
  }
  return 0;
}

// Step's InvalidArgument: a term past kMaxTerm is refused from every message
// type, by followers and leaders alike, before anything else is looked at.
TEST(PeerInputTest, TheMaximumTermIsRefusedInEveryMessage) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  ASSERT_NE(leader, 0u);
  const uint64_t f = leader % 3 + 1;
  for (uint64_t to : {leader, f}) {
    for (int t = raftpb::MSG_APPEND; t <= raftpb::MSG_READ_INDEX_RESP; ++t) {
      Message m = Msg(static_cast<raftpb::MessageType>(t), to % 3 + 1, to, kU64Max);
      m.set_index(c.raft(to).log().LastIndex());
      m.set_log_term(c.raft(to).log().LastTerm());
      ExpectRefused(c, to, m, absl::StatusCode::kInvalidArgument);
    }
  }
  ExpectCommits(c, "after");
}

// §5.1: "Current terms are exchanged whenever servers communicate; if one
// server's current term is smaller than the other's, then it updates its
// current term to the larger value." One message of term 2^64-1 would have
// every node adopt it, and the next election wrap the term to 0: a term that
// already had a leader could elect another (Election Safety, Figure 3).
class MaxTermTest : public ::testing::TestWithParam<bool> {};

TEST_P(MaxTermTest, OneMessageOfTheMaximumTermElectsNoSecondLeaderInATerm) {
  TestCluster c(3, [](Config* cfg) { cfg->pre_vote = GetParam(); });
  Observer o;
  uint64_t leader = TickUntilLeader(c, o);
  ASSERT_NE(leader, 0u);
  ExpectCommits(c, "a");
  const uint64_t f = leader % 3 + 1;
  Message hb = Msg(raftpb::MSG_HEARTBEAT, leader, f, kU64Max);
  (void)c.raft(f).Step(hb);
  Message vote = Msg(raftpb::MSG_VOTE, f, leader, kU64Max);
  vote.set_index(c.raft(f).log().LastIndex());
  vote.set_log_term(c.raft(f).log().LastTerm());
  (void)c.raft(leader).Step(vote);
  // Elections in turn: each leader crashes, the others elect one.
  for (int round = 0; round < 4; ++round) {
    Deliver(c, o);
    c.Crash(leader);
    const uint64_t next = TickUntilLeader(c, o);
    ASSERT_NE(next, 0u) << "round " << round << ": no leader elected";
    c.Restart(leader);
    leader = next;
    for (int t = 0; t < 3; ++t) {  // heartbeats bring the restarted node back
      c.TickAll();
      Deliver(c, o);
    }
    ExpectCommits(c, "r" + std::to_string(round));
    o.Observe(c);
  }
  EXPECT_GE(o.terms_with_leaders(), 5u);
}

INSTANTIATE_TEST_SUITE_P(PreVote, MaxTermTest, ::testing::Bool());

// The highest term, reached legitimately: a cluster in term kMaxTerm-1 can
// still elect a leader (in kMaxTerm), but once there no node campaigns,
// since its election would need a term past kMaxTerm. The leader keeps
// leading; after it is gone none is elected, and no term wraps.
TEST(PeerInputTest, TheHighestTermIsUsedButNeverPassed) {
  TestCluster c(3);
  for (uint64_t id : c.ids()) {
    c.Crash(id);
    raftpb::HardState hs;
    hs.set_term(kMaxTerm - 1);
    c.node(id).log->SetHardState(hs);
    c.Restart(id);
  }
  Observer o;
  const uint64_t leader = TickUntilLeader(c, o);
  ASSERT_NE(leader, 0u);
  EXPECT_EQ(c.raft(leader).term(), kMaxTerm);
  ExpectCommits(c, "a");

  // A transfer's TimeoutNow cannot make the target campaign either.
  const uint64_t target = leader % 3 + 1;
  ASSERT_TRUE(c.raft(leader).TransferLeadership(target).ok());
  for (int t = 0; t < 3 * c.node(leader).config.election_ticks; ++t) {
    Deliver(c, o);
    c.TickAll();
  }
  Deliver(c, o);
  EXPECT_EQ(c.Leader(), leader);
  ExpectCommits(c, "b");

  c.Crash(leader);
  for (int t = 0; t < 10 * c.node(target).config.election_ticks; ++t) {
    Deliver(c, o);
    c.TickAll();
    for (const Message& m : c.pending()) {
      EXPECT_NE(m.type(), raftpb::MSG_VOTE) << "node " << m.from() << " campaigns";
      EXPECT_NE(m.type(), raftpb::MSG_PRE_VOTE) << "node " << m.from() << " campaigns";
    }
  }
  c.Restart(leader);
  for (int t = 0; t < 5 * c.node(target).config.election_ticks; ++t) {
    Deliver(c, o);
    c.TickAll();
  }
  Deliver(c, o);
  EXPECT_EQ(c.Leader(), 0u);
  for (uint64_t id : c.ids()) {
    EXPECT_EQ(c.raft(id).term(), kMaxTerm) << "node " << id;
    EXPECT_EQ(c.node(id).log->hard_state().term(), kMaxTerm) << "node " << id;
  }
}

// A node stops only when its own durable state is proven broken, saying
// what it found: a stored term past kMaxTerm was never written by a core.
TEST(PeerInputTest, AStoredTermPastTheHighestIsRefusedAtStart) {
  raftpb::ConfState cs;
  cs.add_voters(1);
  MemoryLog log(cs);
  raftpb::HardState hs;
  hs.set_term(kU64Max);
  log.SetHardState(hs);
  Config cfg;
  cfg.id = 1;
  auto r = Raft::Create(cfg, &log);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("term 18446744073709551615"), std::string::npos)
      << r.status();
}

// A stored log whose terms decrease, or run past the stored term (a hard
// state rolled back: the node could vote again in a term it voted in), was
// not written by a core: refused at start, never used. Found by the log
// records fuzz target (storage/fuzz).
TEST(PeerInputTest, AStoredLogOfImpossibleTermsIsRefusedAtStart) {
  raftpb::ConfState cs;
  cs.add_voters(1);
  Config cfg;
  cfg.id = 1;
  auto entry = [](uint64_t index, uint64_t term) {
    raftpb::Entry e;
    e.set_index(index);
    e.set_term(term);
    return e;
  };
  raftpb::HardState hs;
  hs.set_term(3);
  {
    MemoryLog log(cs);
    ASSERT_TRUE(log.Append({entry(1, 1), entry(2, 3), entry(3, 2)}).ok());
    log.SetHardState(hs);
    auto r = Raft::Create(cfg, &log);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find("decrease at index 3"), std::string::npos) << r.status();
  }
  {
    MemoryLog log(cs);
    ASSERT_TRUE(log.Append({entry(1, 1), entry(2, 4)}).ok());
    log.SetHardState(hs);
    auto r = Raft::Create(cfg, &log);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find("term 4, past the hard state's term 3"),
              std::string::npos)
        << r.status();
  }
  MemoryLog log(cs);  // the same log in term 4 is fine
  ASSERT_TRUE(log.Append({entry(1, 1), entry(2, 4)}).ok());
  hs.set_term(4);
  log.SetHardState(hs);
  EXPECT_TRUE(Raft::Create(cfg, &log).ok());
}

// A heartbeat's commit index is min(match, commit) (raft/replication.cc):
// at most what this node acknowledged, so never past its log. One that is
// was forged, or this node lost entries it had acknowledged (a wiped disk,
// which the node must detect, not the core): dropped, never fatal, and its
// term is not adopted either.
TEST(PeerInputTest, AHeartbeatCommittingPastTheLogIsDropped) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t f = leader % 3 + 1;
  ExpectCommits(c, "a");
  const uint64_t term = c.raft(leader).term();
  Message hb = Msg(raftpb::MSG_HEARTBEAT, leader, f, term);
  hb.set_commit(c.raft(f).log().LastIndex() + 1);
  ExpectRefused(c, f, hb, absl::StatusCode::kFailedPrecondition);
  hb.set_term(term + 1);
  ExpectRefused(c, f, hb, absl::StatusCode::kFailedPrecondition);
  hb.set_commit(kU64Max);
  ExpectRefused(c, f, hb, absl::StatusCode::kFailedPrecondition);
  ExpectCommits(c, "b");

  // A follower back on an empty disk.
  c.Crash(f);
  raftpb::ConfState cs;
  for (uint64_t id : c.ids()) cs.add_voters(id);
  c.node(f).log = std::make_unique<MemoryLog>(cs);
  c.node(f).applied.clear();
  c.Restart(f);
  hb.set_term(term);
  hb.set_commit(c.raft(leader).log().committed());
  ExpectRefused(c, f, hb, absl::StatusCode::kFailedPrecondition);
  hb.set_commit(0);  // an intact empty follower is fine
  EXPECT_TRUE(c.raft(f).Step(hb).ok());
  c.Crash(f);  // it cannot catch up: its match is past its log
  ExpectCommits(c, "c");
}

// Leader Completeness (§5.4): a leader of any term >= ours holds every entry
// we committed, so an append disagreeing with one (it would replace it, or
// its previous entry differs from ours) is forged: dropped, term and all.
TEST(PeerInputTest, AnAppendContradictingCommittedEntriesIsDropped) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t f = leader % 3 + 1;
  for (const char* d : {"a", "b", "c"}) ExpectCommits(c, d);
  const RaftLog& log = c.raft(f).log();
  const uint64_t commit = log.committed();
  ASSERT_GE(commit, 3u);
  const uint64_t term = c.raft(leader).term();

  Message m = Msg(raftpb::MSG_APPEND, leader, f, term + 1);
  m.set_index(commit - 2);
  m.set_log_term(log.TermOrZero(commit - 2));
  *m.add_entries() = Ent(commit - 1, term + 1);
  *m.add_entries() = Ent(commit, term + 1);
  *m.add_entries() = Ent(commit + 1, term + 1);
  m.set_commit(commit + 1);
  ExpectRefused(c, f, m, absl::StatusCode::kFailedPrecondition);

  Message prev = Msg(raftpb::MSG_APPEND, leader, f, term + 1);
  prev.set_index(commit - 1);
  prev.set_log_term(term + 1);  // ours is `term`
  ExpectRefused(c, f, prev, absl::StatusCode::kFailedPrecondition);
  ExpectCommits(c, "d");
}

// Election Safety (§5.2): "at most one leader can be elected in a given
// term". A leader that hears from another leader of its own term drops it.
TEST(PeerInputTest, ALeaderDropsLeaderMessagesOfItsOwnTerm) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t f = leader % 3 + 1;
  ExpectCommits(c, "a");
  const Raft& l = c.raft(leader);
  for (auto type : {raftpb::MSG_APPEND, raftpb::MSG_HEARTBEAT, raftpb::MSG_SNAPSHOT}) {
    Message m = Msg(type, f, leader, l.term());
    m.set_index(l.log().LastIndex());
    m.set_log_term(l.log().LastTerm());
    m.set_commit(l.log().committed());
    raftpb::SnapshotMetadata* meta = m.mutable_snapshot()->mutable_metadata();
    meta->set_index(l.log().LastIndex() + 1);
    meta->set_term(l.term());
    *meta->mutable_conf_state() = l.conf_state();
    ExpectRefused(c, leader, m, absl::StatusCode::kFailedPrecondition);
  }
  ExpectCommits(c, "b");
}

// A snapshot holds committed entries: at our commit index or below its last
// entry is ours, and past it its term is not below our committed entry's
// (terms never decrease along a log).
TEST(PeerInputTest, ASnapshotContradictingCommittedEntriesIsDropped) {
  TestCluster c(3);
  const uint64_t first = c.ElectLeader();
  const uint64_t leader = first % 3 + 1;
  ASSERT_TRUE(c.raft(first).TransferLeadership(leader).ok());
  c.Stabilize();
  ASSERT_EQ(c.Leader(), leader);
  ASSERT_EQ(c.raft(leader).term(), 2u);
  ExpectCommits(c, "a");
  const uint64_t f = leader % 3 + 1;
  const RaftLog& log = c.raft(f).log();
  const uint64_t commit = log.committed();
  ASSERT_EQ(log.TermOrZero(commit), 2u);

  Message m = Msg(raftpb::MSG_SNAPSHOT, leader, f, 2);
  raftpb::SnapshotMetadata* meta = m.mutable_snapshot()->mutable_metadata();
  *meta->mutable_conf_state() = c.raft(f).conf_state();
  meta->set_index(commit);
  meta->set_term(1);
  ExpectRefused(c, f, m, absl::StatusCode::kFailedPrecondition);
  meta->set_index(commit + 5);
  ExpectRefused(c, f, m, absl::StatusCode::kFailedPrecondition);
  ExpectCommits(c, "b");
}

// In its term a leader's log only grows, so no follower acknowledges or
// rejects an index past it, and no heartbeat answer names a round it has not
// sent (which would confirm reads without a quorum, §6.4).
TEST(PeerInputTest, ALeaderDropsImpossibleAnswers) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t f = leader % 3 + 1;
  ExpectCommits(c, "a");
  const Raft& l = c.raft(leader);
  const uint64_t term = l.term(), last = l.log().LastIndex();

  Message ack = Msg(raftpb::MSG_APPEND_RESP, f, leader, term);
  ack.set_index(last + 1);
  ExpectRefused(c, leader, ack, absl::StatusCode::kFailedPrecondition);
  Message reject = ack;
  reject.set_reject(true);
  reject.set_reject_hint(last);
  ExpectRefused(c, leader, reject, absl::StatusCode::kFailedPrecondition);
  reject.set_index(last);
  reject.set_reject_term(term + 1);
  ExpectRefused(c, leader, reject, absl::StatusCode::kFailedPrecondition);

  ASSERT_TRUE(c.raft(leader).ReadIndex("read").ok());
  c.ProcessReadies();
  c.pending().clear();  // the round's heartbeats are lost
  Message round = Msg(raftpb::MSG_HEARTBEAT_RESP, f, leader, term);
  round.set_read_round(1000);
  ExpectRefused(c, leader, round, absl::StatusCode::kFailedPrecondition);
  c.ProcessReadies();
  EXPECT_TRUE(c.node(leader).reads.empty()) << "a read released by a forged round";
  c.TickAll();  // the next round confirms it
  c.Stabilize();
  ASSERT_EQ(c.node(leader).reads.size(), 1u);
  EXPECT_EQ(c.node(leader).reads[0].context, "read");
  ExpectCommits(c, "b");
}

// InvalidArgument: messages that are wrong whatever the receiver's state.
TEST(PeerInputTest, MalformedMessagesAreRefused) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t f = leader % 3 + 1;
  ExpectCommits(c, "a");
  const uint64_t term = c.raft(leader).term();
  const uint64_t last = c.raft(f).log().LastIndex();
  std::vector<std::pair<std::string, Message>> cases;
  auto add = [&](std::string name, raftpb::MessageType type) -> Message& {
    cases.emplace_back(std::move(name), Msg(type, leader, f, term));
    Message& m = cases.back().second;
    m.set_index(last);
    m.set_log_term(c.raft(f).log().LastTerm());
    return m;
  };
  *add("an entry of term 0", raftpb::MSG_APPEND).add_entries() = Ent(last + 1, 0);
  *add("an entry past the message's term", raftpb::MSG_APPEND).add_entries() =
      Ent(last + 1, term + 1);
  *add("entries out of sequence", raftpb::MSG_APPEND).add_entries() = Ent(last + 2, term);
  {
    Message& m = add("entries past the last index", raftpb::MSG_APPEND);
    m.set_index(kU64Max);
    *m.add_entries() = Ent(0, term);
  }
  {
    // MatchTerm once took a missing entry for one of term 0.
    Message& m = add("a previous entry of term 0 past the log", raftpb::MSG_APPEND);
    m.set_index(last + 10);
    m.set_log_term(0);
    m.set_commit(last + 10);
    *m.add_entries() = Ent(last + 11, term);
  }
  add("a previous entry past the message's term", raftpb::MSG_APPEND).set_log_term(term + 1);
  add("a candidate's last term past its term", raftpb::MSG_VOTE).set_log_term(term + 1);
  add("a heartbeat of term 0", raftpb::MSG_HEARTBEAT).set_term(0);
  add("a vote request of term 0", raftpb::MSG_PRE_VOTE).set_term(0);
  add("a TimeoutNow of term 0", raftpb::MSG_TIMEOUT_NOW).set_term(0);
  {
    Message& m = add("a snapshot past the message's term", raftpb::MSG_SNAPSHOT);
    m.mutable_snapshot()->mutable_metadata()->set_index(last + 5);
    m.mutable_snapshot()->mutable_metadata()->set_term(term + 1);
  }
  {
    Message& m = add("a snapshot of term 0", raftpb::MSG_SNAPSHOT);
    m.mutable_snapshot()->mutable_metadata()->set_index(last + 5);
  }
  add("misaddressed", raftpb::MSG_HEARTBEAT).set_to(leader);
  add("from nobody", raftpb::MSG_HEARTBEAT).set_from(0);
  add("from itself", raftpb::MSG_HEARTBEAT).set_from(f);
  add("of no known type", raftpb::MSG_HEARTBEAT).set_type(static_cast<raftpb::MessageType>(99));
  for (const auto& [name, m] : cases) {
    SCOPED_TRACE(name);
    ExpectRefused(c, f, m, absl::StatusCode::kInvalidArgument);
  }
  Message hint = Msg(raftpb::MSG_APPEND_RESP, f, leader, term);
  hint.set_reject(true);
  hint.set_index(1);
  hint.set_reject_hint(2);
  ExpectRefused(c, leader, hint, absl::StatusCode::kInvalidArgument);
  ExpectCommits(c, "b");
}

class CountingSink : public google::LogSink {
 public:
  void send(google::LogSeverity severity, const char*, const char* base_filename, int,
            const google::LogMessageTime&, const char* message, size_t len) override {
    if (severity == google::GLOG_WARNING && std::string(base_filename) == "raft.cc" &&
        std::string(message, len).find("dropped a message") != std::string::npos) {
      ++lines;
    }
  }
  int lines = 0;
};

// A flood of refused messages logs one line per 10 election timeouts (with
// the count), not one per message.
TEST(PeerInputTest, RefusalsAreLoggedAtABoundedRate) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t f = leader % 3 + 1;
  CountingSink sink;
  google::AddLogSink(&sink);
  Message m = Msg(raftpb::MSG_HEARTBEAT, leader, f, kU64Max);
  for (int i = 0; i < 1000; ++i) (void)c.raft(f).Step(m);
  EXPECT_EQ(sink.lines, 1);
  for (int t = 0; t < 10 * c.node(f).config.election_ticks; ++t) c.TickAll();
  for (int i = 0; i < 1000; ++i) (void)c.raft(f).Step(m);
  EXPECT_EQ(sink.lines, 2);
  google::RemoveLogSink(&sink);
  EXPECT_EQ(c.raft(f).GetStatus().rejected_messages, 2000u);
}

}  // namespace
}  // namespace raftkv::raft
