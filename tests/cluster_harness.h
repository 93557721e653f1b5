// Cluster tests on real processes: a harness that runs N raftkv `server`
// binaries on 127.0.0.1 and a small retrying client on raw gRPC stubs.
//
// Each Cluster picks free ports (bind port 0), gives every node a fresh data
// dir under $TEST_TMPDIR and a log file (stdout and stderr, appended across
// restarts, each start marked by a "=== harness:" line), and runs the nodes
// with short ticks so that elections take tens of milliseconds. The server
// binary is found in the runfiles (a data dependency on //server:server) or
// at $RAFTKV_SERVER.
//
// Nothing here sleeps for a fixed time to let something happen: every wait
// polls Admin.Status (or a predicate) until a condition holds or a timeout
// passes, and says what it saw when it gives up.
//
// When the test has failed by the time a Cluster is destroyed, the tail of
// every node's log is printed to stderr (the test log) and the whole logs are
// copied to $TEST_UNDECLARED_OUTPUTS_DIR (bazel-testlogs/.../test.outputs).
// Nodes still running are SIGKILLed.
//
// Thread safety: kv()/admin()/Status() may be called from any thread;
// starting and stopping nodes from one thread at a time.
#ifndef RAFTKV_TESTS_CLUSTER_HARNESS_H_
#define RAFTKV_TESTS_CLUSTER_HARNESS_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/admin.grpc.pb.h"
#include "proto/kv.grpc.pb.h"

namespace raftkv::testing {

// Path of the server binary: $RAFTKV_SERVER, else the runfiles copy of
// //server:server.
std::string ServerBinary();

// A port on 127.0.0.1 that was free a moment ago (never the same twice in
// one process).
int PickFreePort();

// A channel to `address` that reconnects quickly after the peer restarts;
// plaintext unless `credentials` are given.
std::shared_ptr<grpc::Channel> MakeChannel(
    const std::string& address, std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);

struct ClusterOptions {
  int size = 3;
  // Extra nodes (ids size+1 .. size+spares) that are not founding members:
  // Start() runs them with --join=<the founders' addresses> and an empty
  // data dir; StartAll() leaves them alone.
  int spares = 0;
  int tick_ms = 20;
  int election_ticks = 10;
  // Extra flags for every node (e.g. "--max_value_bytes=1024").
  std::vector<std::string> extra_flags;
  // The harness's own channels (kv(), admin(), Status()): plaintext if null;
  // a TLS cluster's client credentials otherwise.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Directory name under $TEST_TMPDIR; default: the running test's name.
  std::string name;
  // Where node `id` runs (netns tests, tests/jepsen/netns.h): the host it
  // listens on and a file naming the network namespace it runs in
  // (/var/run/netns/NAME, /proc/PID/fd/N; "" = the test's own). Unset:
  // 127.0.0.1 and the test's namespace for every node.
  struct NodeNetwork {
    std::string host = "127.0.0.1";
    std::string netns;
  };
  std::function<NodeNetwork(int id)> network;
  // The file descriptor limit (soft and hard) nodes run with; 0: this
  // process's.
  int fd_limit = 0;
};

// The result of running the server binary to completion.
struct ExitResult {
  bool exited = false;   // false: still running at the timeout (then killed)
  int exit_code = -1;    // when exited normally
  int term_signal = 0;   // when killed by a signal
  std::string output;    // stdout and stderr
  absl::Duration elapsed;
};

// Expects the server run `r` to have exited by itself, non-zero and not by
// a signal, within `quick`, its output naming each of `texts` (gtest
// expectations; for tests of start-up refusals).
void ExpectQuickFailure(const ExitResult& r, const std::vector<std::string>& texts,
                        absl::Duration quick = absl::Seconds(10));

class Cluster {
 public:
  explicit Cluster(ClusterOptions options = {});
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Node ids are 1..size().
  int size() const { return options_.size; }
  const std::string& address(int id) const { return nodes_.at(id).address; }
  std::vector<std::string> addresses() const;
  // The --cluster flag: "1=127.0.0.1:P1,2=...".
  std::string cluster_flag() const;
  std::string data_dir(int id) const { return nodes_.at(id).data_dir; }
  std::string log_path(int id) const { return nodes_.at(id).log_path; }
  // The node whose address is `address`, 0 if none.
  int IdOf(const std::string& address) const;

