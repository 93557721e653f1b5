#include "tests/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace raftkv::testing {
namespace {

// environ with `env` applied ("NAME=value" sets NAME, "NAME" removes it).
std::vector<std::string> MergedEnv(const std::vector<std::string>& env) {
  std::map<std::string, std::string> vars;
  std::vector<std::string> order;
  auto add = [&](const std::string& kv) {
    const std::string name = kv.substr(0, kv.find('='));
    if (vars.find(name) == vars.end()) order.push_back(name);
    vars[name] = kv;
  };
  for (char** e = environ; *e != nullptr; ++e) add(*e);
  for (const auto& kv : env) add(kv);
  std::vector<std::string> out;
  for (const auto& name : order) {
    if (vars[name].find('=') != std::string::npos) out.push_back(vars[name]);
  }
  return out;
}

std::vector<char*> Pointers(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// A spawned child gets default SIGTERM/SIGINT/SIGPIPE handling and no
// blocked signals, whatever this process set up.
void InitAttr(posix_spawnattr_t* attr) {
  posix_spawnattr_init(attr);
  sigset_t none, deflt;
  sigemptyset(&none);
  sigemptyset(&deflt);
  sigaddset(&deflt, SIGTERM);
  sigaddset(&deflt, SIGINT);
  sigaddset(&deflt, SIGPIPE);
  posix_spawnattr_setsigmask(attr, &none);
  posix_spawnattr_setsigdefault(attr, &deflt);
  posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

}  // namespace

std::string ProgramResult::Describe() const {
  std::string how;
  if (!exited) {
    how = absl::StrCat("still running after ", absl::FormatDuration(elapsed), " (killed)");
  } else if (term_signal != 0) {
    how = absl::StrCat("killed by signal ", term_signal);
  } else {
    how = absl::StrCat("exit code ", exit_code);
  }
  return absl::StrCat(how, "\n--- stdout:\n", out, "\n--- stderr:\n", err);
}

bool WaitForPid(pid_t pid, absl::Duration timeout, ProgramResult* r) {
  const absl::Time start = absl::Now();
  while (true) {
    int status = 0;
    const pid_t got = waitpid(pid, &status, WNOHANG);
    if (got == pid) {
      r->exited = true;
      if (WIFEXITED(status)) r->exit_code = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) r->term_signal = WTERMSIG(status);
      r->elapsed = absl::Now() - start;
      return true;
    }
    if (got < 0 && errno != EINTR) {
      r->exited = true;  // not our child (any more): nothing to wait for
      return true;
    }
    if (absl::Now() - start >= timeout) {
      r->elapsed = absl::Now() - start;
      return false;
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
}

absl::StatusOr<pid_t> SpawnLogged(const std::vector<std::string>& argv,
                                  const std::string& log_path,
                                  const std::vector<std::string>& env) {
  std::vector<std::string> args = argv;
  std::vector<std::string> envs = MergedEnv(env);
  std::vector<char*> argp = Pointers(args);
  std::vector<char*> envp = Pointers(envs);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_t attr;
  InitAttr(&attr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argp[0], &fa, &attr, argp.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return absl::InternalError(absl::StrCat("cannot run ", argv[0], ": ", strerror(rc)));
  return pid;
}

absl::StatusOr<ProgramResult> RunProgram(const std::vector<std::string>& argv,
                                         const std::string& input,
                                         const std::vector<std::string>& env,
                                         absl::Duration timeout) {
  // A child that exits without reading its stdin must not kill this process.
  signal(SIGPIPE, SIG_IGN);
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  std::vector<std::string> args = argv;
  std::vector<std::string> envs = MergedEnv(env);
  std::vector<char*> argp = Pointers(args);
  std::vector<char*> envp = Pointers(envs);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawnattr_t attr;
  InitAttr(&attr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argp[0], &fa, &attr, argp.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    close(in[1]);
    close(out[0]);
    close(err[0]);
    return absl::InternalError(absl::StrCat("cannot run ", argv[0], ": ", strerror(rc)));
  }

  ProgramResult r;
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  int in_fd = in[1];
  fcntl(in_fd, F_SETFL, O_NONBLOCK);
  size_t written = 0;
  if (input.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  int fds[2] = {out[0], err[0]};
  std::string* sinks[2] = {&r.out, &r.err};
  bool timed_out = false;
  while (fds[0] >= 0 || fds[1] >= 0) {
    pollfd p[3];
    int n = 0;
    for (int i = 0; i < 2; ++i) p[n++] = {fds[i], POLLIN, 0};
    p[n++] = {in_fd, POLLOUT, 0};
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) {
      timed_out = true;
      break;
    }
    if (poll(p, n, static_cast<int>(std::min<int64_t>(ms, 100))) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i] < 0 || (p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buf[65536];
      const ssize_t got = read(fds[i], buf, sizeof(buf));
      if (got > 0) {
        sinks[i]->append(buf, got);
      } else if (got == 0 || errno != EINTR) {
        close(fds[i]);
        fds[i] = -1;
      }
    }
    if (in_fd >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
      const ssize_t put = write(in_fd, input.data() + written, input.size() - written);
      if (put > 0) written += put;
      if ((put < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
        close(in_fd);
        in_fd = -1;
      }
    }
  }
  for (int fd : {fds[0], fds[1], in_fd}) {
    if (fd >= 0) close(fd);
  }
  if (timed_out || !WaitForPid(pid, std::max(absl::ZeroDuration(), deadline - absl::Now()), &r)) {
    kill(pid, SIGKILL);
    ProgramResult killed;
    WaitForPid(pid, absl::InfiniteDuration(), &killed);
    r.exited = false;
  }
  r.elapsed = absl::Now() - start;
  return r;
}

}  // namespace raftkv::testing
