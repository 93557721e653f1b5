// The peer transport's fault layer: the injector's decisions, and messages
// over a real stream to a PeerService on 127.0.0.1 being dropped, delayed
// and blocked per destination. The PeerService's identity checks: streams
// of another cluster, for another node or from a sender it does not admit
// are refused, misaddressed messages dropped, each counted by reason.
#include "server/transport.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/peer_headers.h"

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
  explicit Receiver(int port = 0)
      : port_(port),
        service_(2, 99, [this](raftpb::Message m) {
          absl::MutexLock l(&mu_);
          got_.push_back({m.index(), absl::Now()});
        }) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:" + std::to_string(port_), grpc::InsecureServerCredentials(),
                       &port_);
    b.RegisterService(&service_);
    AcceptPeerKeepalives(&b);
    server_ = b.BuildAndStart();
  }
  // Cancels the peer streams still open (a plain Shutdown() would wait for
  // them forever).
  ~Receiver() { server_->Shutdown(std::chrono::system_clock::now()); }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Waits until `n` messages arrived; their (index, arrival) pairs.
  std::vector<std::pair<uint64_t, absl::Time>> WaitFor(size_t n,
                                                      absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock l(&mu_);
    auto enough = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return got_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
    return got_;
  }

 private:
  int port_;
  absl::Mutex mu_;
  std::vector<std::pair<uint64_t, absl::Time>> got_ ABSL_GUARDED_BY(mu_);
  PeerService service_;
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

// Options of node 1's transport in cluster 99, with `faults` if given.
TransportOptions Node1Options(FaultInjector* faults = nullptr) {
  TransportOptions o;
  o.self_id = 1;
  o.cluster_id = 99;
  o.faults = faults;
  return o;
}

TEST(FaultInjectorTest, BlocksAndDelaysARealStream) {
  Receiver rx;
  ASSERT_FALSE(rx.address().empty());
  FaultInjector faults(1);
  PeerTransport t(Node1Options(&faults), [](uint64_t) {});
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

// Writes chain on the stream: everything sent arrives, once, in order, even
// when the sender outpaces the writes (the queue then travels in batches).
TEST(PeerTransportTest, DeliversEverythingInOrder) {
  Receiver rx;
  TransportOptions o = Node1Options();
  o.max_queued_messages = 1 << 20;
  std::atomic<int> unreachable{0};
  PeerTransport t(o, [&unreachable](uint64_t) { unreachable.fetch_add(1); });
  t.SetPeer(2, rx.address());
  constexpr uint64_t kCount = 20000;
  for (uint64_t i = 1; i <= kCount; i += 4) {
    t.Send({To2(i), To2(i + 1), To2(i + 2), To2(i + 3)});
  }
  auto got = rx.WaitFor(kCount);
  ASSERT_EQ(got.size(), kCount);
  for (uint64_t i = 0; i < kCount; ++i) ASSERT_EQ(got[i].first, i + 1) << "at " << i;
  EXPECT_EQ(unreachable.load(), 0);
}

// Appends near the core's size limit, many at once (a follower catching
// up): batches stay under the receiver's message limit (gRPC's default
// 4 MiB here), so none is lost.
TEST(PeerTransportTest, BatchesStayUnderTheMessageLimit) {
  Receiver rx;
  PeerTransport t(Node1Options(), [](uint64_t) {});
  t.SetPeer(2, rx.address());
  std::vector<raftpb::Message> msgs;
  constexpr uint64_t kCount = 12;
  for (uint64_t i = 1; i <= kCount; ++i) {
    raftpb::Message m = To2(i);
    m.add_entries()->set_data(std::string(1 << 20, 'x'));
    msgs.push_back(std::move(m));
  }
  t.Send(std::move(msgs));
  auto got = rx.WaitFor(kCount);
  ASSERT_EQ(got.size(), kCount);
  for (uint64_t i = 0; i < kCount; ++i) EXPECT_EQ(got[i].first, i + 1);
}

// A short delay is not held back behind a long one to another peer.
TEST(FaultInjectorTest, ShortDelaysAreNotHeldBehindLongOnes) {
  Receiver rx;
  FaultInjector faults(1);
  PeerTransport t(Node1Options(&faults), [](uint64_t) {});
  t.SetPeer(2, rx.address());
  t.SetPeer(3, rx.address());  // node 2 drops what is meant for 3
  PeerFaults slow, quick;
  slow.delay = absl::Seconds(3);
  quick.delay = absl::Milliseconds(20);
  faults.Set({{2, quick}, {3, slow}});
  raftpb::Message to3 = To2(1);
  to3.set_to(3);
  t.Send({to3});
  const absl::Time sent = absl::Now();
  t.Send({To2(2)});
  auto got = rx.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, 2u);
  EXPECT_LT(got[0].second - sent, absl::Seconds(1));
}

