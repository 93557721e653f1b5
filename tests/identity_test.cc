// Cluster identity on real processes: two clusters with the same member ids
// (1, 2, 3) are cross-wired mid-run -- each cluster's address for its node 3
// is made to reach the other cluster's node 3 -- and neither disturbs the
// other: each keeps its leader, its term and its data, takes writes, and
// the node 3 that gets the foreign traffic refuses it and counts it
// (Admin.Status peer_refusals other_cluster); so does a member reached at
// an address meant for another member (wrong_recipient). Once rewired,
// every node catches up with its own cluster's writes and none of the
// other's.
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/cluster_harness.h"
#include "tests/tcp_proxy.h"

namespace raftkv::testing {
namespace {

constexpr absl::Duration kWait = absl::Seconds(20);

int PortOf(const std::string& address) {
  return std::stoi(address.substr(address.rfind(':') + 1));
}

// A 3-member cluster whose members reach node 3 through a proxy (their
// --cluster names the proxy's address for it), so that a test can point
// that address elsewhere. Elections take a second, so that a busy machine
// does not start one by itself mid-test.
class ProxiedCluster {
 public:
  explicit ProxiedCluster(const std::string& name) : cluster_(Options(name)) {}

  absl::Status Start() {
    const int port = PickFreePort();
    proxy_ = std::make_unique<TcpProxy>(port, PortOf(cluster_.address(3)));
    if (absl::Status s = proxy_->Start(); !s.ok()) return s;
    const std::string spec = absl::StrCat("1=", cluster_.address(1), ",2=", cluster_.address(2),
                                          ",3=127.0.0.1:", port);
    for (int id = 1; id <= 3; ++id) {
      absl::Status s = cluster_.Start(
          id, {"--cluster=" + spec, absl::StrCat("--listen=", cluster_.address(id))});
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  Cluster& c() { return cluster_; }
  // Where the members' address for node 3 leads.
  void PointNode3At(const std::string& address) { proxy_->Redirect(PortOf(address)); }

 private:
  static ClusterOptions Options(const std::string& name) {
    ClusterOptions o;
    o.size = 3;
    o.name = name;
    o.tick_ms = 50;
    o.election_ticks = 20;
    return o;
  }

  Cluster cluster_;  // first: its nodes stop after the proxy closed
  std::unique_ptr<TcpProxy> proxy_;
};

// A leader other than node 3 (which the test cuts off from its cluster):
// leadership is handed to node 1 if node 3 has it.
absl::StatusOr<int> LeaderNot3(Cluster& c) {
  auto leader = c.WaitForLeader(kWait);
  if (!leader.ok() || *leader != 3) return leader;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  adminpb::TransferLeaderRequest req;
  req.set_node_id(1);
  adminpb::TransferLeaderResponse resp;
  if (grpc::Status s = c.admin(3)->TransferLeader(&ctx, req, &resp); !s.ok()) {
    return absl::UnavailableError(s.error_message());
  }
  return c.WaitForLeader(kWait, /*excluding=*/3);
}

// (leader, term) as node `id` reports it.
std::pair<uint64_t, uint64_t> ViewOf(Cluster& c, int id) {
  auto s = c.Status(id);
  if (!s.ok()) return {0, 0};
  return {s->leader_id(), s->term()};
}

uint64_t Refused(Cluster& c, int id, const std::string& reason) {
  auto s = c.Status(id);
  if (!s.ok()) return 0;
  auto it = s->peer_refusals().find(reason);
  return it == s->peer_refusals().end() ? 0 : it->second;
}

void PutKeys(Cluster& c, int leader, const std::string& prefix, int from, int to) {
  TestClient client(&c);
  client.set_preferred(leader);
  for (int i = from; i < to; ++i) {
    auto r = client.Put(absl::StrCat(prefix, i), absl::StrCat(prefix, "value", i));
    ASSERT_TRUE(r.ok()) << prefix << i << ": " << r.status();
  }
}

// Node `id` holds keys prefix0..prefix<n-1> and nothing else (read
// linearizably unless `serializable`).
void ExpectOnly(Cluster& c, int id, const std::string& prefix, int n, bool serializable) {
  auto data = c.ScanAll(id, serializable);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->size(), static_cast<size_t>(n)) << "node " << id;
  for (int i = 0; i < n; ++i) {
    auto it = data->find(absl::StrCat(prefix, i));
    ASSERT_NE(it, data->end()) << "node " << id << " lacks " << prefix << i;
    EXPECT_EQ(it->second.value(), absl::StrCat(prefix, "value", i));
  }
}

TEST(IdentityTest, CrossWiredClustersWithTheSameIdsDoNotDisturbEachOther) {
  ProxiedCluster a("a"), b("b");
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(b.Start().ok());
  auto leader_a = LeaderNot3(a.c());
  ASSERT_TRUE(leader_a.ok()) << leader_a.status();
  auto leader_b = LeaderNot3(b.c());
  ASSERT_TRUE(leader_b.ok()) << leader_b.status();
  PutKeys(a.c(), *leader_a, "a/", 0, 20);
  PutKeys(b.c(), *leader_b, "b/", 0, 20);
  std::map<int, std::pair<uint64_t, uint64_t>> before_a, before_b;
  for (int id = 1; id <= 3; ++id) {
    before_a[id] = ViewOf(a.c(), id);
    before_b[id] = ViewOf(b.c(), id);
    EXPECT_EQ(before_a[id].first, static_cast<uint64_t>(*leader_a));
    EXPECT_EQ(before_b[id].first, static_cast<uint64_t>(*leader_b));
  }

  // Each cluster's node 3 address now leads to the other's node 3: the
  // leaders' appends and heartbeats for "node 3" reach a node 3 of another
  // cluster, which refuses them; the real node 3s hear nobody and campaign
  // (Pre-Vote, ignored by members that have a leader).
  a.PointNode3At(b.c().address(3));
  b.PointNode3At(a.c().address(3));
  EXPECT_TRUE(Cluster::WaitFor(
      [&] {
        return Refused(a.c(), 3, "other_cluster") > 0 && Refused(b.c(), 3, "other_cluster") > 0;
      },
      kWait))
      << "a3 refused " << Refused(a.c(), 3, "other_cluster") << ", b3 refused "
      << Refused(b.c(), 3, "other_cluster");
  EXPECT_TRUE(Cluster::WaitFor(
      [&] {
        auto s3a = a.c().Status(3);
        auto s3b = b.c().Status(3);
        return s3a.ok() && s3b.ok() && s3a->role() == "pre-candidate" &&
               s3b->role() == "pre-candidate";
      },
      kWait))
      << "the node 3s were never cut off from their leaders";
  PutKeys(a.c(), *leader_a, "a/", 20, 40);
  PutKeys(b.c(), *leader_b, "b/", 20, 40);
  for (int id = 1; id <= 2; ++id) {
    EXPECT_EQ(ViewOf(a.c(), id), before_a[id]) << "cluster a, node " << id;
    EXPECT_EQ(ViewOf(b.c(), id), before_b[id]) << "cluster b, node " << id;
    ExpectOnly(a.c(), id, "a/", 40, /*serializable=*/false);
    ExpectOnly(b.c(), id, "b/", 40, /*serializable=*/false);
  }

  // Within cluster a, its address for node 3 leading to its node 2: node 2
  // refuses the streams meant for node 3 (wrong_recipient) and nothing else
  // changes.
  a.PointNode3At(a.c().address(2));
  EXPECT_TRUE(Cluster::WaitFor([&] { return Refused(a.c(), 2, "wrong_recipient") > 0; }, kWait));
  PutKeys(a.c(), *leader_a, "a/", 40, 50);
  for (int id = 1; id <= 2; ++id) {
    EXPECT_EQ(ViewOf(a.c(), id), before_a[id]) << "cluster a, node " << id;
    ExpectOnly(a.c(), id, "a/", 50, /*serializable=*/false);
  }

  // Rewired: the node 3s catch up with their own clusters, in the same
  // term under the same leader (their campaigns never raised a term).
  a.PointNode3At(a.c().address(3));
  b.PointNode3At(b.c().address(3));
  auto conv_a = a.c().WaitForConvergence(kWait);
  ASSERT_TRUE(conv_a.ok()) << conv_a.status();
  auto conv_b = b.c().WaitForConvergence(kWait);
  ASSERT_TRUE(conv_b.ok()) << conv_b.status();
  for (int id = 1; id <= 3; ++id) {
    EXPECT_EQ(ViewOf(a.c(), id), before_a[id]) << "cluster a, node " << id;
    EXPECT_EQ(ViewOf(b.c(), id), before_b[id]) << "cluster b, node " << id;
    ExpectOnly(a.c(), id, "a/", 50, /*serializable=*/true);
    ExpectOnly(b.c(), id, "b/", 40, /*serializable=*/true);
  }
  EXPECT_NE(conv_a->data_digest(), conv_b->data_digest());
}

}  // namespace
}  // namespace raftkv::testing
