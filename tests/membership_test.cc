// Membership changes on real processes: growing and shrinking a cluster
// under writes (new nodes join with --join and an empty data dir, catch up
// by snapshot then log, and are promoted automatically), removing the
// leader, and leadership transfer. No acknowledged write may be lost and all
// members must converge to identical data.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <thread>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

constexpr absl::Duration kWait = absl::Seconds(20);

ClusterOptions Options(int size, int spares) {
  ClusterOptions o;
  o.size = size;
  o.spares = spares;
  // Small snapshots, so joining nodes catch up by snapshot first.
  o.extra_flags = {"--snapshot_entries=200", "--snapshot_keep_entries=50"};
  return o;
}

// The node among `ids` that says it leads (0 if none answers so).
int FindLeader(Cluster& c, const std::vector<int>& ids) {
  for (int id : ids) {
    auto s = c.Status(id);
    if (s.ok() && s->role() == "leader") return id;
  }
  return 0;
}

int WaitLeaderAmong(Cluster& c, const std::vector<int>& ids) {
  int leader = 0;
  Cluster::WaitFor([&] { return (leader = FindLeader(c, ids)) != 0; }, kWait,
                   absl::Milliseconds(50));
  return leader;
}

template <typename Call>
grpc::Status AdminOnLeader(Cluster& c, const std::vector<int>& ids, Call call) {
  grpc::Status last(grpc::StatusCode::UNAVAILABLE, "no leader");
  const absl::Time give_up = absl::Now() + kWait;
  while (absl::Now() < give_up) {
    const int leader = WaitLeaderAmong(c, ids);
    if (leader == 0) continue;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    last = call(c.admin(leader), &ctx);
    // Retry what a new leader or a finishing change can cure.
    if (last.ok() || (last.error_code() != grpc::StatusCode::FAILED_PRECONDITION &&
                      last.error_code() != grpc::StatusCode::UNAVAILABLE &&
                      last.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED)) {
      return last;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return last;
}

grpc::Status Remove(Cluster& c, const std::vector<int>& ids, int node) {
  return AdminOnLeader(c, ids, [&](adminpb::Admin::Stub* a, grpc::ClientContext* ctx) {
    adminpb::RemoveMemberRequest req;
    req.set_node_id(node);
    adminpb::RemoveMemberResponse resp;
    return a->RemoveMember(ctx, req, &resp);
  });
}

grpc::Status Transfer(Cluster& c, int leader, int target, uint64_t* new_leader) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  adminpb::TransferLeaderRequest req;
  req.set_node_id(target);
  adminpb::TransferLeaderResponse resp;
  grpc::Status s = c.admin(leader)->TransferLeader(&ctx, req, &resp);
  *new_leader = resp.leader_id();
  return s;
}

// Waits until node `id` is a voter in the leader's (among `ids`) view.
bool WaitVoter(Cluster& c, const std::vector<int>& ids, int id) {
  return Cluster::WaitFor(
      [&] {
        const int leader = FindLeader(c, ids);
        if (leader == 0) return false;
        auto s = c.Status(leader);
        if (!s.ok()) return false;
        for (uint64_t v : s->voters()) {
          if (v == static_cast<uint64_t>(id)) return true;
        }
        return false;
      },
      absl::Seconds(30), absl::Milliseconds(50));
}

std::string Members(const adminpb::StatusResponse& s) {
  return absl::StrCat("voters [", absl::StrJoin(s.voters(), ","), "] learners [",
                      absl::StrJoin(s.learners(), ","), "]");
}

void CheckData(Cluster& c, WriteLoad& load) {
  auto conv = c.WaitForConvergence(absl::Seconds(30));
  ASSERT_TRUE(conv.ok()) << conv.status();
  for (int id : c.running_ids()) {
    auto data = c.ScanAll(id, /*serializable=*/true);
    ASSERT_TRUE(data.ok()) << data.status();
    EXPECT_TRUE(CheckAcked(load.acks(), *data).ok()) << "node " << id << ": "
                                                     << CheckAcked(load.acks(), *data);
  }
}

TEST(MembershipTest, GrowThreeToFiveAndShrinkBackUnderWrites) {
  Cluster c(Options(3, 2));
  ASSERT_TRUE(c.StartAll().ok());
  ASSERT_TRUE(c.WaitForLeader().ok());
  WriteLoad load(&c, 3);
  load.Start();
  absl::SleepFor(absl::Seconds(1));  // past a compaction: joiners need a snapshot

  const std::vector<int> all = {1, 2, 3, 4, 5};
  ASSERT_TRUE(c.Start(4).ok());
  ASSERT_TRUE(WaitVoter(c, all, 4)) << "node 4 was not promoted";
  ASSERT_TRUE(c.Start(5).ok());
  ASSERT_TRUE(WaitVoter(c, all, 5)) << "node 5 was not promoted";
  {
    auto s = c.Status(FindLeader(c, all));
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->voters_size(), 5) << Members(*s);
    EXPECT_EQ(s->members_size(), 5);
    for (const auto& m : s->members()) {
      EXPECT_EQ(m.address(), c.address(static_cast<int>(m.id())));
    }
  }
  const size_t before = load.acked();
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_GT(load.acked(), before) << "writes stalled with five members";

  // Shrink: a founder and a joined node leave.
  ASSERT_TRUE(Remove(c, all, 2).ok());
  ASSERT_TRUE(Remove(c, all, 4).ok());
  {
    auto s = c.Status(4);
    ASSERT_TRUE(Cluster::WaitFor(
        [&] {
          s = c.Status(4);
          return s.ok() && s->removed();
        },
        kWait))
        << "node 4 does not say it was removed";
  }
  c.Stop(2);
  c.Stop(4);
  const std::vector<int> left = {1, 3, 5};
  const size_t mid = load.acked();
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_GT(load.acked(), mid) << "writes stalled after shrinking";
  load.Stop();
  EXPECT_GT(load.acked(), 50u);
  auto s = c.Status(WaitLeaderAmong(c, left));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->voters_size(), 3) << Members(*s);
  CheckData(c, load);
}

