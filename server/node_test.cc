// Nodes wired in-process (no sockets): the loop, persistence, apply and
// client callbacks, with real RocksDB stores.
#include "server/node.h"

#include <atomic>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

class Loopback;

// Delivers a node's messages straight into its peers' inboxes.
class LoopbackSender final : public MessageSender {
 public:
  explicit LoopbackSender(Loopback* net) : net_(net) {}
  void Send(std::vector<raftpb::Message> msgs) override;

 private:
  Loopback* net_;
};

class Loopback {
 public:
  void Attach(uint64_t id, Node* n) {
    absl::MutexLock l(&mu_);
    nodes_[id] = n;
  }
  void Detach(uint64_t id) {
    absl::MutexLock l(&mu_);
    nodes_.erase(id);
  }
  void Deliver(raftpb::Message m) {
    absl::MutexLock l(&mu_);
    auto it = nodes_.find(m.to());
    if (it != nodes_.end()) it->second->Receive(std::move(m));
  }

 private:
  absl::Mutex mu_;
  std::map<uint64_t, Node*> nodes_ ABSL_GUARDED_BY(mu_);
};

void LoopbackSender::Send(std::vector<raftpb::Message> msgs) {
  for (auto& m : msgs) net_->Deliver(std::move(m));
}

struct TestNode {
  std::unique_ptr<storage::LogStore> store;
  std::unique_ptr<KvStateMachine> sm;
  std::unique_ptr<LoopbackSender> sender;
  std::unique_ptr<Node> node;
  std::unique_ptr<StageTrace> trace;  // with trace_ only
};

class NodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = std::string(getenv("TEST_TMPDIR")) + "/" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (uint64_t id = 1; id <= 3; ++id) Start(id);
  }
  void TearDown() override {
    for (uint64_t id = 1; id <= 3; ++id) Stop(id);
  }

  void Start(uint64_t id) {
    TestNode& t = nodes_[id];
    storage::Options so;
    so.dir = base_ + "/n" + std::to_string(id);
    auto store = storage::LogStore::Open(so);
    ASSERT_TRUE(store.ok()) << store.status();
    t.store = std::move(*store);
    if (!t.store->identity()) {
      storagepb::NodeIdentity ident;
      ident.set_cluster_id(42);
      ident.set_node_id(id);
      raftpb::ConfState cs;
      for (uint64_t v = 1; v <= 3; ++v) cs.add_voters(v);
      ASSERT_TRUE(t.store->Bootstrap(ident, cs).ok());
    }
    auto sm = KvStateMachine::Open(t.store.get());
    ASSERT_TRUE(sm.ok());
    t.sm = std::move(*sm);
    t.sender = std::make_unique<LoopbackSender>(&net_);
    NodeOptions no;
    no.id = id;
    no.tick = tick_;
    no.async_log_writes = async_log_writes_;
    no.data_corrupt = [this, id] { return corrupt_[id].load(); };
    no.on_non_member = [this, id](const raftpb::Message&) { non_member_[id].fetch_add(1); };
    if (trace_) {
      auto trace = StageTrace::Open(TracePath(id), 1);
      ASSERT_TRUE(trace.ok()) << trace.status();
      t.trace = std::move(*trace);
      no.stage_trace = t.trace.get();
    }
    auto node = Node::Create(no, t.store.get(), t.sm.get(), t.sender.get());
    ASSERT_TRUE(node.ok()) << node.status();
    t.node = std::move(*node);
    net_.Attach(id, t.node.get());
    t.node->Start();
  }

  void Stop(uint64_t id) {
    net_.Detach(id);
    TestNode& t = nodes_[id];
    t.node.reset();
    t.trace.reset();
    t.sm.reset();
    t.store.reset();
  }

  uint64_t WaitForLeader() {
    for (int i = 0; i < 1000; ++i) {
      for (auto& [id, t] : nodes_) {
        if (t.node && t.node->is_leader()) return id;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    return 0;
  }

  // Proposes a put on node `id`. Like a client, retries (same client id and
  // sequence, so it applies once) on the current leader while the answer is
  // UNAVAILABLE (a leader that lost leadership fails its pending writes);
  // `*answered` is the node that answered.
  absl::StatusOr<kvpb::WriteResult> Put(uint64_t id, const std::string& k, const std::string& v,
                                        uint64_t* answered = nullptr, bool follow_leader = true) {
    kvpb::Command cmd;
    cmd.mutable_header()->set_client_id(4242);
    cmd.mutable_header()->set_seq(++seq_);
    cmd.mutable_put()->set_key(k);
    cmd.mutable_put()->set_value(v);
    absl::StatusOr<kvpb::WriteResult> r;
    for (int attempt = 0; attempt < 5; ++attempt) {
      std::promise<absl::StatusOr<kvpb::WriteResult>> p;
      nodes_[id].node->Propose(cmd.SerializeAsString(), absl::Now() + absl::Seconds(5),
                               [&p](absl::StatusOr<kvpb::WriteResult> r) { p.set_value(r); });
      r = p.get_future().get();
      if (answered != nullptr) *answered = id;
      // A leader that lost leadership fails pending writes as UNAVAILABLE;
      // one that lost it before the proposal refuses it as "not leader".
      const bool moved = absl::IsUnavailable(r.status()) ||
                         (follow_leader && absl::IsFailedPrecondition(r.status()));
      if (!moved) break;
      if (const uint64_t l = WaitForLeader(); l != 0) id = l;
    }
    return r;
  }
  uint64_t seq_ = 0;

  // A linearizable read on node `id`, retried (as clients do) while it
  // fails as retriable: a leadership change or an election in progress,
  // which slow (sanitized, loaded) runs see.
  absl::Status Read(uint64_t id) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (true) {
      std::promise<absl::Status> p;
      nodes_[id].node->Read(deadline, [&p](absl::Status s) { p.set_value(s); });
      absl::Status s = p.get_future().get();
      if (!absl::IsUnavailable(s) || absl::Now() >= deadline) return s;
      absl::SleepFor(absl::Milliseconds(10));
    }
  }

  bool WaitApplied(uint64_t id, uint64_t index) {
    for (int i = 0; i < 1000; ++i) {
      if (nodes_[id].sm->applied_index() >= index) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }

  // Many writes in flight at once, then every node stopped mid-stream (the
  // leader's queued log writes, commits and applies interleaved) and
  // restarted: every store opens, no acknowledged write is lost, and the
  // nodes converge on the same data.
  void BurstThenRestartEveryNode() {
    const uint64_t leader = WaitForLeader();
    ASSERT_NE(leader, 0u);
    constexpr int kWrites = 400;
    absl::Mutex mu;
    std::map<std::string, uint64_t> acked;  // key -> version
    int answered = 0;
    for (int i = 0; i < kWrites; ++i) {
      kvpb::Command cmd;
      const std::string key = "k" + std::to_string(i);
      cmd.mutable_put()->set_key(key);
      cmd.mutable_put()->set_value("v" + std::to_string(i));
      nodes_[leader].node->Propose(cmd.SerializeAsString(), absl::Now() + absl::Seconds(10),
                                  [&, key](absl::StatusOr<kvpb::WriteResult> r) {
                                    absl::MutexLock l(&mu);
                                    ++answered;
                                    if (r.ok()) acked[key] = r->put().version();
                                  });
    }
    {
      absl::MutexLock l(&mu);
      mu.AwaitWithTimeout(absl::Condition(
                              +[](int* n) { return *n >= kWrites / 4; }, &answered),
                          absl::Seconds(20));
    }
    for (uint64_t id = 1; id <= 3; ++id) Stop(id);  // unanswered ones fail now
    std::map<std::string, uint64_t> kept;
    {
      absl::MutexLock l(&mu);
      EXPECT_EQ(answered, kWrites) << "stopping answers every pending write";
      kept = acked;
    }
    ASSERT_FALSE(kept.empty());
    for (uint64_t id = 1; id <= 3; ++id) Start(id);  // ASSERTs that each store opens
    const uint64_t l2 = WaitForLeader();
    ASSERT_NE(l2, 0u);
    // A write of the new term commits everything before it.
    kvpb::Command last;
    last.mutable_put()->set_key("last");
    last.mutable_put()->set_value("x");
    std::promise<absl::StatusOr<kvpb::WriteResult>> p;
    nodes_[l2].node->Propose(last.SerializeAsString(), absl::Now() + absl::Seconds(10),
                            [&p](absl::StatusOr<kvpb::WriteResult> r) { p.set_value(r); });
    auto r = p.get_future().get();
    ASSERT_TRUE(r.ok()) << r.status();
    for (uint64_t id = 1; id <= 3; ++id) {
      ASSERT_TRUE(WaitApplied(id, r->put().version())) << id;
      for (const auto& [key, version] : kept) {
        auto got = nodes_[id].sm->Get(key);
        ASSERT_TRUE(got.ok()) << "node " << id << " lost acknowledged " << key;
        EXPECT_EQ(got->version(), version);
      }
    }
  }

  // Proposes a put of `k` on node `id` once, without retrying.
  absl::StatusOr<kvpb::WriteResult> ProposeOnce(uint64_t id, const std::string& k) {
    kvpb::Command cmd;
    cmd.mutable_put()->set_key(k);
    cmd.mutable_put()->set_value("v");
    std::promise<absl::StatusOr<kvpb::WriteResult>> p;
    nodes_[id].node->Propose(cmd.SerializeAsString(), absl::Now() + absl::Seconds(5),
                             [&p](absl::StatusOr<kvpb::WriteResult> r) { p.set_value(r); });
    return p.get_future().get();
  }

  std::atomic<bool> corrupt_[4] = {};             // data_corrupt of node 1..3
  std::atomic<int> non_member_[4] = {};           // on_non_member calls on node 1..3
  absl::Duration tick_ = absl::Milliseconds(5);  // set before SetUp
  bool async_log_writes_ = true;                  // set before SetUp
  bool trace_ = false;                            // set before SetUp
  std::string TracePath(uint64_t id) const { return base_ + ".trace" + std::to_string(id); }
  std::string base_;
  Loopback net_;
  std::map<uint64_t, TestNode> nodes_;
};

// Ticks slow enough that a status copied at the last tick is stale.
class SlowTickNodeTest : public NodeTest {
 protected:
  void SetUp() override {
    tick_ = absl::Milliseconds(150);
    NodeTest::SetUp();
  }
};

TEST_F(SlowTickNodeTest, FreshStatusShowsAWriteAcknowledgedJustBefore) {
  uint64_t leader = 0;
  for (int i = 0; i < 4 && leader == 0; ++i) leader = WaitForLeader();  // elections take seconds here
  ASSERT_NE(leader, 0u);
  uint64_t answered = 0;
  auto r = Put(leader, "k", "v", &answered);
  ASSERT_TRUE(r.ok()) << r.status();
  const uint64_t index = r->put().version();  // a key's version is its write's log index
  const raft::Status st = nodes_[answered].node->FreshRaftStatus(absl::Seconds(5));
  EXPECT_GE(st.commit, index);
  EXPECT_GE(st.applied, index);
  EXPECT_GE(st.last_index, index);
}

// The loop persisting every round itself (--async_log_writes=false).
class SyncWritesNodeTest : public NodeTest {
 protected:
  void SetUp() override {
    async_log_writes_ = false;
    NodeTest::SetUp();
  }
};

TEST_F(NodeTest, WritesInFlightSurviveStoppingEveryNode) { BurstThenRestartEveryNode(); }

TEST_F(SyncWritesNodeTest, WritesInFlightSurviveStoppingEveryNode) {
  BurstThenRestartEveryNode();
}

TEST_F(SyncWritesNodeTest, WriteIsAcknowledgedAfterApplyAndReachesEveryNode) {
  const uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  auto r = Put(leader, "k", "v");
  ASSERT_TRUE(r.ok()) << r.status();
  for (uint64_t id = 1; id <= 3; ++id) ASSERT_TRUE(WaitApplied(id, r->put().version())) << id;
}

TEST_F(NodeTest, WriteIsAcknowledgedAfterApplyAndReachesEveryNode) {
  const uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  uint64_t answered = 0;
  auto r = Put(leader, "k", "v", &answered);
  ASSERT_TRUE(r.ok()) << r.status();
  const uint64_t version = r->put().version();
  EXPECT_GE(nodes_[answered].sm->applied_index(), version) << "applied before the answer";
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(WaitApplied(id, version)) << id;
    EXPECT_EQ(nodes_[id].sm->Get("k")->value(), "v");
  }
}