// A peer that went away is reported unreachable; once it is back, a new
// stream reaches it.
TEST(PeerTransportTest, ReconnectsToARestartedPeer) {
  auto rx = std::make_unique<Receiver>();
  const std::string address = rx->address();
  const int port = std::stoi(address.substr(address.rfind(':') + 1));
  TransportOptions o = Node1Options();
  o.min_backoff = absl::Milliseconds(10);
  o.max_backoff = absl::Milliseconds(100);
  std::atomic<int> unreachable{0};
  PeerTransport t(o, [&unreachable](uint64_t) { unreachable.fetch_add(1); });
  t.SetPeer(2, address);
  t.Send({To2(1)});
  ASSERT_EQ(rx->WaitFor(1).size(), 1u);

  rx.reset();  // the peer goes down
  uint64_t next = 2;
  for (absl::Time end = absl::Now() + absl::Seconds(10); unreachable.load() == 0 && absl::Now() < end;) {
    t.Send({To2(next++)});
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_GT(unreachable.load(), 0) << "a dead peer was never reported";

  rx = std::make_unique<Receiver>(port);  // back on the same address
  size_t arrived = 0;
  for (absl::Time end = absl::Now() + absl::Seconds(10); arrived == 0 && absl::Now() < end;) {
    t.Send({To2(next++)});
    arrived = rx->WaitFor(1, absl::Milliseconds(20)).size();
  }
  ASSERT_GT(arrived, 0u) << "no message reached the restarted peer";
}

// A PeerService for node 2 of cluster 99 that admits node 1 as incarnation
// 7 (and nothing else), on 127.0.0.1; streams opened by hand. `authorize`
// (if set) judges each stream's caller first.
class CheckedReceiver {
 public:
  explicit CheckedReceiver(
      std::function<grpc::Status(const grpc::ServerContextBase&)> authorize = nullptr)
      : service_(
            2, 99,
            [this](raftpb::Message m) {
              absl::MutexLock l(&mu_);
              got_.push_back(std::move(m));
            },
            nullptr, nullptr,
            [](uint64_t id, uint64_t incarnation) {
              return id == 1 && incarnation == 7
                         ? absl::OkStatus()
                         : absl::FailedPreconditionError("not the incarnation known");
            }) {
    if (authorize) service_.set_authorize(std::move(authorize));
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(&service_);
    server_ = b.BuildAndStart();
    stub_ = peerpb::Peer::NewStub(
        grpc::CreateChannel(address(), grpc::InsecureChannelCredentials()));
  }
  ~CheckedReceiver() { server_->Shutdown(std::chrono::system_clock::now()); }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  PeerRefusals* refusals() { return service_.refusals(); }
  size_t delivered() {
    absl::MutexLock l(&mu_);
    return got_.size();
  }

  // A stream with `metadata` carrying `msgs` in one batch; its status once
  // the service has read (and judged) everything.
  grpc::Status Stream(const std::vector<std::pair<std::string, std::string>>& metadata,
                      std::vector<raftpb::Message> msgs = {To2(1)}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    for (const auto& [k, v] : metadata) ctx.AddMetadata(k, v);
    peerpb::SendAck ack;
    auto w = stub_->Send(&ctx, &ack);
    peerpb::MessageBatch batch;
    for (auto& m : msgs) *batch.add_messages() = std::move(m);
    if (w->Write(batch)) w->WritesDone();
    return w->Finish();
  }

  // Metadata of node 1 (incarnation 7) of cluster 99 to node 2.
  static std::vector<std::pair<std::string, std::string>> Good() {
    return {{kClusterIdHeader, "99"}, {kSenderHeader, "1/7"}, {kRecipientHeader, "2"}};
  }

 private:
  absl::Mutex mu_;
  std::vector<raftpb::Message> got_ ABSL_GUARDED_BY(mu_);
  PeerService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<peerpb::Peer::Stub> stub_;
};

// The metadata `base` with `key` set to `value` ("" removes it).
std::vector<std::pair<std::string, std::string>> With(
    std::vector<std::pair<std::string, std::string>> base, const std::string& key,
    const std::string& value) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [k, v] : base) {
    if (k != key) out.emplace_back(k, v);
  }
  if (!value.empty()) out.emplace_back(key, value);
  return out;
}

TEST(PeerServiceChecksTest, RefusesStreamsOfAnotherClusterOrOfNone) {
  CheckedReceiver rx;
  const auto good = CheckedReceiver::Good();
  for (const std::string cluster : {"98", "", "ninety-nine"}) {
    grpc::Status s = rx.Stream(With(good, kClusterIdHeader, cluster));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << cluster;
    EXPECT_EQ(s.error_message(), "this node belongs to cluster 99");
  }
  EXPECT_EQ(rx.refusals()->count(PeerRefusal::kOtherCluster), 3u);
  EXPECT_EQ(rx.delivered(), 0u);
  EXPECT_TRUE(rx.Stream(good).ok());
  EXPECT_EQ(rx.delivered(), 1u);
  EXPECT_EQ(rx.refusals()->count(PeerRefusal::kOtherCluster), 3u);
}

