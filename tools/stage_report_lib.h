// The report of tools/stage_report: per stage, how long after a write
// reached its leader's node it got there (server/stage_trace.h).
#ifndef RAFTKV_TOOLS_STAGE_REPORT_LIB_H_
#define RAFTKV_TOOLS_STAGE_REPORT_LIB_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace raftkv::tools {

struct StageRow {
  std::string stage;
  size_t samples = 0;
  double p10_us = 0, p50_us = 0, p90_us = 0;  // after "arrived"
};

// `members`: each member's trace file, as text. The leader is the member
// with the most "proposed" records; for the follower stages of an index,
// the follower whose ack left first (the one that completed the quorum).
// Indexes count only if the leader has both "arrived" and "answered" for
// them. InvalidArgument on a malformed line or if no index counts.
absl::StatusOr<std::vector<StageRow>> BuildStageReport(const std::vector<std::string>& members);

}  // namespace raftkv::tools

#endif  // RAFTKV_TOOLS_STAGE_REPORT_LIB_H_
