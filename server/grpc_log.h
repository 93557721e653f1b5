// gRPC core's own log lines (gpr_log: "Handshake failed ...", say), sent to
// glog at most `burst` per `period`; the lines past that are counted and the
// count logged with the next line that passes. A client that fails its TLS
// handshake in a loop makes gRPC log one line per attempt: without a bound
// it could fill the node's disk with them.
//
// Thread safety: RouteGrpcLogsToGlog once, at start, before gRPC is used;
// the rest from any thread.
#ifndef RAFTKV_SERVER_GRPC_LOG_H_
#define RAFTKV_SERVER_GRPC_LOG_H_

#include <cstdint>

#include "absl/time/time.h"

namespace raftkv::server {

void RouteGrpcLogsToGlog(int burst = 20, absl::Duration period = absl::Seconds(10));

// gRPC log lines dropped so far.
uint64_t GrpcLogLinesDropped();

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_GRPC_LOG_H_
