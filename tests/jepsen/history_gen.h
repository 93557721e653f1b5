// Random histories that are linearizable by construction, for testing the
// checker: concurrent clients whose operations take effect, one at a time, on
// a sequential key-value store at a moment between their invocation and
// completion. Writes take log indexes as versions (with gaps, like the
// leaders' no-op entries). Some operations end unknown: their effect happens
// at any later moment (possibly after the client moved on) or never; some
// writes fail without effect. Optionally some reads go to one of a few
// members, which apply the same log with a lag: a serializable read there
// answers the member's (possibly stale, never going back) state, with the
// member's applied index; and some operations are scans of every key.
#ifndef RAFTKV_TESTS_JEPSEN_HISTORY_GEN_H_
#define RAFTKV_TESTS_JEPSEN_HISTORY_GEN_H_

#include <cstdint>
#include <vector>

#include "tests/jepsen/history.h"

namespace raftkv::jepsen {

struct GenOptions {
  uint64_t seed = 1;
  int clients = 5;
  int keys = 3;
  int ops = 200;
  double unknown = 0.02;  // fraction of writes that end unknown
  double failed = 0.01;   // fraction of writes that fail (no effect)
  double reads = 0.4;     // fraction of gets
  // Members that answer reads directly (0: none); this fraction of the gets
  // go to a random one, half of them serializable.
  int members = 0;
  double member_reads = 0.3;
  double scans = 0;  // fraction of operations that are scans (prefix "k")
};

std::vector<Op> GenerateLinearizable(const GenOptions& options);

}  // namespace raftkv::jepsen

#endif  // RAFTKV_TESTS_JEPSEN_HISTORY_GEN_H_