TEST(MembershipTest, TransferLeadershipBackAndForthThenRemoveTheLeader) {
  Cluster c(Options(3, 0));
  ASSERT_TRUE(c.StartAll().ok());
  auto first = c.WaitForLeader();
  ASSERT_TRUE(first.ok());
  WriteLoad load(&c, 2);
  load.Start();

  int leader = *first;
  const int target = leader % 3 + 1;
  uint64_t got = 0;
  grpc::Status ts = Transfer(c, leader, target, &got);
  ASSERT_TRUE(ts.ok()) << ts.error_message();
  EXPECT_EQ(got, static_cast<uint64_t>(target));
  auto now = c.WaitForLeader();
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(*now, target);
  // And back, to the chosen node.
  ts = Transfer(c, target, leader, &got);
  ASSERT_TRUE(ts.ok()) << ts.error_message();
  EXPECT_EQ(got, static_cast<uint64_t>(leader));
  // To "the most up-to-date" one.
  now = c.WaitForLeader();
  ASSERT_TRUE(now.ok());
  ts = Transfer(c, *now, 0, &got);
  ASSERT_TRUE(ts.ok()) << ts.error_message();
  EXPECT_NE(got, static_cast<uint64_t>(*now));

  // Followers refuse with a leader hint.
  now = c.WaitForLeader();
  ASSERT_TRUE(now.ok());
  leader = *now;
  {
    const int follower = leader % 3 + 1;
    grpc::ClientContext ctx;
    adminpb::RemoveMemberRequest req;
    req.set_node_id(leader);
    adminpb::RemoveMemberResponse resp;
    grpc::Status s = c.admin(follower)->RemoveMember(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
    EXPECT_EQ(TrailingMetadata(ctx, "raftkv-leader-id"), absl::StrCat(leader));
  }
  {
    grpc::ClientContext ctx;
    adminpb::PromoteMemberRequest req;
    req.set_node_id(leader);  // already a voter
    adminpb::PromoteMemberResponse resp;
    grpc::Status s = c.admin(leader)->PromoteMember(&ctx, req, &resp);
    EXPECT_FALSE(s.ok());
  }

  // Remove the leader itself: it steps down once the change commits and
  // one of the others takes over.
  ASSERT_TRUE(Remove(c, {1, 2, 3}, leader).ok());
  std::vector<int> rest;
  for (int id = 1; id <= 3; ++id) {
    if (id != leader) rest.push_back(id);
  }
  const absl::Time removed_at = absl::Now();
  const int next = WaitLeaderAmong(c, rest);
  ASSERT_NE(next, 0) << "no leader after removing the leader";
  EXPECT_LT(absl::Now() - removed_at, absl::Seconds(5));
  // The removed node keeps running without disturbing anyone, and says so.
  EXPECT_TRUE(Cluster::WaitFor(
      [&] {
        auto s = c.Status(leader);
        return s.ok() && s->removed() && s->role() != "leader";
      },
      kWait));
  const size_t mid = load.acked();
  absl::SleepFor(absl::Seconds(1));
  EXPECT_GT(load.acked(), mid) << "writes stalled after removing the leader";
  auto s = c.Status(next);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->voters_size(), 2) << Members(*s);
  EXPECT_EQ(FindLeader(c, rest), next) << "leadership moved while the removed node ran";
  c.Stop(leader);
  load.Stop();
  CheckData(c, load);
}

