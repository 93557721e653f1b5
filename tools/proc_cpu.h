// CPU time of processes, from /proc, for benchmarks that charge CPU per op.
#ifndef RAFTKV_TOOLS_PROC_CPU_H_
#define RAFTKV_TOOLS_PROC_CPU_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace raftkv::tools {

// utime + stime of process `pid` (all its threads) in seconds, from
// /proc/<pid>/stat; nullopt if it is gone or unreadable.
std::optional<double> ProcessCpuSeconds(pid_t pid);

// Parses the contents of a /proc/<pid>/stat file (exposed for tests).
std::optional<double> ParseProcStatCpuSeconds(const std::string& stat, long ticks_per_second);

// user + system CPU of this process, in seconds (getrusage).
double SelfCpuSeconds();

// "1,2,3" -> {1, 2, 3}; nullopt on anything that is not a positive pid.
std::optional<std::vector<pid_t>> ParsePids(const std::string& csv);

}  // namespace raftkv::tools

#endif  // RAFTKV_TOOLS_PROC_CPU_H_