  // The flags a node is normally started with.
  std::vector<std::string> NodeFlags(int id) const;

  // Starts every node that is not running.
  absl::Status StartAll();
  // Starts node `id` with NodeFlags(id) followed by `extra` (later flags win).
  absl::Status Start(int id, const std::vector<std::string>& extra = {});
  // SIGKILL, then reap.
  void Kill(int id);
  // SIGKILLs every running node at once (all signals sent before any reap).
  void KillAll();
  // SIGTERM; SIGKILL if still running after `grace`. Returns how it ended.
  ExitResult Stop(int id, absl::Duration grace = absl::Seconds(20));
  // SIGTERMs every running node at once, then reaps each as in Stop().
  std::map<int, ExitResult> StopAll(absl::Duration grace = absl::Seconds(20));
  // Waits up to `timeout` for node `id` to end on its own (a crash, a
  // refusal to start), reaps it and returns how it ended; exited=false if it
  // still runs then (it is left running).
  ExitResult WaitForExit(int id, absl::Duration timeout);
  absl::Status Restart(int id) {
    Kill(id);
    return Start(id);
  }
  bool running(int id) const { return nodes_.at(id).pid > 0; }
  // The process id of running node `id`, -1 if it is not running.
  pid_t pid(int id) const { return nodes_.at(id).pid; }
  std::vector<int> running_ids() const;

  // Runs the server binary with exactly `args` (no harness flags) until it
  // exits or `timeout` passes; the output goes to `log_name` under the
  // cluster's directory and into the result.
  ExitResult RunServer(const std::vector<std::string>& args, const std::string& log_name,
                       absl::Duration timeout = absl::Seconds(30));

  // Stubs for node `id` (channels live as long as the Cluster).
  kvpb::KV::Stub* kv(int id) { return nodes_.at(id).kv.get(); }
  adminpb::Admin::Stub* admin(int id) { return nodes_.at(id).admin.get(); }

  // Admin.Status of node `id`, one attempt with a short deadline.
  absl::StatusOr<adminpb::StatusResponse> Status(int id, bool digest = false);

  // Polls `pred` every `poll` until it returns true (then true) or `timeout`
  // passes (then false).
  static bool WaitFor(const std::function<bool()>& pred, absl::Duration timeout,
                      absl::Duration poll = absl::Milliseconds(10));

  // Waits until a running node is the leader and every running node reports
  // it as leader in the same term; returns its id. `excluding`: a node that
  // must not be the answer (e.g. one just killed and restarted).
  absl::StatusOr<int> WaitForLeader(absl::Duration timeout = absl::Seconds(15),
                                    int excluding = 0);

  // Waits until the cluster is quiescent (the leader has committed its whole
  // log; every running node has the same last, commit and applied index)
  // and every node's data digest is identical. Call it with no writes in
  // flight. Returns the common status of the leader; an error naming
  // each node's applied index and digest if they never agree.
  absl::StatusOr<adminpb::StatusResponse> WaitForConvergence(
      absl::Duration timeout = absl::Seconds(30));

  // Every key of node `id` (paging through Scan), linearizable unless
  // `serializable`: key -> KeyValue.
  absl::StatusOr<std::map<std::string, kvpb::KeyValue>> ScanAll(int id, bool serializable);

  // The last `max_bytes` of node `id`'s log.
  std::string LogTail(int id, size_t max_bytes = 32 << 10) const;
  void PrintLogs() const;