// A round that only moves the commit index writes nothing; the commit index
// rides on the next write, and Stop writes the one still held.
TEST_F(NodeTest, CommitIndexAloneIsWrittenWithTheNextWriteOrAtStop) {
  const uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  auto first = Put(leader, "a", "1");
  ASSERT_TRUE(first.ok()) << first.status();
  uint64_t answered = 0;
  const uint64_t term = nodes_[leader].node->term();
  auto r = Put(leader, "b", "2", &answered);
  ASSERT_TRUE(r.ok()) << r.status();
  const uint64_t version = r->put().version();
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(WaitApplied(id, version)) << id;
    // The second write's entries carried the commit of the first.
    EXPECT_GE(nodes_[id].store->hard_state().commit(), first->put().version()) << id;
  }
  // The leader wrote the second entry before it committed it, and nothing
  // since (a follower that lagged may have got the entry and its commit in
  // one append; a new term or vote is written with the newest commit).
  if (answered == leader && nodes_[leader].node->term() == term) {
    EXPECT_LT(nodes_[leader].store->hard_state().commit(), version);
  }
  for (uint64_t id = 1; id <= 3; ++id) {
    Stop(id);
    Start(id);
    EXPECT_GE(nodes_[id].store->hard_state().commit(), version) << id;
  }
}

