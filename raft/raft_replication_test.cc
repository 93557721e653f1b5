// Log replication and commitment (Raft paper §5.3, §5.4.2, dissertation
// §10.2.1), snapshots (§7) and restarts.
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "raft/raft.h"
#include "raft/test_cluster.h"

namespace raftkv::raft {
namespace {

raftpb::Entry Ent(uint64_t index, uint64_t term, std::string data = "") {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

// Replaces node `id`'s durable state, then restarts it.
void SetLog(TestCluster& c, uint64_t id, const std::vector<uint64_t>& terms,
            uint64_t hs_term) {
  c.Crash(id);
  MemoryLog& log = *c.node(id).log;
  std::vector<raftpb::Entry> ents;
  for (size_t k = 0; k < terms.size(); ++k) {
    ents.push_back(Ent(k + 1, terms[k], "e" + std::to_string(k + 1)));
  }
  ASSERT_TRUE(log.Append(ents).ok());
  raftpb::HardState hs;
  hs.set_term(hs_term);
  log.SetHardState(hs);
  c.Restart(id);
}

std::vector<std::string> AppliedData(const TestNode& n) {
  std::vector<std::string> out;
  for (const auto& e : n.applied) {
    if (e.type() == raftpb::ENTRY_NORMAL && !e.data().empty()) out.push_back(e.data());
  }
  return out;
}

TEST(ReplicationTest, CommittedEntriesReachEveryNodeInOrder) {
  TestCluster c(5);
  ASSERT_NE(c.ElectLeader(), 0u);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(c.Propose("v" + std::to_string(i)));
  c.Stabilize();
  const auto expected = AppliedData(c.node(c.Leader()));
  ASSERT_EQ(expected.size(), 20u);
  for (uint64_t id : c.ids()) EXPECT_EQ(AppliedData(c.node(id)), expected) << id;
}

// §8: "each leader commit a blank no-op entry into the log at the start of
// its term".
TEST(ReplicationTest, NewLeaderCommitsANoOpOfItsTerm) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const auto& applied = c.node(leader).applied;
  ASSERT_FALSE(applied.empty());
  EXPECT_EQ(applied.back().term(), c.raft(leader).term());
  EXPECT_TRUE(applied.back().data().empty());
}

TEST(ReplicationTest, ProposalsAreRefusedByFollowers) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  auto r = c.raft(leader % 3 + 1).Propose("x");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
}

// Many proposals travel in one append (dissertation §10.2.1 batching).
TEST(ReplicationTest, ABatchOfProposalsIsOneAppendPerFollower) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  std::vector<std::string> batch;
  for (int i = 0; i < 64; ++i) batch.push_back("p" + std::to_string(i));
  auto ids = c.raft(leader).Propose(batch);
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->size(), 64u);
  EXPECT_EQ(ids->back().index, ids->front().index + 63);
  Ready rd = c.raft(leader).GetReady();
  EXPECT_EQ(rd.entries.size(), 64u);
  int appends = 0;
  for (const auto& m : rd.messages) {
    if (m.type() == raftpb::MSG_APPEND) {
      ++appends;
      EXPECT_EQ(m.entries_size(), 64);
    }
  }
  EXPECT_EQ(appends, 2);
  ASSERT_TRUE(c.node(leader).log->Append(rd.entries).ok());
  c.raft(leader).Advance(rd);
}

// Steps every queued message into its recipient, draining no Ready.
void StepPending(TestCluster& c) {
  std::deque<raftpb::Message> out;
  out.swap(c.pending());
  for (const auto& m : out) ASSERT_TRUE(c.raft(m.to()).Step(m).ok());
}

// Finishes a Ready taken by hand per the driver contract (see DrainReady).
void Finish(TestCluster& c, uint64_t id, const Ready& rd) {
  TestNode& n = c.node(id);
  ASSERT_TRUE(n.log->Append(rd.entries).ok());
  if (rd.hard_state) n.log->SetHardState(*rd.hard_state);
  for (const auto& m : rd.messages) c.pending().push_back(m);
  for (const auto& m : rd.persisted_messages) c.pending().push_back(m);
  for (const auto& e : rd.committed_entries) n.applied.push_back(e);
  c.raft(id).Advance(rd);
}

