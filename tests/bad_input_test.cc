// Bad requests: an empty key, a key over 4 KiB, a value over
// --max_value_bytes, malformed headers, bodies that are not a valid message
// at all. Every node (leader or follower) answers INVALID_ARGUMENT with a
// message saying what is wrong, writes nothing, and keeps serving. And the
// client library refuses requests over the cluster's limits at once.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kMaxValue = 1024;
constexpr size_t kMaxKey = 4096;

class BadInputTest : public ::testing::Test {
 protected:
  static ClusterOptions Options() {
    ClusterOptions o;
    o.extra_flags = {absl::StrCat("--max_value_bytes=", kMaxValue)};
    return o;
  }

  void SetUp() override {
    ASSERT_TRUE(c_.StartAll().ok());
    auto leader = c_.WaitForLeader();
    ASSERT_TRUE(leader.ok()) << leader.status();
    leader_ = *leader;
    follower_ = leader_ % c_.size() + 1;
  }

  grpc::Status Put(int node, const std::string& key, const std::string& value,
                   uint64_t client_id = 0, uint64_t seq = 0, uint64_t first_incomplete = 0) {
    kvpb::PutRequest req;
    req.mutable_header()->set_client_id(client_id);
    req.mutable_header()->set_seq(seq);
    req.mutable_header()->set_first_incomplete(first_incomplete);
    req.set_key(key);
    req.set_value(value);
    kvpb::PutResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return c_.kv(node)->Put(&ctx, req, &resp);
  }

  Cluster c_{Options()};
  int leader_ = 0;
  int follower_ = 0;
};

#define EXPECT_INVALID(status, text)                                          \
  do {                                                                        \
    grpc::Status s_ = (status);                                               \
    EXPECT_EQ(s_.error_code(), grpc::StatusCode::INVALID_ARGUMENT)            \
        << "got " << s_.error_code() << ": " << s_.error_message();           \
    EXPECT_THAT(s_.error_message(), HasSubstr(text));                         \
  } while (0)

