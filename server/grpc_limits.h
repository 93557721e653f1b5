// Limits on what gRPC itself holds for the node's clients and peers (one
// port serves both): HTTP/2 streams per connection, gRPC's memory quota (its
// read buffers, calls in progress, connections) and its threads for the
// synchronous services (Admin, snapshot transfers). What the node holds in
// answers is bounded apart (server/answer_budget.h).
#ifndef RAFTKV_SERVER_GRPC_LIMITS_H_
#define RAFTKV_SERVER_GRPC_LIMITS_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "grpcpp/server_builder.h"

namespace raftkv::server {

struct GrpcLimits {
  // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: calls (streams) one connection
  // may have open at once; a client's further calls wait for a free one.
  // etcd's default is 2^32-1 (none); 1000 bounds what one connection pins
  // (each call holds gRPC state and a request buffer) yet is well past what
  // a client uses (the client library runs one Batch stream per connection;
  // the benchmarks run at most 16 calls on one) and past HTTP/2's advice of
  // at least 100.
  uint32_t max_concurrent_streams = 1000;
  // gRPC's memory quota in bytes (0: none). Under pressure gRPC shrinks
  // HTTP/2 windows, then closes idle connections and, at the limit, cancels
  // streams ("Buffers full").
  size_t memory_bytes = size_t{1} << 30;
  // Threads gRPC may run for synchronous calls (Admin, snapshot transfers);
  // a call past it fails RESOURCE_EXHAUSTED. Callback calls (KV, peers'
  // messages) do not use them.
  int max_threads = 64;
  // A connection that has not finished its handshake by then is closed (a
  // TLS handshake, or a plaintext client's HTTP/2 preface and SETTINGS).
  // gRPC's default is 120 s, so a client that connects and sends nothing
  // pinned a descriptor and ~20 KB (~70 KB with TLS) for two minutes. Real
  // clients finish in a few round trips.
  int handshake_timeout_ms = 10000;
  // A connection with no call for this long is sent GOAWAY and closed
  // (0: never). Clients reconnect on their next call; peers' message streams
  // and the client library's Batch streams stay open, so their connections
  // are never idle.
  int max_connection_idle_ms = 5 * 60 * 1000;

  absl::Status Validate() const;
};

// Sets `limits` on `builder`. REQUIRES: limits.Validate().ok().
void ApplyGrpcLimits(const GrpcLimits& limits, grpc::ServerBuilder* builder);

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_GRPC_LIMITS_H_