// Proposes `data` on the leader of a stable cluster and delivers the round:
// the followers take it and acknowledge, and the leader commits it (its
// next Ready is not taken). Returns the entry's index.
uint64_t ProposeAndCommit(TestCluster& c, uint64_t leader, const std::string& data) {
  EXPECT_TRUE(c.raft(leader).Propose(data).ok());
  c.ProcessReadies();
  const uint64_t index = c.raft(leader).log().LastIndex();
  StepPending(c);
  c.ProcessReadies();
  StepPending(c);  // both acknowledgements: it commits
  EXPECT_EQ(c.raft(leader).log().committed(), index);
  return index;
}

// Followers learn a new commit index from the appends the round already
// sends (§5.3: they commit min(leaderCommit, last new entry)), not from one
// more empty append each.
TEST(ReplicationTest, TheCommitIndexRidesOnTheRoundsAppends) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  c.Stabilize();
  ASSERT_TRUE(c.raft(leader).Propose("a").ok());
  c.ProcessReadies();
  const uint64_t a = c.raft(leader).log().LastIndex();
  StepPending(c);     // the followers take "a"
  c.ProcessReadies();  // and acknowledge it
  ASSERT_TRUE(c.raft(leader).Propose("b").ok());  // its appends carry the old commit
  StepPending(c);     // the acknowledgements commit "a"
  EXPECT_EQ(c.raft(leader).log().committed(), a);
  Ready rd = c.raft(leader).GetReady();
  std::map<uint64_t, int> appends;
  for (const auto& m : rd.messages) {
    if (m.type() != raftpb::MSG_APPEND) continue;
    ++appends[m.to()];
    EXPECT_EQ(m.entries_size(), 1) << "b's append, to " << m.to();
    EXPECT_EQ(m.commit(), a) << "carries the new commit index, to " << m.to();
  }
  EXPECT_EQ(appends.size(), 2u);
  for (const auto& [to, n] : appends) EXPECT_EQ(n, 1) << "appends to " << to;
  Finish(c, leader, rd);
  c.Stabilize();
  for (uint64_t id : c.ids()) {
    EXPECT_EQ(AppliedData(c.node(id)), (std::vector<std::string>{"a", "b"})) << id;
  }
}

// A follower known to hold the leader's whole log is told the commit index
// without being asked to answer; an append it cannot accept is answered.
TEST(ReplicationTest, ACaughtUpFollowerIsToldTheCommitWithoutAnswering) {
  TestCluster c(3);
  const uint64_t first = c.ElectLeader();
  // On to term 2, where an append's previous entry can have a wrong term
  // that is still a possible one (1; only index 0 has term 0).
  ASSERT_TRUE(c.raft(first).TransferLeadership(first % 3 + 1).ok());
  c.Stabilize();
  const uint64_t leader = c.Leader();
  ASSERT_EQ(leader, first % 3 + 1);
  ASSERT_EQ(c.raft(leader).term(), 2u);
  const uint64_t f1 = leader % 3 + 1, f2 = f1 % 3 + 1;
  c.Stabilize();
  const uint64_t a = ProposeAndCommit(c, leader, "a");
  Ready rd = c.raft(leader).GetReady();
  std::map<uint64_t, raftpb::Message> to;
  for (const auto& m : rd.messages) {
    if (m.type() == raftpb::MSG_APPEND) to[m.to()] = m;
  }
  ASSERT_EQ(to.size(), 2u);
  for (const auto& [id, m] : to) {
    EXPECT_EQ(m.entries_size(), 0) << id;
    EXPECT_EQ(m.commit(), a) << id;
    EXPECT_TRUE(m.commit_only()) << id;
  }
  Finish(c, leader, rd);
  c.pending().clear();

  ASSERT_TRUE(c.raft(f1).Step(to[f1]).ok());
  Ready frd = c.raft(f1).GetReady();
  EXPECT_EQ(c.raft(f1).log().committed(), a);
  ASSERT_FALSE(frd.committed_entries.empty());
  EXPECT_EQ(frd.committed_entries.back().data(), "a");
  for (const auto& m : frd.messages) EXPECT_NE(m.type(), raftpb::MSG_APPEND_RESP);
  for (const auto& m : frd.persisted_messages) EXPECT_NE(m.type(), raftpb::MSG_APPEND_RESP);
  Finish(c, f1, frd);

  raftpb::Message mismatched = to[f2];
  mismatched.set_log_term(mismatched.log_term() - 1);
  ASSERT_TRUE(c.raft(f2).Step(mismatched).ok());
  Ready f2rd = c.raft(f2).GetReady();
  int rejects = 0;
  for (const auto& m : f2rd.persisted_messages) {
    if (m.type() == raftpb::MSG_APPEND_RESP && m.reject()) ++rejects;
  }
  EXPECT_EQ(rejects, 1) << "an append that does not match is answered";
  Finish(c, f2, f2rd);
  c.Stabilize();
  // The leader ignores that (stale) rejection; f2 learns the commit index
  // from the next heartbeat.
  c.TickAll();
  c.Stabilize();
  for (uint64_t id : c.ids()) EXPECT_EQ(AppliedData(c.node(id)), std::vector<std::string>{"a"}) << id;
}