// Quorum math follows the new configuration: with one founder down, a node
// added and promoted makes four voters, three of them up, which still commit.
TEST(MembershipTest, NodeAddedWhileAMemberIsDownStillCommits) {
  Cluster c(Options(3, 1));
  ASSERT_TRUE(c.StartAll().ok());
  auto first = c.WaitForLeader();
  ASSERT_TRUE(first.ok());
  const int down = *first % 3 + 1;
  c.Kill(down);
  WriteLoad load(&c, 2);
  load.Start();
  const std::vector<int> all = {1, 2, 3, 4};
  ASSERT_TRUE(c.Start(4).ok());
  ASSERT_TRUE(WaitVoter(c, all, 4)) << "node 4 was not promoted";
  {
    auto s = c.Status(FindLeader(c, all));
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->voters_size(), 4) << Members(*s);
  }
  const absl::Time promoted = absl::Now();
  EXPECT_TRUE(Cluster::WaitFor([&] { return load.MinAckedSince(promoted) >= 5; }, kWait))
      << "no commits with 3 of 4 voters up";
  ASSERT_TRUE(c.Start(down).ok());
  load.Stop();
  CheckData(c, load);
}

uint64_t Refused(Cluster& c, int id, const std::string& reason) {
  auto s = c.Status(id);
  if (!s.ok()) return 0;
  auto it = s->peer_refusals().find(reason);
  return it == s->peer_refusals().end() ? 0 : it->second;
}

// A member removed while it was down never hears that it was: restarted
// (twice), it campaigns with the old membership. Its requests change
// nothing -- same leader, same term, writes go on -- and the leader drops
// them, counted as non_member.
TEST(MembershipTest, RemovedMemberThatKeepsCampaigningChangesNothing) {
  ClusterOptions o = Options(3, 0);
  // One-second elections: a loaded machine does not start one by itself.
  o.tick_ms = 50;
  o.election_ticks = 20;
  Cluster c(o);
  ASSERT_TRUE(c.StartAll().ok());
  auto first = c.WaitForLeader();
  ASSERT_TRUE(first.ok()) << first.status();
  const int leader = *first;
  const int victim = leader % 3 + 1;
  std::vector<int> rest;
  for (int id = 1; id <= 3; ++id) {
    if (id != victim) rest.push_back(id);
  }
  c.Kill(victim);
  ASSERT_TRUE(Remove(c, rest, victim).ok());
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        auto s = c.Status(leader);
        return s.ok() && s->voters_size() == 2;
      },
      kWait));
  WriteLoad load(&c, 2);
  load.Start();
  std::map<int, std::pair<uint64_t, uint64_t>> before;  // leader and term
  for (int id : rest) {
    auto s = c.Status(id);
    ASSERT_TRUE(s.ok());
    before[id] = {s->leader_id(), s->term()};
  }

  for (int round = 0; round < 2; ++round) {
    const uint64_t dropped = Refused(c, leader, "non_member");
    if (round == 0) {
      ASSERT_TRUE(c.Start(victim).ok());
    } else {
      ASSERT_TRUE(c.Restart(victim).ok());
    }
    EXPECT_TRUE(
        Cluster::WaitFor([&] { return Refused(c, leader, "non_member") >= dropped + 2; }, kWait))
        << "round " << round << ": the leader dropped "
        << Refused(c, leader, "non_member") - dropped << " messages of the removed node";
    for (int id : rest) {
      auto s = c.Status(id);
      ASSERT_TRUE(s.ok());
      EXPECT_EQ(std::make_pair(s->leader_id(), s->term()), before[id])
          << "round " << round << ", node " << id;
    }
    for (int id : rest) {
      if (id != leader) EXPECT_EQ(Refused(c, id, "non_member"), 0u) << "a follower drops too";
    }
  }
  auto s = c.Status(victim);
  ASSERT_TRUE(s.ok());
  EXPECT_NE(s->role(), "leader");
  const absl::Time now = absl::Now();
  EXPECT_TRUE(Cluster::WaitFor([&] { return load.MinAckedSince(now) >= 5; }, kWait))
      << "writes stalled while the removed node campaigned";
  c.Stop(victim);
  load.Stop();
  CheckData(c, load);
}

