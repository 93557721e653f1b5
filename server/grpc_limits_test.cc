#include "server/grpc_limits.h"

#include <atomic>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/kv.grpc.pb.h"

namespace raftkv::server {
namespace {

TEST(GrpcLimitsTest, ValidateNamesTheFlag) {
  EXPECT_TRUE(GrpcLimits().Validate().ok());
  GrpcLimits l;
  l.max_concurrent_streams = 0;
  EXPECT_NE(l.Validate().message().find("--max_concurrent_streams"), std::string::npos);
  l = GrpcLimits();
  l.memory_bytes = 1 << 20;
  EXPECT_NE(l.Validate().message().find("--grpc_memory_bytes"), std::string::npos);
  l.memory_bytes = 0;  // no limit
  EXPECT_TRUE(l.Validate().ok());
  l.max_threads = 1;
  EXPECT_NE(l.Validate().message().find("--grpc_max_threads"), std::string::npos);
  l = GrpcLimits();
  l.handshake_timeout_ms = 10;
  EXPECT_NE(l.Validate().message().find("--handshake_timeout_ms"), std::string::npos);
  l = GrpcLimits();
  l.max_connection_idle_ms = 10;
  EXPECT_NE(l.Validate().message().find("--max_connection_idle_ms"), std::string::npos);
  l.max_connection_idle_ms = 0;  // never
  EXPECT_TRUE(l.Validate().ok());
}

// A server with the limits applied: a connection gets at most
// max_concurrent_streams calls at once; the next waits for a free stream.
TEST(GrpcLimitsTest, AConnectionHasAtMostMaxConcurrentStreams) {
  class Service final : public kvpb::KV::CallbackService {
   public:
    class R : public grpc::ServerBidiReactor<kvpb::BatchRequest, kvpb::BatchResponse> {
     public:
      R() { StartRead(&req_); }
      void OnReadDone(bool) override {}
      void OnDone() override { delete this; }

     private:
      kvpb::BatchRequest req_;
    };
    grpc::ServerBidiReactor<kvpb::BatchRequest, kvpb::BatchResponse>* Batch(
        grpc::CallbackServerContext*) override {
      R* r = new R;
      absl::MutexLock l(&mu);
      open.push_back(r);
      ++opened;
      return r;
    }
    // Ends one open call on the server's side.
    void FinishOne() {
      absl::MutexLock l(&mu);
      open.back()->Finish(grpc::Status::OK);
      open.pop_back();
    }
    absl::Mutex mu;
    std::vector<R*> open;
    std::atomic<int> opened{0};
  } service;
  GrpcLimits limits;
  limits.max_concurrent_streams = 3;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  ApplyGrpcLimits(limits, &builder);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto stub = kvpb::KV::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                                    grpc::InsecureChannelCredentials()));
  grpc::CompletionQueue cq;
  constexpr int kCalls = 5;
  grpc::ClientContext ctx[kCalls];
  std::unique_ptr<grpc::ClientAsyncReaderWriter<kvpb::BatchRequest, kvpb::BatchResponse>>
      rw[kCalls];
  for (int i = 0; i < kCalls; ++i) rw[i] = stub->AsyncBatch(&ctx[i], &cq, &ctx[i]);
  auto wait_opened = [&](int n) {
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (service.opened.load() < n && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    return service.opened.load();
  };
  // Three streams open on the server; the other two wait in the client...
  EXPECT_EQ(wait_opened(3), 3);
  absl::SleepFor(absl::Milliseconds(200));  // time for more to (wrongly) open
  EXPECT_EQ(service.opened.load(), 3);
  // ...until one ends: then the next opens.
  service.FinishOne();
  EXPECT_EQ(wait_opened(4), 4);
  for (int i = 0; i < kCalls; ++i) ctx[i].TryCancel();
  while (true) {  // the server's side of the calls still open
    {
      absl::MutexLock l(&service.mu);
      if (service.open.empty()) break;
    }
    service.FinishOne();
  }
  server->Shutdown();
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
}

}  // namespace
}  // namespace raftkv::server
