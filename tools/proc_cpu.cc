#include "tools/proc_cpu.h"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace raftkv::tools {

std::optional<double> ParseProcStatCpuSeconds(const std::string& stat, long ticks_per_second) {
  // "pid (comm) state ppid ..." where comm may hold spaces and parentheses:
  // the fields we want follow the last ')'. Field 3 (state) is the first
  // after it, so utime (field 14) and stime (15) are the 12th and 13th.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || ticks_per_second <= 0) return std::nullopt;
  std::vector<std::string> f =
      absl::StrSplit(stat.substr(paren + 1), ' ', absl::SkipWhitespace());
  uint64_t utime = 0, stime = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &utime) || !absl::SimpleAtoi(f[12], &stime)) {
    return std::nullopt;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(ticks_per_second);
}

std::optional<double> ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseProcStatCpuSeconds(ss.str(), sysconf(_SC_CLK_TCK));
}

double SelfCpuSeconds() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

std::optional<std::vector<pid_t>> ParsePids(const std::string& csv) {
  std::vector<pid_t> pids;
  for (absl::string_view s : absl::StrSplit(csv, ',', absl::SkipWhitespace())) {
    int pid = 0;
    if (!absl::SimpleAtoi(s, &pid) || pid <= 0) return std::nullopt;
    pids.push_back(pid);
  }
  return pids;
}

}  // namespace raftkv::tools
