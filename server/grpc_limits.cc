#include "server/grpc_limits.h"

#include <algorithm>
#include <climits>

#include "absl/strings/str_cat.h"
#include "grpcpp/resource_quota.h"

namespace raftkv::server {

absl::Status GrpcLimits::Validate() const {
  if (max_concurrent_streams == 0) {
    return absl::InvalidArgumentError("--max_concurrent_streams must be > 0");
  }
  // Below this the node's own peer streams and buffers may not fit.
  constexpr size_t kMinMemory = size_t{64} << 20;
  if (memory_bytes != 0 && memory_bytes < kMinMemory) {
    return absl::InvalidArgumentError(absl::StrCat("--grpc_memory_bytes=", memory_bytes,
                                                   " is below the minimum of ", kMinMemory,
                                                   " (0: no limit)"));
  }
  // gRPC's synchronous server keeps a few polling threads per core.
  if (max_threads < 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("--grpc_max_threads=", max_threads, " is below the minimum of 8"));
  }
  if (handshake_timeout_ms < 100) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--handshake_timeout_ms=", handshake_timeout_ms, " is below the minimum of 100"));
  }
  if (max_connection_idle_ms != 0 && max_connection_idle_ms < 1000) {
    return absl::InvalidArgumentError(absl::StrCat("--max_connection_idle_ms=",
                                                   max_connection_idle_ms,
                                                   " is below the minimum of 1000 (0: never)"));
  }
  return absl::OkStatus();
}

void ApplyGrpcLimits(const GrpcLimits& limits, grpc::ServerBuilder* builder) {
  builder->AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                              static_cast<int>(std::min<uint32_t>(
                                  limits.max_concurrent_streams, INT32_MAX)));
  builder->AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, limits.handshake_timeout_ms);
  if (limits.max_connection_idle_ms != 0) {
    builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, limits.max_connection_idle_ms);
  }
  grpc::ResourceQuota quota("raftkv-server");
  if (limits.memory_bytes != 0) quota.Resize(limits.memory_bytes);
  quota.SetMaxThreads(limits.max_threads);
  builder->SetResourceQuota(quota);  // takes its own reference
}

}  // namespace raftkv::server