class TracedNodeTest : public NodeTest {
 protected:
  void SetUp() override {
    trace_ = true;
    NodeTest::SetUp();
  }
};

// The stages of a write, from the traces of all three nodes.
TEST_F(TracedNodeTest, AWriteLeavesEveryStageInTheTraces) {
  const uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  uint64_t answered = 0;
  auto r = Put(leader, "k", "v", &answered);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string index = " " + std::to_string(r->put().version()) + " ";
  for (uint64_t id = 1; id <= 3; ++id) ASSERT_TRUE(WaitApplied(id, r->put().version())) << id;
  for (uint64_t id = 1; id <= 3; ++id) Stop(id);  // flushes the traces
  std::map<uint64_t, std::string> text;
  for (uint64_t id = 1; id <= 3; ++id) {
    std::ifstream in(TracePath(id));
    std::stringstream ss;
    ss << in.rdbuf();
    text[id] = ss.str();
  }
  for (const char* stage : {"arrived", "proposed", "appends_sent", "leader_durable",
                            "ack_received", "ack_stepped", "applied", "answered"}) {
    EXPECT_NE(text[answered].find(std::string(stage) + index), std::string::npos) << stage;
  }
  for (uint64_t id = 1; id <= 3; ++id) {
    if (id == answered) continue;
    for (const char* stage :
         {"follower_received", "follower_stepped", "follower_synced", "follower_acked"}) {
      EXPECT_NE(text[id].find(std::string(stage) + index), std::string::npos)
          << stage << " on " << id;
    }
  }
  for (uint64_t id = 1; id <= 3; ++id) Start(id);  // for TearDown
}

TEST_F(NodeTest, FollowerRefusesWritesAndNamesTheLeader) {
  const uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  const uint64_t follower = leader % 3 + 1;
  auto r = Put(follower, "k", "v", nullptr, /*follow_leader=*/false);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("not leader"), std::string::npos);
}

TEST_F(NodeTest, LinearizableReadOnAFollowerSeesTheLatestWrite) {
  const uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  for (int i = 0; i < 20; ++i) {
    auto r = Put(leader, "k", std::to_string(i));
    ASSERT_TRUE(r.ok());
    const uint64_t follower = (leader + i) % 3 + 1;
    absl::Status read = Read(follower);
    ASSERT_TRUE(read.ok()) << read;
    // Once the read is confirmed the follower has applied the write.
    EXPECT_EQ(nodes_[follower].sm->Get("k")->value(), std::to_string(i));
  }
}