// Without commit notices (Config::commit_notices false) a new commit index
// sends nothing of its own: the followers learn it from the next append
// that carries entries, or from the next heartbeat (§5.3).
TEST(ReplicationTest, WithoutCommitNoticesTheCommitWaitsForTheNextAppendOrHeartbeat) {
  TestCluster c(3, [](Config* cfg) { cfg->commit_notices = false; });
  const uint64_t leader = c.ElectLeader();
  c.Stabilize();
  const uint64_t a = ProposeAndCommit(c, leader, "a");
  Ready rd = c.raft(leader).GetReady();
  for (const auto& m : rd.messages) EXPECT_NE(m.type(), raftpb::MSG_APPEND) << m.to();
  Finish(c, leader, rd);
  c.Stabilize();
  for (uint64_t id : c.ids()) {
    if (id == leader) continue;
    EXPECT_LT(c.raft(id).log().committed(), a) << id;
    EXPECT_TRUE(AppliedData(c.node(id)).empty()) << id;
  }

  // The next proposal's appends carry it.
  ASSERT_TRUE(c.raft(leader).Propose("b").ok());
  c.ProcessReadies();
  StepPending(c);
  for (uint64_t id : c.ids()) {
    if (id == leader) continue;
    EXPECT_EQ(c.raft(id).log().committed(), a) << id;
  }
  c.Stabilize();
  // "b" committed on the leader; the followers hear of it at the heartbeat.
  for (uint64_t id : c.ids()) {
    if (id == leader) continue;
    EXPECT_EQ(AppliedData(c.node(id)), std::vector<std::string>{"a"}) << id;
  }
  c.TickAll();
  c.Stabilize();
  for (uint64_t id : c.ids()) {
    EXPECT_EQ(AppliedData(c.node(id)), (std::vector<std::string>{"a", "b"})) << id;
  }
}

// §10.2.1: the leader's appends may be sent before its own write is done
// (they are in Ready::messages), but it counts itself toward a majority
// only once its entries are durable.
TEST(ReplicationTest, LeaderCountsItselfOnlyOnceDurable) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t f1 = leader % 3 + 1, f2 = f1 % 3 + 1;
  c.Crash(f2);
  ASSERT_TRUE(c.raft(leader).Propose("x").ok());
  Ready rd = c.raft(leader).GetReady();
  ASSERT_EQ(rd.entries.size(), 1u);
  const uint64_t index = rd.entries[0].index();
  raftpb::Message to_f1;
  for (const auto& m : rd.messages) {
    if (m.type() == raftpb::MSG_APPEND && m.to() == f1) to_f1 = m;
  }
  ASSERT_EQ(to_f1.entries_size(), 1) << "sent before the leader persisted";
  // The follower persists and acknowledges while the leader's write is
  // still in progress; the ack is held until the leader advances.
  ASSERT_TRUE(c.raft(f1).Step(to_f1).ok());
  Ready frd = c.raft(f1).GetReady();
  ASSERT_TRUE(c.node(f1).log->Append(frd.entries).ok());
  ASSERT_EQ(frd.persisted_messages.size(), 1u);
  const raftpb::Message ack = frd.persisted_messages[0];
  c.raft(f1).Advance(frd);

  ASSERT_TRUE(c.node(leader).log->Append(rd.entries).ok());
  c.raft(leader).Advance(rd);
  EXPECT_LT(c.raft(leader).log().committed(), index) << "1 of 3 is no majority";
  ASSERT_TRUE(c.raft(leader).Step(ack).ok());
  EXPECT_EQ(c.raft(leader).log().committed(), index);
}