TEST_F(BadInputTest, RejectedOnEveryNodeWithAMessageAndNothingIsWritten) {
  auto before = c_.WaitForConvergence();
  ASSERT_TRUE(before.ok()) << before.status();
  const std::string long_key(kMaxKey + 1, 'k');
  const std::string big_value(kMaxValue + 1, 'v');

  for (int node : {leader_, follower_}) {
    SCOPED_TRACE(absl::StrCat("node ", node, node == leader_ ? " (leader)" : " (follower)"));
    EXPECT_INVALID(Put(node, "", "v"), "key must not be empty");
    EXPECT_INVALID(Put(node, long_key, "v"),
                   absl::StrCat("key of ", kMaxKey + 1, " bytes exceeds the limit of ", kMaxKey));
    EXPECT_INVALID(Put(node, "big", big_value),
                   absl::StrCat("value of ", kMaxValue + 1,
                                " bytes exceeds --max_value_bytes=", kMaxValue));
    // Also with an exactly-once header: the sequence number is not used up.
    EXPECT_INVALID(Put(node, "big", big_value, 42, 1), "exceeds --max_value_bytes");
    EXPECT_INVALID(Put(node, "k", "v", 42, 0), "sequence number");
    EXPECT_INVALID(Put(node, "k", "v", 42, 3, 5), "first_incomplete");

    {
      kvpb::CasRequest req;
      req.set_key("big");
      req.set_expected_version(0);
      req.set_new_value(big_value);
      kvpb::CasResponse resp;
      grpc::ClientContext ctx;
      EXPECT_INVALID(c_.kv(node)->CompareAndSwap(&ctx, req, &resp), "exceeds --max_value_bytes");
    }
    {
      kvpb::CasRequest req;
      req.set_key("cas");
      req.set_new_value("v");
      kvpb::CasResponse resp;
      grpc::ClientContext ctx;
      EXPECT_INVALID(c_.kv(node)->CompareAndSwap(&ctx, req, &resp),
                     "needs expected_value or expected_version");
    }
    {
      kvpb::DeleteRequest req;
      kvpb::DeleteResponse resp;
      grpc::ClientContext ctx;
      EXPECT_INVALID(c_.kv(node)->Delete(&ctx, req, &resp), "key must not be empty");
    }
    for (bool serializable : {false, true}) {
      kvpb::GetRequest req;
      req.set_key(long_key);
      req.set_serializable(serializable);
      kvpb::GetResponse resp;
      grpc::ClientContext ctx;
      EXPECT_INVALID(c_.kv(node)->Get(&ctx, req, &resp), "exceeds the limit");
      req.set_key("");
      grpc::ClientContext ctx2;
      EXPECT_INVALID(c_.kv(node)->Get(&ctx2, req, &resp), "key must not be empty");
    }
    {
      kvpb::ScanRequest req;
      req.set_prefix(long_key);
      kvpb::ScanResponse resp;
      grpc::ClientContext ctx;
      EXPECT_INVALID(c_.kv(node)->Scan(&ctx, req, &resp), "prefix");
    }
  }

  // Nothing reached the data. (The commit index may move meanwhile: a new
  // leader records the members' incarnations and proposes a hash check.)
  auto after = c_.WaitForConvergence();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->key_count(), 0u);
  EXPECT_EQ(after->data_digest(), before->data_digest());

  // The nodes keep serving, and the limits themselves are allowed. Client
  // 42's sequence 1 was never used by the rejected attempt.
  ASSERT_TRUE(Put(leader_, std::string(kMaxKey, 'k'), "v").ok());
  grpc::Status s = Put(leader_, "big", std::string(kMaxValue, 'v'), 42, 1, 1);
  ASSERT_TRUE(s.ok()) << s.error_message();
  for (int node = 1; node <= c_.size(); ++node) {
    kvpb::GetRequest req;
    req.set_key("big");
    kvpb::GetResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(c_.kv(node)->Get(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.found());
    EXPECT_EQ(resp.kv().value().size(), static_cast<size_t>(kMaxValue));
  }
  auto last = c_.WaitForConvergence();
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->key_count(), 2u);
}

// Bytes that are no valid protobuf message of any type: field 2, length
// delimited, says 5 bytes follow, 2 do.
const std::string kMalformed("\x12\x05" "ab", 4);

grpc::ByteBuffer Bytes(const std::string& s) {
  grpc::Slice slice(s);
  return grpc::ByteBuffer(&slice, 1);
}

// A unary call of `method` ("/raftkv.kvpb.KV/Put") with `body` as its
// request, through a generic (untyped) stub.
grpc::Status RawUnary(const std::string& address, const std::string& method,
                      const std::string& body) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::ByteBuffer req = Bytes(body), resp;
  absl::Notification done;
  grpc::Status status;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &req, &resp, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  return status;
}