TEST_F(NodeTest, RestartRecoversDataWithoutReplayingApplied) {
  const uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(Put(leader, "a", "1").ok());
  auto last = Put(leader, "b", "2");
  ASSERT_TRUE(last.ok());
  const uint64_t f = leader % 3 + 1;
  ASSERT_TRUE(WaitApplied(f, last->put().version()));
  const uint64_t applied = nodes_[f].sm->applied_index();
  Stop(f);
  Start(f);
  EXPECT_EQ(nodes_[f].store->applied_index(), applied);
  EXPECT_EQ(nodes_[f].sm->Get("a")->value(), "1");
  const uint64_t l2 = WaitForLeader();
  ASSERT_NE(l2, 0u);
  auto after = Put(l2, "c", "3");
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_TRUE(WaitApplied(f, after->put().version()));
  EXPECT_EQ(nodes_[f].sm->Get("c")->value(), "3");
}

TEST_F(NodeTest, WritesSurviveLosingAMinority) {
  const uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  Stop(leader % 3 + 1);
  auto r = Put(leader, "k", "still");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(nodes_[leader].sm->Get("k")->value(), "still");
}

// The leader drops what a node in none of its configurations sends (a
// removed member still running, say): an answer of a higher term from it
// would otherwise depose the leader.
TEST_F(NodeTest, LeaderDropsMessagesFromNonMembers) {
  uint64_t leader = 0;
  raft::Status before;
  for (int attempt = 0; attempt < 10 && before.role != raft::Role::kLeader; ++attempt) {
    leader = WaitForLeader();
    ASSERT_NE(leader, 0u);
    before = nodes_[leader].node->FreshRaftStatus(absl::Seconds(1));
  }
  ASSERT_EQ(before.role, raft::Role::kLeader);
  Node* n = nodes_[leader].node.get();
  raftpb::Message m;
  m.set_type(raftpb::MSG_APPEND_RESP);
  m.set_from(9);
  m.set_to(leader);
  m.set_term(before.term + 5);
  m.set_index(before.last_index);
  n->Receive(m);
  for (int i = 0; i < 2000 && non_member_[leader].load() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(non_member_[leader].load(), 1);
  // Elections of its own (a loaded run) raise the term by one or two, never
  // to the stranger's.
  EXPECT_LT(n->FreshRaftStatus(absl::Seconds(1)).term, before.term + 5);
  for (uint64_t id = 1; id <= 3; ++id) {
    if (id != leader) EXPECT_EQ(non_member_[id].load(), 0) << "node " << id;
  }
}

// A leader cut off from its quorum steps down (CheckQuorum) and fails the
// writes it still holds at once, as retriable, instead of keeping the
// clients until their deadlines (it might never apply them).
TEST_F(NodeTest, LeaderThatStepsDownFailsItsPendingWritesPromptly) {
  const uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  for (uint64_t id = 1; id <= 3; ++id) {
    if (id != leader) Stop(id);
  }
  kvpb::Command cmd;
  cmd.mutable_put()->set_key("k");
  cmd.mutable_put()->set_value("v");
  std::promise<absl::StatusOr<kvpb::WriteResult>> p;
  const absl::Time start = absl::Now();
  nodes_[leader].node->Propose(cmd.SerializeAsString(), start + absl::Seconds(30),
                               [&p](absl::StatusOr<kvpb::WriteResult> r) { p.set_value(r); });
  auto r = p.get_future().get();
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("leadership was lost"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << "held until the deadline";
  EXPECT_FALSE(nodes_[leader].node->is_leader());
}

// A leader whose data is corrupt takes no write (its answers would come
// from data it cannot vouch for) and hands leadership to a healthy voter,
// which takes them.
TEST_F(NodeTest, ACorruptLeaderRefusesWritesAndAHealthyOneTakesThem) {
  const uint64_t bad = WaitForLeader();
  ASSERT_NE(bad, 0u);
  ASSERT_TRUE(Put(bad, "before", "v").ok());
  corrupt_[bad] = true;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  absl::StatusOr<kvpb::WriteResult> r;
  uint64_t at = bad;
  while (absl::Now() < deadline) {
    r = ProposeOnce(at, "k");
    if (r.ok()) break;
    // Refused as retriable by the corrupt leader, or "not leader" once it
    // handed over.
    if (at == bad && absl::IsUnavailable(r.status())) {
      EXPECT_THAT(std::string(r.status().message()),
                  ::testing::HasSubstr(absl::StrCat("node ", bad, " (the leader) has alarm "
                                                    "CORRUPT")));
    } else {
      EXPECT_TRUE(absl::IsFailedPrecondition(r.status()) || absl::IsUnavailable(r.status()))
          << r.status();
    }
    if (const uint64_t l = WaitForLeader(); l != 0) at = l;
  }
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(at, bad) << "the corrupt leader took a write";
  EXPECT_FALSE(nodes_[bad].node->is_leader());
}

// When every voter is corrupt (the hash check found no majority), no
// member's answer can be trusted: the leader keeps office (leadership does
// not go round among corrupt members) and refuses every write, for good,
// until an operator acts; membership changes are still taken, so the
// operator can replace members.
TEST_F(NodeTest, WhenEveryVoterIsCorruptNoWriteIsTaken) {
  const uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(Put(leader, "before", "v").ok());
  for (uint64_t id = 1; id <= 3; ++id) corrupt_[id] = true;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  absl::StatusOr<kvpb::WriteResult> r;
  uint64_t at = leader;
  while (absl::Now() < deadline) {
    r = ProposeOnce(at, "k");
    ASSERT_FALSE(r.ok()) << "node " << at << " took a write while every voter is corrupt";
    if (absl::IsDataLoss(r.status())) break;
    // Until it has heard from every peer that they are corrupt too.
    EXPECT_TRUE(absl::IsFailedPrecondition(r.status()) || absl::IsUnavailable(r.status()))
        << r.status();
    if (const uint64_t l = WaitForLeader(); l != 0) at = l;
  }
  ASSERT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  const std::string why(r.status().message());
  EXPECT_THAT(why, ::testing::HasSubstr(absl::StrCat("node ", at, " (the leader) has alarm "
                                                     "CORRUPT, and so has every other voter")));
  EXPECT_THAT(why, ::testing::HasSubstr("the write was not applied"));
  EXPECT_THAT(why, ::testing::HasSubstr("until an operator acts"));
  // Final: asked again, the same leader gives the same answer.
  r = ProposeOnce(at, "k");
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  EXPECT_TRUE(nodes_[at].node->is_leader());
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_TRUE(absl::IsNotFound(nodes_[id].sm->Get("k").status())) << "applied on " << id;
  }

  // The operator removes a member: taken.
  const uint64_t gone = at % 3 + 1;
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_REMOVE_NODE);
  cc.set_node_id(gone);
  // A leader elected just now refuses changes until it commits an entry of
  // its term ("retry"): asked again until then.
  absl::StatusOr<raftpb::ConfState> cs;
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::promise<absl::StatusOr<raftpb::ConfState>> conf;
    nodes_[at].node->ProposeConfChange(
        cc, absl::Now() + absl::Seconds(10),
        [&conf](absl::StatusOr<raftpb::ConfState> s) { conf.set_value(s); });
    cs = conf.get_future().get();
    if (!absl::IsFailedPrecondition(cs.status()) ||
        !absl::StrContains(cs.status().message(), "retry")) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(cs.ok()) << cs.status();
  EXPECT_EQ(cs->voters_size(), 2);

  // Once the alarms are gone (a restart clears them), writes go on.
  for (uint64_t id = 1; id <= 3; ++id) corrupt_[id] = false;
  const uint64_t l = WaitForLeader();
  ASSERT_NE(l, 0u);
  EXPECT_TRUE(Put(l, "after", "v").ok());
}

// Requests made once the node is stopping are refused at once: nothing
// drains the inbox any more, and an unanswered call would hold the gRPC
// server's shutdown forever.
TEST_F(NodeTest, RequestsAfterStopAreRefusedAtOnce) {
  const uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  Node& node = *nodes_[leader].node;
  node.Stop();
  std::promise<absl::Status> write, read;
  node.Propose("x", absl::Now() + absl::Seconds(30),
               [&write](absl::StatusOr<kvpb::WriteResult> r) { write.set_value(r.status()); });
  node.Read(absl::Now() + absl::Seconds(30), [&read](absl::Status s) { read.set_value(s); });
  auto w = write.get_future();
  auto r = read.get_future();
  ASSERT_EQ(w.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  ASSERT_EQ(r.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(absl::IsUnavailable(w.get()));
  EXPECT_TRUE(absl::IsUnavailable(r.get()));
}

}  // namespace
}  // namespace raftkv::server
