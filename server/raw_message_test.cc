#include "server/raw_message.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/support/slice.h"
#include "gtest/gtest.h"
#include "proto/admin.pb.h"
#include "proto/kv.pb.h"

namespace raftkv::server {
namespace {

using ::testing::HasSubstr;

// A buffer of `bytes`, split in two slices (as gRPC may deliver it).
grpc::ByteBuffer Buffer(const std::string& bytes) {
  const size_t half = bytes.size() / 2;
  grpc::Slice slices[2] = {grpc::Slice(bytes.substr(0, half)), grpc::Slice(bytes.substr(half))};
  return grpc::ByteBuffer(slices, 2);
}

std::string Flatten(const grpc::ByteBuffer& b) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(b.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

TEST(RawMessageTest, ParsesAValidBodyAcrossSlices) {
  kvpb::PutRequest req;
  req.set_key("k");
  req.set_value(std::string(10000, 'v'));
  req.mutable_header()->set_seq(7);
  const grpc::ByteBuffer in = Buffer(req.SerializeAsString());
  kvpb::PutRequest parsed;
  parsed.set_key("stale");  // cleared first
  ASSERT_TRUE(ParseRequest(in, &parsed).ok());
  EXPECT_EQ(parsed.SerializeAsString(), req.SerializeAsString());
  // The buffer is unchanged: it parses again.
  ASSERT_TRUE(ParseRequest(in, &parsed).ok());
  EXPECT_EQ(parsed.key(), "k");
}

TEST(RawMessageTest, EmptyBodyIsTheEmptyMessage) {
  grpc::Slice empty("");
  grpc::ByteBuffer in(&empty, 1);
  adminpb::StatusRequest req;
  EXPECT_TRUE(ParseRequest(in, &req).ok());
}

TEST(RawMessageTest, MalformedBodyIsInvalidArgumentNamingTypeAndSize) {
  for (const std::string& bad : {
           std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11),  // a varint too long
           std::string("\x12\x05" "ab", 4),  // field 2 says 5 bytes, 2 follow
           std::string("\x0f", 1),           // wire type 7 does not exist
       }) {
    kvpb::PutRequest req;
    absl::Status s = ParseRequest(Buffer(bad), &req);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message(), absl::StrCat("request body is not a valid raftkv.kvpb.PutRequest (",
                                        bad.size(), " bytes)"));
  }
  // A proto3 string field holding bytes that are not UTF-8.
  adminpb::AddMemberRequest add;
  add.set_node_id(4);
  std::string bytes = add.SerializeAsString() + std::string("\x12\x02\xc3\x28", 4);
  absl::Status s = ParseRequest(Buffer(bytes), &add);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("raftkv.adminpb.AddMemberRequest"));
}

TEST(RawMessageTest, NoBody) {
  grpc::ByteBuffer none;
  kvpb::GetRequest req;
  absl::Status s = ParseRequest(none, &req);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "request has no body");
}

TEST(RawMessageTest, SerializeRoundTrips) {
  // One buffer, reused as a stream's answers reuse theirs: its old contents
  // are replaced, whatever the sizes.
  grpc::ByteBuffer out;
  for (size_t size : {0, 10, 100000, 100, 200000, 0}) {
    kvpb::GetResponse resp;
    resp.set_found(true);
    resp.mutable_kv()->set_value(std::string(size, 'x'));
    ASSERT_TRUE(SerializeResponse(resp, &out).ok());
    EXPECT_EQ(Flatten(out), resp.SerializeAsString());
  }
}

}  // namespace
}  // namespace raftkv::server
