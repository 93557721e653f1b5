#include "server/forwarding.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

constexpr uint64_t kLeader = 1;
constexpr uint64_t kFollower = 2;
constexpr uint64_t kDead = 3;  // a leader whose address takes no connection

// The leader's side: a ForwardService over a scripted local node.
class FakeLeader {
 public:
  explicit FakeLeader(std::function<grpc::Status(const grpc::ServerContextBase&)> admit = nullptr)
      : service_(
            std::move(admit),
            [this](std::string command, absl::Time, WriteDone done) {
              absl::StatusOr<kvpb::WriteResult> r;
              {
                absl::MutexLock l(&mu_);
                commands_.push_back(command);
                r = next_.empty() ? Applied(command) : next_.front();
                if (!next_.empty()) next_.erase(next_.begin());
              }
              done(std::move(r));
            },
            [this](raftpb::ConfChange cc, absl::Time) -> absl::StatusOr<raftpb::ConfState> {
              raftpb::ConfState cs;
              cs.add_voters(kLeader);
              cs.add_learners(cc.node_id());
              return cs;
            }) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(&service_);
    server_ = b.BuildAndStart();
  }
  ~FakeLeader() { server_->Shutdown(); }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // The answers of the next proposals, in order (then: applied).
  void Script(std::vector<absl::StatusOr<kvpb::WriteResult>> next) {
    absl::MutexLock l(&mu_);
    next_ = std::move(next);
  }
  std::vector<std::string> commands() {
    absl::MutexLock l(&mu_);
    return commands_;
  }
  static kvpb::WriteResult Applied(const std::string& command) {
    kvpb::WriteResult r;
    r.mutable_put()->set_version(command.size());
    return r;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> commands_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::StatusOr<kvpb::WriteResult>> next_ ABSL_GUARDED_BY(mu_);
  ForwardService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// The follower's side.
struct Follower {
  std::atomic<uint64_t> leader{kLeader};
  std::string leader_address;
  std::atomic<int> local_proposals{0};
  std::unique_ptr<LeaderProposer> proposer;

  explicit Follower(std::string address) : leader_address(std::move(address)) {
    ForwardingOptions o;
    o.self_id = kFollower;
    o.cluster_id = 7;
    o.leader = [this] { return leader.load(); };
    o.address_of = [this](uint64_t id) {
      if (id == kDead) return std::string("127.0.0.1:1");
      return id == kLeader ? leader_address : std::string();
    };
    o.propose_local = [this](std::string command, absl::Time, WriteDone done) {
      ++local_proposals;
      done(FakeLeader::Applied(command + "-local"));
    };
    o.change_local = [](raftpb::ConfChange, absl::Time) -> absl::StatusOr<raftpb::ConfState> {
      return absl::FailedPreconditionError("not leader; leader is 1");
    };
    o.retry_interval = absl::Milliseconds(10);
    proposer = std::make_unique<LeaderProposer>(o);
  }

  absl::StatusOr<kvpb::WriteResult> Propose(std::string command,
                                            absl::Duration timeout = absl::Seconds(5)) {
    absl::Notification done;
    absl::StatusOr<kvpb::WriteResult> out;
    proposer->Propose(std::move(command), absl::Now() + timeout,
                      [&](absl::StatusOr<kvpb::WriteResult> r) {
                        out = std::move(r);
                        done.Notify();
                      });
    done.WaitForNotification();
    return out;
  }
};

TEST(ForwardingTest, FollowerForwardsToTheLeaderAndGetsItsResult) {
  FakeLeader leader;
  Follower f(leader.address());
  auto r = f.Propose("abc");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->put().version(), 3u);
  EXPECT_EQ(leader.commands(), std::vector<std::string>{"abc"});
  EXPECT_EQ(f.local_proposals.load(), 0);
}

TEST(ForwardingTest, LeaderProposesLocally) {
  FakeLeader leader;
  Follower f(leader.address());
  f.leader = kFollower;  // this node leads
  auto r = f.Propose("abc");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->put().version(), std::string("abc-local").size());
  EXPECT_TRUE(leader.commands().empty());
}

TEST(ForwardingTest, NotLeaderIsRetriedOtherErrorsAreNot) {
  FakeLeader leader;
  Follower f(leader.address());
  // Nothing proposed: retried until it lands, once.
  leader.Script({absl::FailedPreconditionError("not leader; leader is 0"),
                 absl::FailedPreconditionError("not leader; leader is 0")});
  auto r = f.Propose("x");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(leader.commands().size(), 3u);
  // An outcome (here etcd's error from the apply) is the caller's, unchanged.
  leader.Script({absl::OutOfRangeError("etcdserver: mvcc: required revision has been compacted")});
  r = f.Propose("y");
  EXPECT_EQ(r.status(),
            absl::OutOfRangeError("etcdserver: mvcc: required revision has been compacted"));
  EXPECT_EQ(leader.commands().size(), 4u);
}

TEST(ForwardingTest, NoLeaderFailsAtTheDeadline) {
  FakeLeader leader;
  Follower f(leader.address());
  f.leader = 0;
  const absl::Time start = absl::Now();
  auto r = f.Propose("x", absl::Milliseconds(200));
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  EXPECT_TRUE(leader.commands().empty());
}

TEST(ForwardingTest, ALeaderElectedWhileWaitingGetsTheWrite) {
  FakeLeader leader;
  Follower f(leader.address());
  f.leader = 0;
  std::thread elect([&] {
    absl::SleepFor(absl::Milliseconds(50));
    f.leader = kLeader;
  });
  auto r = f.Propose("x");
  elect.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(leader.commands().size(), 1u);
}

// A leader that just died cannot be connected to: the write was never sent,
// so it waits for the next leader instead of failing.
TEST(ForwardingTest, AnUnreachableLeaderIsRetriedUntilANewOneTakesOver) {
  FakeLeader leader;
  Follower f(leader.address());
  f.leader = kDead;
  std::thread elect([&] {
    absl::SleepFor(absl::Milliseconds(300));
    f.leader = kLeader;
  });
  auto r = f.Propose("x");
  elect.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(leader.commands().size(), 1u);
  // Until the deadline, then the caller hears why.
  f.leader = kDead;
  r = f.Propose("y", absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsUnavailable(r.status()) || absl::IsDeadlineExceeded(r.status()))
      << r.status();
}

TEST(ForwardingTest, TheLeaderRefusesCallersItDoesNotAdmit) {
  std::atomic<int> judged{0};
  FakeLeader leader([&](const grpc::ServerContextBase& ctx) {
    ++judged;
    auto it = ctx.client_metadata().find("raftkv-cluster-id");
    EXPECT_NE(it, ctx.client_metadata().end());
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "this node belongs to cluster 8");
  });
  Follower f(leader.address());
  auto r = f.Propose("x");
  EXPECT_EQ(r.status(), absl::FailedPreconditionError("this node belongs to cluster 8"));
  EXPECT_EQ(judged.load(), 1);
  EXPECT_TRUE(leader.commands().empty());
}

TEST(ForwardingTest, MembershipChangesAreForwarded) {
  FakeLeader leader;
  Follower f(leader.address());
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_ADD_LEARNER);
  cc.set_node_id(9);
  auto r = f.proposer->ChangeMembership(cc, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->learners_size(), 1);
  EXPECT_EQ(r->learners(0), 9u);
}

}  // namespace
}  // namespace raftkv::server