// Raft paper Figure 8 / §5.4.2: "Raft never commits log entries from
// previous terms by counting replicas."
class Figure8Test : public ::testing::TestWithParam<bool> {};

TEST_P(Figure8Test, OldTermEntryOnAMajorityIsNotCommitted) {
  const bool unsafe = GetParam();
  TestCluster c(5, [unsafe](Config* cfg) {
    cfg->unsafe_commit_old_terms = unsafe;
    cfg->pre_vote = false;
    cfg->check_quorum = false;
  });
  // (b)/(c): S1 led term 2 and got index 2 only to S2; S5 led term 3 and
  // wrote its own index 2. Now S1 leads term 4 and re-replicates index 2.
  SetLog(c, 1, {1, 2}, 3);
  SetLog(c, 2, {1, 2}, 3);
  SetLog(c, 3, {1}, 3);
  SetLog(c, 4, {1}, 3);
  SetLog(c, 5, {1, 3}, 3);
  for (uint64_t id : {4, 5}) {
    c.Cut(1, id);
    c.Cut(id, 1);
  }
  c.raft(1).Campaign();
  // Deliver only the election: votes to and from S2 and S3.
  for (int round = 0; round < 10 && c.raft(1).role() != Role::kLeader; ++round) {
    c.ProcessReadies();
    auto batch = std::move(c.pending());
    c.pending().clear();
    for (auto& m : batch) {
      if ((m.type() == raftpb::MSG_VOTE || m.type() == raftpb::MSG_VOTE_RESP) &&
          !(m.from() == 1 && m.to() > 3) && !(m.to() == 1 && m.from() > 3)) {
        ASSERT_TRUE(c.raft(m.to()).Step(m).ok());
      }
    }
  }
  c.ProcessReadies();
  c.pending().clear();
  ASSERT_EQ(c.raft(1).role(), Role::kLeader);
  ASSERT_EQ(c.raft(1).term(), 4u);
  // S2 and S3 hold index 2 (term 2) but not yet the term-4 no-op at 3.
  for (uint64_t id : {2, 3}) {
    raftpb::Message ack;
    ack.set_type(raftpb::MSG_APPEND_RESP);
    ack.set_from(id);
    ack.set_to(1);
    ack.set_term(4);
    ack.set_index(2);
    ASSERT_TRUE(c.raft(1).Step(ack).ok());
  }
  c.ProcessReadies();
  if (!unsafe) {
    EXPECT_LT(c.raft(1).log().committed(), 2u)
        << "index 2 is on 3 of 5 nodes but from term 2: not committed";
  } else {
    EXPECT_EQ(c.raft(1).log().committed(), 2u);
  }
  // (d): S1 crashes; S5 (last term 3) can win over S2, S3, S4 and
  // overwrite index 2 everywhere.
  c.Crash(1);
  c.Heal();
  c.pending().clear();
  // S5's first try is in term 4, where S2 and S3 already voted for S1.
  for (int i = 0; i < 3 && c.raft(5).role() != Role::kLeader; ++i) {
    c.raft(5).Campaign();
    c.Stabilize();
  }
  ASSERT_EQ(c.raft(5).role(), Role::kLeader);
  ASSERT_TRUE(c.Propose("after"));
  c.Stabilize();
  const raftpb::Entry& s5_at_2 = c.node(5).applied.at(1);
  EXPECT_EQ(s5_at_2.term(), 3u);
  const bool s1_applied_2 = c.node(1).applied.size() >= 2;
  EXPECT_EQ(s1_applied_2, unsafe);
  if (s1_applied_2) {
    // The broken rule let two nodes apply different entries at index 2.
    EXPECT_NE(c.node(1).applied[1].term(), s5_at_2.term());
  }
}

INSTANTIATE_TEST_SUITE_P(SafeAndPlantedBug, Figure8Test, ::testing::Bool());

