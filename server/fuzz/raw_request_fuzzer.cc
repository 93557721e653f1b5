// Fuzz target: client requests parsed from the raw bytes of a gRPC call
// (server/raw_message.h), as the KV and Admin services take them. The input
// picks a request type and how the body is cut into slices (gRPC may
// deliver it in any number of pieces). ParseRequest must accept exactly the
// bodies protobuf parses from the bytes in one piece, into the same message,
// leave the buffer as it was (it parses again to the same), and refuse the
// rest with INVALID_ARGUMENT; a parsed request serializes back (as an answer
// would) to protobuf's own bytes.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fuzz/fuzz_input.h"
#include "glog/logging.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "proto/admin.pb.h"
#include "proto/kv.pb.h"
#include "server/raw_message.h"

namespace {

std::unique_ptr<google::protobuf::MessageLite> NewRequest(uint8_t type) {
  using namespace raftkv;
  switch (type % 12) {
    case 0: return std::make_unique<kvpb::PutRequest>();
    case 1: return std::make_unique<kvpb::GetRequest>();
    case 2: return std::make_unique<kvpb::DeleteRequest>();
    case 3: return std::make_unique<kvpb::ScanRequest>();
    case 4: return std::make_unique<kvpb::CasRequest>();
    case 5: return std::make_unique<kvpb::BatchRequest>();
    case 6: return std::make_unique<adminpb::StatusRequest>();
    case 7: return std::make_unique<adminpb::AddMemberRequest>();
    case 8: return std::make_unique<adminpb::RemoveMemberRequest>();
    case 9: return std::make_unique<adminpb::TransferLeaderRequest>();
    case 10: return std::make_unique<adminpb::SetFaultsRequest>();
    default: return std::make_unique<adminpb::SnapshotRequest>();
  }
}

std::string Flatten(const grpc::ByteBuffer& b) {
  std::vector<grpc::Slice> slices;
  CHECK(b.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  raftkv::fuzz::FuzzInput in(data, size);
  const uint8_t type = in.U8();
  // Cut points, then the body.
  std::vector<size_t> cuts;
  for (int n = in.U8() % 5; n > 0; --n) cuts.push_back(in.U16());
  const std::string body = in.Rest();
  std::vector<grpc::Slice> slices;
  size_t at = 0;
  for (size_t cut : cuts) {
    const size_t end = std::min(body.size(), std::max(at, cut));
    slices.emplace_back(body.substr(at, end - at));
    at = end;
  }
  slices.emplace_back(body.substr(at));
  const grpc::ByteBuffer buffer(slices.data(), slices.size());

  std::unique_ptr<google::protobuf::MessageLite> got = NewRequest(type);
  std::unique_ptr<google::protobuf::MessageLite> want = NewRequest(type);
  const absl::Status s = raftkv::server::ParseRequest(buffer, got.get());
  const bool parses = want->ParseFromString(body);
  CHECK_EQ(s.ok(), parses) << "ParseRequest: " << s << " for " << body.size() << " bytes in "
                           << slices.size() << " slices of a " << got->GetTypeName();
  CHECK_EQ(Flatten(buffer), body) << "ParseRequest changed its buffer";
  if (!s.ok()) {
    CHECK(s.code() == absl::StatusCode::kInvalidArgument) << s;
    return 0;
  }
  const std::string bytes = got->SerializeAsString();
  CHECK_EQ(bytes, want->SerializeAsString()) << "parsed differently from protobuf";
  std::unique_ptr<google::protobuf::MessageLite> again = NewRequest(type);
  CHECK(raftkv::server::ParseRequest(buffer, again.get()).ok());
  CHECK_EQ(again->SerializeAsString(), bytes);
  grpc::ByteBuffer answer;
  CHECK(raftkv::server::SerializeResponse(*got, &answer).ok());
  CHECK_EQ(Flatten(answer), bytes);
  return 0;
}
