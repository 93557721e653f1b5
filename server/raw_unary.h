// RawUnaryHandler: a gRPC method handler for a sync service that takes its
// request as raw bytes, parses it with server/raw_message.h (so a body that
// does not parse is INVALID_ARGUMENT with a message, not gRPC's bare
// INTERNAL) and calls a typed handler. For a service's constructor:
//
//   MarkMethodStreamed(index, RawUnaryHandler<Req, Resp>(
//       [this](grpc::ServerContext* ctx, const Req& req, Resp* resp) { ... }));
//
// The handler runs on one of gRPC's sync threads and may block.
#ifndef RAFTKV_SERVER_RAW_UNARY_H_
#define RAFTKV_SERVER_RAW_UNARY_H_

#include <functional>
#include <string>

#include "grpcpp/impl/codegen/method_handler.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/raw_message.h"

namespace raftkv::server {

template <typename Req, typename Resp>
grpc::internal::MethodHandler* RawUnaryHandler(
    std::function<grpc::Status(grpc::ServerContext*, const Req&, Resp*)> handler) {
  using Streamer = grpc::ServerUnaryStreamer<grpc::ByteBuffer, grpc::ByteBuffer>;
  return new grpc::internal::StreamedUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
      [handler = std::move(handler)](grpc::ServerContext* ctx, Streamer* stream) {
        grpc::ByteBuffer in;
        Req req;
        absl::Status parsed = stream->Read(&in)
                                  ? ParseRequest(in, &req)
                                  : absl::InvalidArgumentError("request has no body");
        if (!parsed.ok()) {
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(parsed.message()));
        }
        Resp resp;
        grpc::Status s = handler(ctx, req, &resp);
        if (!s.ok()) return s;
        grpc::ByteBuffer out;
        if (absl::Status ser = SerializeResponse(resp, &out); !ser.ok()) {
          return grpc::Status(grpc::StatusCode::INTERNAL, std::string(ser.message()));
        }
        stream->Write(out);  // false: the call is gone, and the status goes nowhere
        return grpc::Status::OK;
      });
}

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_RAW_UNARY_H_
