// The cluster an etcd-compatibility test runs against: real etcd (Debian's
// etcd-server, /usr/bin/etcd) or raftkv serving etcd's v3 API. Every etcd
// behaviour test runs first against real etcd, then against raftkv, in the
// same harness, so the test checks what etcd does (issue 20).
//
// Members are numbered 1..size(); each has a client endpoint
// "127.0.0.1:PORT" that etcd's clients (etcdctl, clientv3) dial. Processes
// run on 127.0.0.1, data under $TEST_TMPDIR, logs beside it; nothing waits a
// fixed time: waits poll a condition (etcdctl endpoint health / status)
// until a timeout and then say what they saw.
//
// Thread safety: one thread at a time for Start/Kill/Restart/Stop;
// endpoints() and the etcdctl-based queries from any thread.
#ifndef RAFTKV_TESTS_ETCD_TARGET_H_
#define RAFTKV_TESTS_ETCD_TARGET_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/subprocess.h"

namespace raftkv::testing {

// /usr/bin/etcd and /usr/bin/etcdctl, or $ETCD_BIN / $ETCDCTL_BIN.
std::string EtcdBinary();
std::string EtcdctlBinary();

// Runs `etcdctl --endpoints=<endpoints> <args...>` with ETCDCTL_API=3 and
// `input` on stdin (etcdctl txn reads its compares and ops there), killed
// after `timeout`. No shell: args are passed as they are. An error only when
// etcdctl cannot be started.
absl::StatusOr<ProgramResult> RunEtcdctl(const std::string& endpoints,
                                         const std::vector<std::string>& args,
                                         const std::string& input = "",
                                         absl::Duration timeout = absl::Seconds(30));

class EtcdTarget {
 public:
  virtual ~EtcdTarget() = default;

  // "etcd" or "raftkv".
  virtual std::string kind() const = 0;
  virtual int size() const = 0;
  // "127.0.0.1:PORT" of member `member` (1..size()).
  virtual std::string endpoint(int member) const = 0;
  virtual bool running(int member) const = 0;

  // Starts every member; returns once each one answers
  // `etcdctl endpoint health`.
  virtual absl::Status Start() = 0;
  // SIGKILL, then reap.
  virtual void Kill(int member) = 0;
  // Starts a killed member again on its data (same ports, same identity).
  virtual absl::Status Restart(int member) = 0;
  // Stops every member (SIGTERM, then SIGKILL).
  virtual void Stop() = 0;
  // The last part of every member's log on stderr (for failures).
  virtual void PrintLogs() const = 0;

  // Every member's endpoint, comma-separated (etcdctl's --endpoints).
  std::string endpoints() const;
  // The running members' endpoints, comma-separated.
  std::string running_endpoints() const;
  // The member whose endpoint is `endpoint`, 0 if none.
  int MemberOf(const std::string& endpoint) const;

  // The member that leads, as every running member reports it through
  // Maintenance.Status (`etcdctl endpoint status -w json`): waits until all
  // running members name the same leader and it is one of them. `excluding`:
  // a member that must not be the answer.
  absl::StatusOr<int> WaitForLeader(absl::Duration timeout = absl::Seconds(15),
                                    int excluding = 0);
  // SIGKILLs the leader; returns its member number.
  absl::StatusOr<int> KillLeader();
  // Waits until `etcdctl endpoint health` passes on every running member.
  absl::Status WaitHealthy(absl::Duration timeout = absl::Seconds(30));
};

// "etcd": three /usr/bin/etcd processes (static initial cluster, short
// heartbeat and election timeout). "raftkv": three raftkv servers through
// tests/cluster_harness.h, whose client addresses serve etcd's API too.
// `name`: a directory name under $TEST_TMPDIR.
std::unique_ptr<EtcdTarget> MakeEtcdTarget(const std::string& kind, const std::string& name);

struct EtcdTargetOptions {
  // Extra flags for every member, in the target's own spelling (etcd:
  // --quota-backend-bytes=N; raftkv: --quota_backend_bytes=N).
  std::vector<std::string> extra_flags;
  // Start() waits only for a leader agreed on through Maintenance.Status,
  // not for `etcdctl endpoint health` (a KV read): for tests of the
  // Maintenance service alone.
  bool maintenance_only = false;
};
std::unique_ptr<EtcdTarget> MakeEtcdTarget(const std::string& kind, const std::string& name,
                                           const EtcdTargetOptions& options);

}  // namespace raftkv::testing

#endif  // RAFTKV_TESTS_ETCD_TARGET_H_