TEST(PeerServiceChecksTest, RefusesCallersTheAuthorizerRefuses) {
  CheckedReceiver rx([](const grpc::ServerContextBase&) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no peer certificate");
  });
  grpc::Status s = rx.Stream(CheckedReceiver::Good());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(rx.refusals()->count(PeerRefusal::kPeerCertificate), 1u);
  EXPECT_EQ(rx.delivered(), 0u);
}

TEST(PeerServiceChecksTest, RefusesAStreamForAnotherNodeAndTakesOneNamingNone) {
  CheckedReceiver rx;
  const auto good = CheckedReceiver::Good();
  grpc::Status s = rx.Stream(With(good, kRecipientHeader, "3"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(),
            "this is node 2, not node 3: check the address this cluster has for node 3");
  s = rx.Stream(With(good, kRecipientHeader, "two"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(rx.refusals()->count(PeerRefusal::kWrongRecipient), 2u);
  EXPECT_EQ(rx.delivered(), 0u);
  // An older sender names no recipient: each message's `to` is checked.
  EXPECT_TRUE(rx.Stream(With(good, kRecipientHeader, "")).ok());
  EXPECT_EQ(rx.delivered(), 1u);
}

TEST(PeerServiceChecksTest, RefusesSendersItDoesNotAdmit) {
  CheckedReceiver rx;
  const auto good = CheckedReceiver::Good();
  for (const std::string sender : {"", "1", "x/7", "0/7"}) {
    grpc::Status s = rx.Stream(With(good, kSenderHeader, sender));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << sender;
  }
  EXPECT_EQ(rx.refusals()->count(PeerRefusal::kNoSender), 4u);
  grpc::Status s = rx.Stream(With(good, kSenderHeader, "1/8"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "not the incarnation known");
  EXPECT_EQ(rx.refusals()->count(PeerRefusal::kWrongIncarnation), 1u);
  EXPECT_EQ(rx.delivered(), 0u);
}

TEST(PeerServiceChecksTest, DropsMisaddressedMessagesOnAnAcceptedStream) {
  CheckedReceiver rx;
  raftpb::Message to3 = To2(1);
  to3.set_to(3);
  raftpb::Message from5 = To2(2);
  from5.set_from(5);
  raftpb::Message bare_snapshot = To2(3);
  bare_snapshot.set_type(raftpb::MSG_SNAPSHOT);
  EXPECT_TRUE(rx.Stream(CheckedReceiver::Good(), {to3, from5, bare_snapshot, To2(4)}).ok());
  EXPECT_EQ(rx.delivered(), 1u);
  EXPECT_EQ(rx.refusals()->count(PeerRefusal::kWrongRecipient), 1u);
  EXPECT_EQ(rx.refusals()->count(PeerRefusal::kWrongSender), 1u);
  EXPECT_EQ(rx.refusals()->count(PeerRefusal::kBareSnapshot), 1u);
}

// Sends `m` through `t` every few milliseconds until `done()` or 10 s.
bool SendUntil(PeerTransport& t, const raftpb::Message& m, const std::function<bool()>& done) {
  for (absl::Time end = absl::Now() + absl::Seconds(10); absl::Now() < end;) {
    if (done()) return true;
    t.Send({m});
    absl::SleepFor(absl::Milliseconds(5));
  }
  return done();
}

// The transport's own streams say which cluster, sender and recipient they
// are for: a node of another cluster, or one told a wrong address for a
// peer, has its stream refused (the peer is reported unreachable), reaches
// nothing and is counted.
TEST(PeerServiceChecksTest, TransportStreamsNameClusterSenderAndRecipient) {
  CheckedReceiver rx;
  TransportOptions o = Node1Options();
  o.incarnation = 7;
  o.min_backoff = absl::Milliseconds(10);
  o.max_backoff = absl::Milliseconds(50);
  {
    PeerTransport t(o, [](uint64_t) {});
    t.SetPeer(2, rx.address());
    ASSERT_TRUE(SendUntil(t, To2(1), [&] { return rx.delivered() > 0; }));
  }
  const size_t delivered = rx.delivered();
  {
    std::atomic<int> unreachable{0};
    PeerTransport t(o, [&unreachable](uint64_t) { unreachable.fetch_add(1); });
    t.SetPeer(3, rx.address());  // node 2's address
    raftpb::Message to3 = To2(2);
    to3.set_to(3);
    EXPECT_TRUE(SendUntil(t, to3, [&] {
      return rx.refusals()->count(PeerRefusal::kWrongRecipient) > 0 && unreachable.load() > 0;
    })) << "refused " << rx.refusals()->count(PeerRefusal::kWrongRecipient)
        << ", unreachable " << unreachable.load();
  }
  {
    o.cluster_id = 98;
    PeerTransport t(o, [](uint64_t) {});
    t.SetPeer(2, rx.address());
    EXPECT_TRUE(SendUntil(
        t, To2(3), [&] { return rx.refusals()->count(PeerRefusal::kOtherCluster) > 0; }));
  }
  EXPECT_EQ(rx.delivered(), delivered);
}

}  // namespace
}  // namespace raftkv::server
