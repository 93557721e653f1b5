// Faults under load: the leader SIGKILLed while several clients write, and
// every node SIGKILLed at once. No acknowledged write may be lost, the
// cluster must keep accepting writes, and restarted nodes must catch up to
// identical data.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

constexpr int kWriters = 4;

// Every node's data, read after convergence, holds every acknowledged write.
void ExpectEveryNodeHasAll(Cluster& c, const std::vector<WriteLoad::Ack>& acks) {
  for (int id : c.running_ids()) {
    auto data = c.ScanAll(id, /*serializable=*/true);
    ASSERT_TRUE(data.ok()) << data.status();
    absl::Status s = CheckAcked(acks, *data);
    EXPECT_TRUE(s.ok()) << "node " << id << ": " << s;
  }
}

TEST(FailoverTest, LeaderKilledDuringWritesThenRestartedCatchesUp) {
  Cluster c;
  ASSERT_TRUE(c.StartAll().ok());
  auto old_leader = c.WaitForLeader();
  ASSERT_TRUE(old_leader.ok()) << old_leader.status();

  WriteLoad load(&c, kWriters);
  load.Start();
  ASSERT_TRUE(Cluster::WaitFor([&] { return load.acked() >= 200; }, absl::Seconds(30)))
      << "only " << load.acked() << " writes acknowledged";

  // SIGKILL the leader mid-stream: some writes are in flight.
  c.Kill(*old_leader);
  const absl::Time killed = absl::Now();
  auto new_leader = c.WaitForLeader(absl::Seconds(15));
  ASSERT_TRUE(new_leader.ok()) << new_leader.status();
  EXPECT_NE(*new_leader, *old_leader);
  const absl::Duration failover = absl::Now() - killed;

  // Writes continue: every writer gets writes through the new leader.
  ASSERT_TRUE(Cluster::WaitFor([&] { return load.MinAckedSince(killed) >= 20; },
                               absl::Seconds(30)))
      << "writes did not resume after the leader was killed; fewest per writer: "
      << load.MinAckedSince(killed);

  // Acknowledged writes are readable now, on the survivors, linearizably.
  {
    auto acks = load.acks();
    auto data = c.ScanAll(*new_leader, /*serializable=*/false);
    ASSERT_TRUE(data.ok()) << data.status();
    absl::Status s = CheckAcked(acks, *data);
    EXPECT_TRUE(s.ok()) << s;
  }

  // Restart the old leader while writes go on; it must catch up.
  ASSERT_TRUE(c.Start(*old_leader).ok());
  const absl::Time restarted = absl::Now();
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        auto leader = c.Status(*new_leader);
        auto old = c.Status(*old_leader);
        return leader.ok() && old.ok() && old->applied_index() > 0 &&
               old->leader_id() == leader->leader_id() &&
               old->applied_index() + 50 >= leader->commit_index();
      },
      absl::Seconds(30)))
      << "the restarted node did not catch up with the leader while writes went on";
  const absl::Duration catch_up = absl::Now() - restarted;
  ASSERT_TRUE(Cluster::WaitFor([&] { return load.MinAckedSince(restarted) >= 20; },
                               absl::Seconds(30)));
  load.Stop();

  EXPECT_THAT(load.errors(), ::testing::IsEmpty())
      << "writes failed outright (the client retries for 20 s)";

  auto converged = c.WaitForConvergence();
  ASSERT_TRUE(converged.ok()) << converged.status();
  const auto acks = load.acks();
  EXPECT_GE(converged->key_count(), acks.size());
  ExpectEveryNodeHasAll(c, acks);

  std::cerr << "acknowledged writes: " << acks.size() << "; failover took "
            << absl::FormatDuration(failover) << "; the old leader caught up in "
            << absl::FormatDuration(catch_up) << "\n";
}

TEST(FailoverTest, AllNodesKilledDuringWritesKeepAcknowledgedData) {
  Cluster c;
  ASSERT_TRUE(c.StartAll().ok());
  ASSERT_TRUE(c.WaitForLeader().ok());

  WriteLoad load(&c, kWriters);
  load.Start();
  ASSERT_TRUE(Cluster::WaitFor([&] { return load.acked() >= 300; }, absl::Seconds(30)))
      << "only " << load.acked() << " writes acknowledged";
  // Every node dies at once, with writes in flight.
  c.KillAll();
  const size_t acked_before_crash = load.acked();

  // The writers' calls in flight keep retrying (same client id and
  // sequence) and finish against the restarted cluster; then they stop.
  ASSERT_TRUE(c.StartAll().ok());
  load.Stop();
  const auto acks = load.acks();
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  auto converged = c.WaitForConvergence();
  ASSERT_TRUE(converged.ok()) << converged.status();
  EXPECT_GE(converged->key_count(), acks.size());

  auto data = c.ScanAll(*leader, /*serializable=*/false);
  ASSERT_TRUE(data.ok()) << data.status();
  absl::Status s = CheckAcked(acks, *data);
  EXPECT_TRUE(s.ok()) << s;
  ExpectEveryNodeHasAll(c, acks);

  // And the restarted cluster takes writes.
  TestClient client(&c);
  auto put = client.Put("after-restart", "yes");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_GT(put->version(), converged->commit_index());
  std::cerr << "acknowledged writes: " << acked_before_crash << " before the crash, "
            << acks.size() << " in all\n";
}