// A stream of `method` that sends `messages` and closes its side; the
// answers read are counted in *answers. Returns the stream's status.
grpc::Status RawStream(const std::string& address, const std::string& method,
                       const std::vector<std::string>& messages, int* answers) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto call = stub.PrepareCall(&ctx, method, &cq);
  auto wait = [&cq](intptr_t want) {
    void* tag;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(tag), want);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  wait(1);
  for (const std::string& m : messages) {
    call->Write(Bytes(m), reinterpret_cast<void*>(2));
    if (!wait(2)) break;
  }
  call->WritesDone(reinterpret_cast<void*>(3));
  wait(3);
  *answers = 0;
  while (true) {
    grpc::ByteBuffer in;
    call->Read(&in, reinterpret_cast<void*>(4));
    if (!wait(4)) break;
    kvpb::BatchResponse resp;
    std::vector<grpc::Slice> slices;
    EXPECT_TRUE(in.Dump(&slices).ok());
    std::string bytes;
    for (const auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    EXPECT_TRUE(resp.ParseFromString(bytes));
    *answers += resp.ops_size();
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  wait(5);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

// Every method of the KV and Admin services and of etcd's services (as in
// the .proto files, so a method added later is covered), on the leader and a
// follower.
TEST_F(BadInputTest, MalformedBodiesGetInvalidArgumentOnEveryMethod) {
  const google::protobuf::ServiceDescriptor* services[] = {
      kvpb::PutRequest::descriptor()->file()->FindServiceByName("KV"),
      adminpb::StatusRequest::descriptor()->file()->FindServiceByName("Admin"),
      etcdserverpb::RangeRequest::descriptor()->file()->FindServiceByName("KV"),
      etcdserverpb::MemberListRequest::descriptor()->file()->FindServiceByName("Cluster"),
      etcdserverpb::AuthEnableRequest::descriptor()->file()->FindServiceByName("Auth"),
  };
  int methods = 0;
  for (int node : {leader_, follower_}) {
    for (const google::protobuf::ServiceDescriptor* service : services) {
      ASSERT_NE(service, nullptr);
      for (int i = 0; i < service->method_count(); ++i) {
        const google::protobuf::MethodDescriptor* m = service->method(i);
        SCOPED_TRACE(absl::StrCat("node ", node, " ", m->full_name()));
        const std::string path = absl::StrCat("/", service->full_name(), "/", m->name());
        const std::string want = absl::StrCat("request body is not a valid ",
                                              m->input_type()->full_name(), " (4 bytes)");
        grpc::Status s;
        if (m->client_streaming()) {
          int answers = -1;
          s = RawStream(c_.address(node), path, {kMalformed}, &answers);
          EXPECT_EQ(answers, 0);
        } else {
          s = RawUnary(c_.address(node), path, kMalformed);
        }
        EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
            << s.error_code() << ": " << s.error_message();
        EXPECT_EQ(s.error_message(), want);
        ++methods;
      }
    }
  }
  // raftkv's KV and Admin, etcd's KV, Cluster and Auth
  EXPECT_EQ(methods, 2 * (13 + 5 + 5 + 16));

  // A Batch stream answers the ops it read before a malformed message, then
  // ends INVALID_ARGUMENT.
  kvpb::BatchRequest good;
  kvpb::RequestOp* op = good.add_ops();
  op->set_id(1);
  op->mutable_get()->set_key("k");
  op->mutable_get()->set_serializable(true);
  int answers = 0;
  grpc::Status s = RawStream(c_.address(follower_), "/raftkv.kvpb.KV/Batch",
                             {good.SerializeAsString(), kMalformed}, &answers);
  EXPECT_EQ(answers, 1);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "request body is not a valid raftkv.kvpb.BatchRequest (4 bytes)");

  // Valid bodies still work, the empty one (a default StatusRequest) too.
  EXPECT_TRUE(RawUnary(c_.address(leader_), "/raftkv.adminpb.Admin/Status", "").ok());
  EXPECT_TRUE(Put(leader_, "k", "v").ok());
}

// etcd's Maintenance service (server/etcd/maintenance_service.h): every
// method, on the leader and a follower.
TEST_F(BadInputTest, MalformedBodiesGetInvalidArgumentOnEveryEtcdMaintenanceMethod) {
  const google::protobuf::ServiceDescriptor* service =
      etcdserverpb::StatusRequest::descriptor()->file()->FindServiceByName("Maintenance");
  ASSERT_NE(service, nullptr);
  ASSERT_EQ(service->method_count(), 7);
  for (int node : {leader_, follower_}) {
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* m = service->method(i);
      SCOPED_TRACE(absl::StrCat("node ", node, " ", m->full_name()));
      grpc::Status s = RawUnary(c_.address(node),
                                absl::StrCat("/", service->full_name(), "/", m->name()), kMalformed);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
          << s.error_code() << ": " << s.error_message();
      EXPECT_EQ(s.error_message(), absl::StrCat("request body is not a valid ",
                                                m->input_type()->full_name(), " (4 bytes)"));
    }
  }
  EXPECT_TRUE(RawUnary(c_.address(follower_), "/etcdserverpb.Maintenance/Status", "").ok());
}