// SIGKILL the leader (and the node being changed) at a random moment of a
// membership change, restart everyone: all nodes agree on one configuration
// (the change happened or it did not) and no acknowledged write is lost.
TEST(MembershipTest, SigkillDuringChangesLeavesOneAgreedConfiguration) {
  Cluster c(Options(3, 1));
  ASSERT_TRUE(c.StartAll().ok());
  ASSERT_TRUE(c.WaitForLeader().ok());
  WriteLoad load(&c, 2);
  load.Start();
  std::mt19937 rng(::testing::UnitTest::GetInstance()->random_seed());
  const std::vector<int> all = {1, 2, 3, 4};
  auto kill_soon = [&](int leader, int other) {
    absl::SleepFor(absl::Milliseconds(std::uniform_int_distribution<int>(0, 150)(rng)));
    c.Kill(leader);
    if (other != leader && c.running(other)) c.Kill(other);
  };
  auto restart_all_and_agree = [&](const char* what, WriteLoad& writes) {
    for (int id : all) {
      if (!c.running(id) && (id <= 3 || std::filesystem::exists(c.data_dir(id)))) {
        ASSERT_TRUE(c.Start(id).ok()) << what;
      }
    }
    const int leader = WaitLeaderAmong(c, all);
    ASSERT_NE(leader, 0) << what << ": no leader after restarting";
    // The leader's configuration once its log is committed everywhere.
    auto conv = c.Status(leader);
    ASSERT_TRUE(conv.ok());
    std::string members = Members(*conv);
    // Nodes outside it take no part (a removed node stops receiving the log).
    for (int id : c.running_ids()) {
      bool in = false;
      for (uint64_t v : conv->voters()) in |= v == static_cast<uint64_t>(id);
      for (uint64_t l : conv->learners()) in |= l == static_cast<uint64_t>(id);
      if (!in) c.Stop(id);
    }
    // Convergence needs a quiet log: stop the writes.
    writes.Stop();
    auto q = c.WaitForConvergence(absl::Seconds(30));
    ASSERT_TRUE(q.ok()) << what << ": " << q.status();
    members = Members(*q);
    for (int id : c.running_ids()) {
      auto s = c.Status(id);
      ASSERT_TRUE(s.ok()) << what;
      EXPECT_EQ(Members(*s), members) << what << ": node " << id << " disagrees";
    }
    std::cerr << what << ": agreed on " << members << "\n";
  };

  // 1. Adding node 4 (it asks the leader itself on start).
  int leader = WaitLeaderAmong(c, all);
  ASSERT_TRUE(c.Start(4).ok());
  kill_soon(leader, 4);
  restart_all_and_agree("add", load);
  if (HasFailure()) return;
  CheckData(c, load);

  // 2. Removing a founder that is not the leader.
  WriteLoad load2(&c, 2, "x");
  load2.Start();
  leader = WaitLeaderAmong(c, all);
  ASSERT_NE(leader, 0);
  const int victim = leader % 3 + 1;
  std::thread remover([&] { (void)Remove(c, all, victim); });
  kill_soon(leader, leader);
  remover.join();
  restart_all_and_agree("remove", load2);
  if (HasFailure()) return;
  CheckData(c, load2);
  CheckData(c, load);
}

}  // namespace
}  // namespace raftkv::testing
