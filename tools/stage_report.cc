// tools/stage_report: where writes spend their time, stage by stage, from
// the members' --stage_trace_file traces (server/stage_trace.h).
//
//   bazel run -c opt //tools:stage_report -- /tmp/n1.trace /tmp/n2.trace /tmp/n3.trace
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tools/stage_report_lib.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: stage_report TRACE_FILE... (one per member)\n");
    return 2;
  }
  std::vector<std::string> members;
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i]);
    if (!in) {
      fprintf(stderr, "stage_report: cannot read %s\n", argv[i]);
      return 1;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    members.push_back(ss.str());
  }
  auto rows = raftkv::tools::BuildStageReport(members);
  if (!rows.ok()) {
    fprintf(stderr, "stage_report: %s\n", std::string(rows.status().message()).c_str());
    return 1;
  }
  printf("%-18s %8s %10s %10s %10s   (us after the write reached the leader's node)\n", "stage",
         "samples", "p10", "p50", "p90");
  for (const auto& r : *rows) {
    printf("%-18s %8zu %10.1f %10.1f %10.1f\n", r.stage.c_str(), r.samples, r.p10_us, r.p50_us,
           r.p90_us);
  }
  return 0;
}