// A lone node (its two peers dead) must not answer a linearizable read from
// its own state, even while it still thinks it leads; serializable reads
// still work and say so, writes are refused once it steps down.
TEST(FailoverTest, AMinorityServesNoLinearizableReadsOrWrites) {
  Cluster c;
  ASSERT_TRUE(c.StartAll().ok());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  TestClient client(&c);
  auto put = client.Put("k", "v1");
  ASSERT_TRUE(put.ok()) << put.status();
  ASSERT_TRUE(c.WaitForConvergence().ok());

  const int lone = *leader;
  for (int id = 1; id <= c.size(); ++id) {
    if (id != lone) c.Kill(id);
  }
  kvpb::GetRequest req;
  req.set_key("k");
  {
    kvpb::GetResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::Status s = c.kv(lone)->Get(&ctx, req, &resp);
    EXPECT_FALSE(s.ok()) << "a leader without a quorum served a linearizable read";
    EXPECT_TRUE(s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
        << s.error_code() << ": " << s.error_message();
  }
  {
    req.set_serializable(true);
    kvpb::GetResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = c.kv(lone)->Get(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(resp.header().serializable());
    EXPECT_EQ(resp.kv().value(), "v1");
  }
  // Check-quorum: the lone leader steps down, and then refuses writes with
  // "not leader" and no leader to point to.
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        auto s = c.Status(lone);
        return s.ok() && s->role() != "leader";
      },
      absl::Seconds(10)))
      << "a leader cut off from every peer did not step down";
  {
    kvpb::PutRequest w;
    w.set_key("k");
    w.set_value("v2");
    kvpb::PutResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::Status s = c.kv(lone)->Put(&ctx, w, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
    EXPECT_THAT(s.error_message(), ::testing::StartsWith("not leader"));
    EXPECT_EQ(TrailingMetadata(ctx, "raftkv-leader-addr"), "");
  }
  // The peers come back: one leader again, the value is intact, writes work.
  ASSERT_TRUE(c.StartAll().ok());
  ASSERT_TRUE(c.WaitForLeader().ok());
  auto got = client.Get("k");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->kv().value(), "v1");
  EXPECT_TRUE(client.Put("k", "v3").ok());
}

// A follower down for a while must be reached again soon after it restarts,
// not after the gRPC channel's reconnect backoff (which grows to minutes).
TEST(FailoverTest, FollowerDownForAWhileCatchesUpSoonAfterRestart) {
  Cluster c;
  ASSERT_TRUE(c.StartAll().ok());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int follower = *leader % c.size() + 1;
  c.Kill(follower);
  TestClient client(&c);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(client.Put(absl::StrCat("k", i), "v").ok());
  // The outage itself is the scenario: long enough for the leader's
  // reconnect attempts to the dead peer to back off.
  absl::SleepFor(absl::Seconds(20));
  for (int i = 100; i < 200; ++i) ASSERT_TRUE(client.Put(absl::StrCat("k", i), "v").ok());
  auto target = c.Status(*leader);
  ASSERT_TRUE(target.ok()) << target.status();

  ASSERT_TRUE(c.Start(follower).ok());
  ASSERT_TRUE(Cluster::WaitFor([&] { return c.Status(follower).ok(); }, absl::Seconds(30)));
  const absl::Time serving = absl::Now();
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        auto s = c.Status(follower);
        return s.ok() && s->applied_index() >= target->commit_index();
      },
      absl::Seconds(60)));
  const absl::Duration catch_up = absl::Now() - serving;
  std::cerr << "after a 20 s outage the follower caught up in "
            << absl::FormatDuration(catch_up) << "\n";
  EXPECT_LT(catch_up, absl::Seconds(3));
  auto converged = c.WaitForConvergence();
  ASSERT_TRUE(converged.ok()) << converged.status();
  EXPECT_EQ(converged->key_count(), 200u);
}

}  // namespace
}  // namespace raftkv::testing
