// Request and response messages as raw bytes, for the client services.
//
// The KV and Admin services take their requests as grpc::ByteBuffer (gRPC's
// raw method variants) and parse them with ParseRequest, because gRPC's C++
// server answers a body that does not parse by itself, with INTERNAL or
// UNIMPLEMENTED and no message. ParseRequest does the same parsing gRPC
// would (protobuf from the buffer's slices, no copy) but fails with
// INVALID_ARGUMENT naming the type and the size, which a person can act on.
// SerializeResponse is gRPC's own serialization of a typed response.
//
// Thread-safe: stateless functions.
#ifndef RAFTKV_SERVER_RAW_MESSAGE_H_
#define RAFTKV_SERVER_RAW_MESSAGE_H_

#include "absl/status/status.h"
#include "google/protobuf/message_lite.h"
#include "grpcpp/support/byte_buffer.h"

namespace raftkv::server {

// Parses `in` into *msg (cleared first). INVALID_ARGUMENT "request body is
// not a valid <type> (<n> bytes)" if it does not parse, or "request has no
// body" if there is no message at all; `in` is left unchanged.
absl::Status ParseRequest(const grpc::ByteBuffer& in, google::protobuf::MessageLite* msg);

// Serializes `msg` into *out (replacing its contents). INTERNAL if protobuf
// cannot (a message over 2 GiB).
absl::Status SerializeResponse(const google::protobuf::MessageLite& msg, grpc::ByteBuffer* out);

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_RAW_MESSAGE_H_
