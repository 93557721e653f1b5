// The peer transport's fault layer: the injector's decisions, and messages
// over a real stream to a PeerService on 127.0.0.1 being dropped, delayed
// and blocked per destination.
#include "server/transport.h"

#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

TEST(FaultInjectorTest, DecidesPerPeer) {
  FaultInjector f(7);
  absl::Duration d;
  EXPECT_TRUE(f.Admit(2, &d));  // no faults: everything passes undelayed
  EXPECT_EQ(d, absl::ZeroDuration());

  PeerFaults blocked;
  blocked.blocked = true;
  PeerFaults slow;
  slow.delay = absl::Milliseconds(30);
  PeerFaults lossy;
  lossy.drop_probability = 0.5;
  f.Set({{2, blocked}, {3, slow}, {4, lossy}});
  EXPECT_TRUE(f.Blocked(2));
  EXPECT_FALSE(f.Blocked(3));
  int passed2 = 0, passed4 = 0;
  for (int i = 0; i < 1000; ++i) {
    passed2 += f.Admit(2, &d);
    ASSERT_TRUE(f.Admit(3, &d));
    EXPECT_EQ(d, absl::Milliseconds(30));
    passed4 += f.Admit(4, &d);
    EXPECT_TRUE(f.Admit(5, &d));
  }
  EXPECT_EQ(passed2, 0);
  EXPECT_GT(passed4, 400);
  EXPECT_LT(passed4, 600);
  EXPECT_EQ(f.dropped(), 1000u + (1000u - passed4));
  EXPECT_EQ(f.delayed(), 1000u);

  f.Set({});  // healed
  EXPECT_TRUE(f.Admit(2, &d));
  EXPECT_FALSE(f.Blocked(2));
}

// A PeerService for node 2 that records what arrives, and when.
class Receiver {
 public:
  Receiver()
      : service_(2, 99, [this](raftpb::Message m) {
          absl::MutexLock l(&mu_);
          got_.push_back({m.index(), absl::Now()});
        }) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(&service_);
    server_ = b.BuildAndStart();
  }
  ~Receiver() { server_->Shutdown(); }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Waits until `n` messages arrived; their (index, arrival) pairs.
  std::vector<std::pair<uint64_t, absl::Time>> WaitFor(size_t n) {
    absl::MutexLock l(&mu_);
    auto enough = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return got_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return got_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::pair<uint64_t, absl::Time>> got_ ABSL_GUARDED_BY(mu_);
  PeerService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

raftpb::Message To2(uint64_t index) {
  raftpb::Message m;
  m.set_from(1);
  m.set_to(2);
  m.set_type(raftpb::MSG_HEARTBEAT);
  m.set_index(index);
  return m;
}

TEST(FaultInjectorTest, BlocksAndDelaysARealStream) {
  Receiver rx;
  ASSERT_FALSE(rx.address().empty());
  FaultInjector faults(1);
  TransportOptions o;
  o.self_id = 1;
  o.cluster_id = 99;
  o.faults = &faults;
  PeerTransport t(o, [](uint64_t) {});
  t.SetPeer(2, rx.address());

  t.Send({To2(1)});
  ASSERT_EQ(rx.WaitFor(1).size(), 1u);

  PeerFaults blocked;
  blocked.blocked = true;
  faults.Set({{2, blocked}});
  t.Send({To2(2), To2(3)});  // dropped
  PeerFaults slow;
  slow.delay = absl::Milliseconds(300);
  faults.Set({{2, slow}});
  const absl::Time sent = absl::Now();
  t.Send({To2(4), To2(5)});
  auto got = rx.WaitFor(3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].first, 4u);  // 2 and 3 never arrive; order kept
  EXPECT_EQ(got[2].first, 5u);
  EXPECT_GE(got[1].second - sent, absl::Milliseconds(290));

  faults.Set({});
  t.Send({To2(6)});
  got = rx.WaitFor(4);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[3].first, 6u);
  EXPECT_EQ(faults.dropped(), 2u);
}

}  // namespace
}  // namespace raftkv::server