TEST_F(BadInputTest, ParseableButMalformedFields) {
  const std::string long_key(kMaxKey + 1, 'k');
  for (int node : {leader_, follower_}) {
    SCOPED_TRACE(absl::StrCat("node ", node));
    kvpb::ScanRequest req;
    req.set_prefix("p");
    req.set_start_after(long_key);
    kvpb::ScanResponse resp;
    grpc::ClientContext ctx;
    EXPECT_INVALID(c_.kv(node)->Scan(&ctx, req, &resp),
                   absl::StrCat("start_after of ", kMaxKey + 1,
                                " bytes exceeds the limit of ", kMaxKey));
    for (const char* address : {"", "host", "host:", ":7001", "host:port", "host:0",
                                "host:65536", "host:-1"}) {
      adminpb::AddMemberRequest add;
      add.set_node_id(9);
      add.set_address(address);
      adminpb::AddMemberResponse added;
      grpc::ClientContext actx;
      EXPECT_INVALID(c_.admin(node)->AddMember(&actx, add, &added),
                     absl::StrCat("address must be HOST:PORT, got \"", address, "\""));
    }
  }
}

// The client library knows the cluster's limits (from Admin.Status) and
// refuses what is over them at once: nothing is sent, nothing retried.
TEST_F(BadInputTest, ClientRefusesRequestsOverTheLimitsAtOnce) {
  auto before = c_.WaitForConvergence();
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->max_value_bytes(), static_cast<uint64_t>(kMaxValue));
  EXPECT_EQ(before->max_request_bytes(), client::kDefaultMaxRequestBytes);

  client::ClientOptions o;
  o.endpoints = c_.addresses();
  auto cl = client::Client::Create(o);
  ASSERT_TRUE(cl.ok()) << cl.status();
  client::Client& client = **cl;
  const std::string big(64 << 20, 'v');
  // 64 MiB, and just under the gRPC receive limit (which took 9 s once).
  for (size_t size : {big.size(), big.size() - 1000}) {
    const absl::Time start = absl::Now();
    auto v = client.Put("big", absl::string_view(big).substr(0, size));
    EXPECT_LT(absl::Now() - start, absl::Seconds(2));
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(v.status().message(),
              absl::StrCat("put \"big\": value is ", size, " bytes; the cluster's limit is ",
                           kMaxValue, " (server --max_value_bytes)"));
  }
  // A small value but a request over the receive limit (the compared value
  // is not bound by --max_value_bytes).
  const absl::Time start = absl::Now();
  auto cas = client.CompareAndSwap("big", client::Expected::Value(big), "v");
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(cas.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(cas.status().message(),
              HasSubstr("; the cluster's limit is 67108864 (the server's gRPC receive limit)"));

  // Nothing was written (elections under load may still add entries).
  auto after = c_.WaitForConvergence();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->key_count(), 0u);
  ASSERT_TRUE(client.Put("small", std::string(kMaxValue, 'v')).ok());
}

// A server with default flags reports the client's documented defaults.
TEST(BadInputDefaultsTest, DefaultLimitsAreTheClientsDefaults) {
  ClusterOptions o;
  o.size = 1;
  Cluster c(o);
  ASSERT_TRUE(c.StartAll().ok());
  ASSERT_TRUE(c.WaitForLeader().ok());
  auto st = c.Status(1);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->max_value_bytes(), client::kDefaultMaxValueBytes);
  EXPECT_EQ(st->max_request_bytes(), client::kDefaultMaxRequestBytes);
}

}  // namespace
}  // namespace raftkv::testing
