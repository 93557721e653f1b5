#include "server/raw_message.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/proto_buffer_reader.h"

namespace raftkv::server {

absl::Status ParseRequest(const grpc::ByteBuffer& in, google::protobuf::MessageLite* msg) {
  msg->Clear();
  if (!in.Valid()) return absl::InvalidArgumentError("request has no body");
  // The reader only reads the buffer's slices (grpc_byte_buffer_reader_init
  // takes a non-const pointer, but leaves the buffer as it is).
  grpc::ProtoBufferReader reader(const_cast<grpc::ByteBuffer*>(&in));
  if (!reader.status().ok() || !msg->ParseFromZeroCopyStream(&reader)) {
    return absl::InvalidArgumentError(absl::StrCat("request body is not a valid ",
                                                   msg->GetTypeName(), " (", in.Length(),
                                                   " bytes)"));
  }
  return absl::OkStatus();
}

absl::Status SerializeResponse(const google::protobuf::MessageLite& msg, grpc::ByteBuffer* out) {
  out->Clear();  // gRPC's writer fills only an empty buffer
  bool own_buffer = false;
  grpc::Status s = grpc::SerializationTraits<google::protobuf::MessageLite>::Serialize(
      msg, out, &own_buffer);
  if (!s.ok()) {
    return absl::InternalError(absl::StrCat("cannot serialize the ", msg.GetTypeName(),
                                            " answer: ", s.error_message()));
  }
  return absl::OkStatus();
}

}  // namespace raftkv::server
