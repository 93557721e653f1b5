// kvctl: the command-line client of a raftkv cluster. See `kvctl --help`,
// client/README.md, and client/kvctl_lib.h (where the logic lives).
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "client/kvctl_lib.h"
#include "gflags/gflags.h"
#include "grpc/support/log.h"

namespace {
// gRPC's own log lines ("Handshake failed ...") would come before kvctl's
// one line, which already says what failed.
void DropGrpcLog(gpr_log_func_args*) {}
}  // namespace

int main(int argc, char** argv) {
  gpr_set_log_function(DropGrpcLog);
  gflags::SetUsageMessage(raftkv::kvctl::Usage());
  std::vector<std::string> args(argv + 1, argv + argc);
  return raftkv::kvctl::RunKvctl(args, std::cin, std::cout, std::cerr,
                                 isatty(STDOUT_FILENO) == 1);
}
