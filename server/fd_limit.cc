#include "server/fd_limit.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace raftkv::server {
namespace {

// Descriptors the node opens besides table files and connections: WALs,
// MANIFEST, info and glog files, the durable mark, epoll and event fds,
// channels to peers, snapshot and backup files. A node uses ~25 at rest.
constexpr int kOtherFds = 256;
constexpr int kMinConnections = 64;

// fs.nr_open: no RLIMIT_NOFILE may exceed it.
uint64_t NrOpen() {
  std::ifstream f("/proc/sys/fs/nr_open");
  uint64_t n = 0;
  if (f >> n && n > 0) return n;
  return uint64_t{1} << 20;  // the kernel's default
}

}  // namespace

absl::StatusOr<FdLimit> RaiseFdLimit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) {
    return absl::InternalError(absl::StrCat("getrlimit(RLIMIT_NOFILE): ", strerror(errno)));
  }
  FdLimit out;
  out.before = r.rlim_cur;
  out.hard = r.rlim_max;
  const uint64_t want = std::min<uint64_t>(r.rlim_max, NrOpen());
  if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < want) {
    rlimit raised = r;
    raised.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) r = raised;
  }
  out.soft = r.rlim_cur == RLIM_INFINITY ? NrOpen() : r.rlim_cur;
  return out;
}

absl::StatusOr<FdBudget> BudgetFds(uint64_t limit) {
  FdBudget b;
  b.store_files = static_cast<int>(std::clamp<uint64_t>(limit / 4, 64, 10000));
  b.reserved = b.store_files + kOtherFds;
  if (limit < static_cast<uint64_t>(b.reserved + kMinConnections)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the file descriptor limit is ", limit, " (ulimit -n): the node needs at least ",
        b.reserved + kMinConnections, " (", b.store_files, " for the store, ", kOtherFds,
        " for its other files, ", kMinConnections, " for connections); raise it"));
  }
  return b;
}

}  // namespace raftkv::server
