// Running other programs from tests without a shell: a command to completion
// with its stdin given and stdout/stderr captured apart (RunProgram), or a
// long-running one with its output appended to a log file (SpawnLogged).
//
// Thread safety: every function may be called from any thread.
#ifndef RAFTKV_TESTS_SUBPROCESS_H_
#define RAFTKV_TESTS_SUBPROCESS_H_

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace raftkv::testing {

struct ProgramResult {
  bool exited = false;   // false: still running at the timeout (then killed)
  int exit_code = -1;    // when exited normally
  int term_signal = 0;   // when killed by a signal
  std::string out;       // stdout
  std::string err;       // stderr
  absl::Duration elapsed;

  bool ok() const { return exited && term_signal == 0 && exit_code == 0; }
  // "exit code 1", "killed by signal 9", "still running after 30s", with the
  // command's stdout and stderr: for failure messages.
  std::string Describe() const;
};

// Runs argv[0] (a path; no PATH search, no shell) with `argv`, this
// process's environment changed by `env` ("NAME=value" sets NAME, "NAME"
// alone removes it; later entries win), and
// `input` on its stdin (then closed). Kills it with SIGKILL after `timeout`.
// An error only when the program cannot be started.
absl::StatusOr<ProgramResult> RunProgram(const std::vector<std::string>& argv,
                                         const std::string& input = "",
                                         const std::vector<std::string>& env = {},
                                         absl::Duration timeout = absl::Seconds(60));

// Starts argv[0] with `argv` and `env` as above, stdin /dev/null, stdout and
// stderr appended to `log_path`. The caller reaps the child (WaitForPid).
absl::StatusOr<pid_t> SpawnLogged(const std::vector<std::string>& argv,
                                  const std::string& log_path,
                                  const std::vector<std::string>& env = {});

// Waits up to `timeout` for child `pid` to exit; fills exited/exit_code/
// term_signal/elapsed of `r`. false if it still runs then.
bool WaitForPid(pid_t pid, absl::Duration timeout, ProgramResult* r);

}  // namespace raftkv::testing

#endif  // RAFTKV_TESTS_SUBPROCESS_H_