// §5.3 optimization: the follower's hint lets the leader skip a whole
// conflicting term per round trip instead of one entry.
TEST(ReplicationTest, FastBacktrackingSkipsConflictingTerms) {
  TestCluster c(3, [](Config* cfg) { cfg->pre_vote = false; });
  std::vector<uint64_t> leader_terms(10, 1), follower_terms(10, 1);
  leader_terms.insert(leader_terms.end(), 50, 3);
  follower_terms.insert(follower_terms.end(), 80, 2);
  SetLog(c, 1, leader_terms, 3);
  SetLog(c, 2, follower_terms, 3);
  SetLog(c, 3, leader_terms, 3);
  c.raft(1).Campaign();
  int rejections = 0;
  for (int round = 0; round < 50 && !c.pending().empty() + 1; ++round) {
    c.ProcessReadies();
    if (c.pending().empty()) break;
    auto batch = std::move(c.pending());
    c.pending().clear();
    for (auto& m : batch) {
      if (m.type() == raftpb::MSG_APPEND_RESP && m.reject() && m.from() == 2) ++rejections;
      ASSERT_TRUE(c.raft(m.to()).Step(m).ok());
    }
  }
  ASSERT_EQ(c.raft(1).role(), Role::kLeader);
  EXPECT_LE(rejections, 3) << "one entry per round trip would take ~70";
  EXPECT_EQ(c.raft(2).log().LastIndex(), c.raft(1).log().LastIndex());
  EXPECT_EQ(c.node(2).log->Term(40).value(), 3u) << "conflicting suffix replaced";
}

TEST(ReplicationTest, FollowerBehindCompactionReceivesASnapshot) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t lagging = leader % 3 + 1;
  c.Crash(lagging);
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(c.Propose("v" + std::to_string(i)));
  c.Stabilize();
  for (uint64_t id : c.ids()) {
    if (id == lagging) continue;
    const uint64_t applied = c.node(id).applied.back().index();
    ASSERT_TRUE(c.node(id).log->Compact(applied, c.raft(id).conf_state(), "image").ok());
  }
  c.Restart(lagging);
  for (int i = 0; i < 5; ++i) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_EQ(c.node(lagging).log->GetSnapshot()->data(), "image");
  EXPECT_EQ(c.raft(lagging).log().committed(), c.raft(leader).log().committed());
  ASSERT_TRUE(c.Propose("after"));
  c.Stabilize();
  EXPECT_EQ(c.node(lagging).applied.back().data(), "after");
}

// A follower installs a snapshot only if it is newer than what it has.
TEST(ReplicationTest, StaleSnapshotIsIgnored) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.Propose("v"));
  c.Stabilize();
  const uint64_t f = leader % 3 + 1;
  const uint64_t committed = c.raft(f).log().committed();
  raftpb::Message m;
  m.set_type(raftpb::MSG_SNAPSHOT);
  m.set_from(leader);
  m.set_to(f);
  m.set_term(c.raft(leader).term());
  m.mutable_snapshot()->mutable_metadata()->set_index(2);
  m.mutable_snapshot()->mutable_metadata()->set_term(1);
  ASSERT_TRUE(c.raft(f).Step(m).ok());
  Ready rd = c.raft(f).GetReady();
  EXPECT_FALSE(rd.snapshot.has_value());
  ASSERT_EQ(rd.persisted_messages.size(), 1u);
  EXPECT_EQ(rd.persisted_messages[0].index(), committed);
  c.raft(f).Advance(rd);
}

TEST(ReplicationTest, CrashedFollowerCatchesUpAfterRestart) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t f = leader % 3 + 1;
  c.Crash(f);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.Propose("v" + std::to_string(i)));
  c.Stabilize();
  c.Restart(f);
  for (int i = 0; i < 3; ++i) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_EQ(c.raft(f).log().committed(), c.raft(leader).log().committed());
  EXPECT_EQ(AppliedData(c.node(f)), AppliedData(c.node(leader)));
}

TEST(ReplicationTest, RestartedLeaderRecoversItsLog) {
  TestCluster c(1);
  ASSERT_EQ(c.ElectLeader(), 1u);
  ASSERT_TRUE(c.Propose("a"));
  c.Stabilize();
  const uint64_t last = c.raft(1).log().LastIndex();
  c.Crash(1);
  c.Restart(1);
  EXPECT_EQ(c.raft(1).log().LastIndex(), last);
  EXPECT_EQ(c.raft(1).log().committed(), last);
  EXPECT_EQ(c.raft(1).log().applied(), last) << "no replay of applied entries";
  ASSERT_EQ(c.ElectLeader(), 1u);
}

}  // namespace
}  // namespace raftkv::raft
