// What parsing requests and serializing answers ourselves (raw_message.h)
// costs against gRPC's typed path, per Batch message of the hot path (one
// put of a 256-byte value in; one put answer out):
//   bazel run -c opt //server:raw_message_benchmark
#include <string>

#include "benchmark/benchmark.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/byte_buffer.h"
#include "proto/kv.pb.h"
#include "server/raw_message.h"

namespace raftkv::server {
namespace {

std::string RequestBytes() {
  kvpb::BatchRequest req;
  kvpb::RequestOp* op = req.add_ops();
  op->set_id(12345);
  op->set_timeout_ms(2000);
  op->mutable_put()->mutable_header()->set_client_id(0x1234567890abcdefULL);
  op->mutable_put()->mutable_header()->set_seq(1000);
  op->mutable_put()->mutable_header()->set_first_incomplete(1000);
  op->mutable_put()->set_key("k0012345");
  op->mutable_put()->set_value(std::string(256, 'v'));
  return req.SerializeAsString();
}

kvpb::BatchResponse Answer() {
  kvpb::BatchResponse resp;
  kvpb::ResponseOp* op = resp.add_ops();
  op->set_id(12345);
  kvpb::PutResponse* put = op->mutable_put();
  put->mutable_header()->set_node_id(1);
  put->mutable_header()->set_term(3);
  put->mutable_header()->set_applied_index(123456);
  put->set_version(123456);
  return resp;
}

grpc::ByteBuffer Buffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// gRPC's typed read: SerializationTraits<T>::Deserialize, as its handlers do.
void BM_ParseTyped(benchmark::State& state) {
  const std::string bytes = RequestBytes();
  kvpb::BatchRequest req;
  for (auto _ : state) {
    grpc::ByteBuffer in = Buffer(bytes);
    grpc::Status s = grpc::SerializationTraits<kvpb::BatchRequest>::Deserialize(&in, &req);
    benchmark::DoNotOptimize(s.ok());
    req.Clear();
  }
}
BENCHMARK(BM_ParseTyped);

// Ours: the raw bytes parsed by ParseRequest, then dropped.
void BM_ParseRaw(benchmark::State& state) {
  const std::string bytes = RequestBytes();
  kvpb::BatchRequest req;
  for (auto _ : state) {
    grpc::ByteBuffer in = Buffer(bytes);
    benchmark::DoNotOptimize(ParseRequest(in, &req).ok());
    in.Clear();
    req.Clear();
  }
}
BENCHMARK(BM_ParseRaw);

// gRPC's typed write: the answer serialized into the send buffer.
void BM_SerializeTyped(benchmark::State& state) {
  const kvpb::BatchResponse resp = Answer();
  for (auto _ : state) {
    grpc::ByteBuffer out;
    bool own;
    benchmark::DoNotOptimize(
        grpc::SerializationTraits<kvpb::BatchResponse>::Serialize(resp, &out, &own).ok());
  }
}
BENCHMARK(BM_SerializeTyped);

// Ours: serialized into the reactor's buffer, which gRPC's raw write then
// copies (a reference to the same slices) into its send buffer.
void BM_SerializeRaw(benchmark::State& state) {
  const kvpb::BatchResponse resp = Answer();
  grpc::ByteBuffer mine;
  for (auto _ : state) {
    benchmark::DoNotOptimize(SerializeResponse(resp, &mine).ok());
    grpc::ByteBuffer out;
    bool own;
    benchmark::DoNotOptimize(
        grpc::SerializationTraits<grpc::ByteBuffer>::Serialize(mine, &out, &own).ok());
  }
}
BENCHMARK(BM_SerializeRaw);

}  // namespace
}  // namespace raftkv::server