 private:
  struct Node {
    int id = 0;
    std::string address;
    std::string netns;  // "" = this process's network namespace
    std::string data_dir;
    std::string log_path;
    pid_t pid = -1;
    bool started = false;  // Start() ran once: its data dir is founded
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<kvpb::KV::Stub> kv;
    std::unique_ptr<adminpb::Admin::Stub> admin;
  };

  // Spawns the server with `args`, output appended to `log_path`, in the
  // network namespace named by the file `netns` ("" = this process's).
  absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& args,
                              const std::string& log_path, const std::string& netns = "");
  // Waits (up to `timeout`) for `pid` to exit; fills `r`. false on timeout.
  static bool Reap(pid_t pid, absl::Duration timeout, ExitResult* r);

  const ClusterOptions options_;
  std::string dir_;
  std::map<int, Node> nodes_;
};

// A client on raw stubs for tests: follows NOT_LEADER hints, retries
// UNAVAILABLE / DEADLINE_EXCEEDED on the next node with the same client id
// and sequence number (exactly-once), until a total timeout. One per
// thread: not thread-safe.
class TestClient {
 public:
  // client_id 0: a random id.
  explicit TestClient(Cluster* cluster, uint64_t client_id = 0);

  uint64_t client_id() const { return client_id_; }
  // Attempts made by the last call (1 = no retry).
  int last_attempts() const { return last_attempts_; }
  // The node the next call goes to first.
  void set_preferred(int node) { preferred_ = node; }
  int preferred() const { return preferred_; }

  absl::StatusOr<kvpb::PutResponse> Put(const std::string& key, const std::string& value,
                                        absl::Duration timeout = absl::Seconds(20));
  absl::StatusOr<kvpb::DeleteResponse> Delete(const std::string& key,
                                              absl::Duration timeout = absl::Seconds(20));
  // A linearizable read unless `serializable`; retried like writes.
  absl::StatusOr<kvpb::GetResponse> Get(const std::string& key, bool serializable = false,
                                        absl::Duration timeout = absl::Seconds(20));

 private:
  // Runs `attempt(node)` until it returns a status that is not worth
  // retrying, following leader hints.
  grpc::Status Invoke(
      const std::function<grpc::Status(int node, grpc::ClientContext* ctx)>& attempt,
      absl::Duration timeout);

  Cluster* const cluster_;
  const uint64_t client_id_;
  uint64_t next_seq_ = 1;
  int preferred_ = 1;
  int last_attempts_ = 0;
};

// Concurrent writers for fault tests: each thread has its own TestClient
// and puts fresh keys "<prefix><thread>-<n>" (value "<thread>-<n>-<random>")
// until Stop(). Every acknowledged write is recorded; a write that fails
// (outcome unknown after the client's timeout) is recorded as an error and
// the thread moves on.
class WriteLoad {
 public:
  struct Ack {
    std::string key;
    std::string value;
    uint64_t version = 0;
    absl::Time at;
  };

  WriteLoad(Cluster* cluster, int threads, std::string prefix = "w");
  ~WriteLoad() { Stop(); }

  void Start();
  void Stop();  // returns once every thread has finished its current write

  size_t acked() const;
  // The fewest writes any one thread had acknowledged after `t`.
  size_t MinAckedSince(absl::Time t) const;
  std::vector<Ack> acks() const;
  std::vector<std::string> errors() const;

 private:
  void Run(int thread);

  Cluster* const cluster_;
  const int threads_;
  const std::string prefix_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::vector<Ack>> acks_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> errors_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> workers_;
};

// Checks that every write in `acks` is in `data` with its value and version;
// an error naming the first few that are missing or different.
absl::Status CheckAcked(const std::vector<WriteLoad::Ack>& acks,
                        const std::map<std::string, kvpb::KeyValue>& data);

// The value of trailing metadata `key` of a finished call ("" if absent).
std::string TrailingMetadata(const grpc::ClientContext& ctx, const std::string& key);

// A fresh random non-zero 64-bit number.
uint64_t RandomId();

}  // namespace raftkv::testing

#endif  // RAFTKV_TESTS_CLUSTER_HARNESS_H_
