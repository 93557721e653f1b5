// FakeCluster: in-process gRPC servers speaking kvpb::KV and adminpb::Admin,
// for testing the client and kvctl against real sockets (127.0.0.1, ports
// picked by the kernel).
//
// The nodes share one in-memory key-value map and one exactly-once session
// table (client_id -> seq -> result), the way a real cluster's state machine
// would. One node is the leader (SetLeader); the others answer writes and
// linearizable reads with FAILED_PRECONDITION "not leader" plus the
// leader's id and address (the hint can be overridden per node): in the
// `raftkv-leader-id` / `raftkv-leader-addr` trailing metadata of a unary
// call, in ResponseOp::leader_id / leader_addr of a Batch op. Serializable
// reads are answered by any node.
//
// KV.Batch streams are served too: each op runs on a thread of its own
// through the same handler as its unary call (so faults, records and answers
// are the same), answered as it finishes, one answer per message. The
// stream ends OK once the client half-closes and every op is answered.
//
// Faults are scripted per node: Stop() (port closed: UNAVAILABLE; streams
// cut), a delay before every answer, N answers replaced by a given status
// before doing anything, N write answers lost (the write is applied and
// recorded, then a unary call answers UNAVAILABLE; on a Batch stream the
// stream breaks instead: cancelled, without answering that op or any other
// op still on it), and hung streams (Hang).
//
// Every request is recorded (node, method, key, write header, unary or
// batch) for tests to assert on; Batch streams, messages and ops are
// counted. Thread-safe; the servers run on gRPC's thread pools.
#ifndef RAFTKV_CLIENT_FAKE_CLUSTER_H_
#define RAFTKV_CLIENT_FAKE_CLUSTER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "client/client.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/sync_stream.h"
#include "proto/admin.pb.h"
#include "proto/kv.grpc.pb.h"
#include "proto/kv.pb.h"

namespace raftkv::client::testing {

// "127.0.0.1:<port>" on which nothing listens (a port just bound and
// released), so connecting is refused.
std::string UnusedAddress();

class FakeCluster {
 public:
  struct Call {
    int node;
    std::string method;  // Put, Get, Delete, Scan, CompareAndSwap, Status,
                         // AddMember, PromoteMember, RemoveMember, TransferLeader
    std::string key;     // the key (the prefix for Scan)
    kvpb::WriteHeader header;  // writes only
    std::string outcome;       // "ok", "not leader", "lost", "injected"
    bool batch = false;        // an op of a Batch stream, not a unary call
  };

  // What `node` received on Batch streams.
  struct BatchStats {
    int streams = 0;   // streams opened
    int messages = 0;  // request messages
    int ops = 0;       // ops in them
    int max_ops = 0;   // the most ops one message carried
  };

  // Starts `nodes` servers; node 0 is the leader.
  explicit FakeCluster(int nodes);
  ~FakeCluster();

  int size() const { return static_cast<int>(nodes_.size()); }
  std::string address(int node) const;
  std::vector<std::string> addresses() const;

  // Writes key=value straight into the shared state (a new version), as if
  // a client had put it; no call is recorded.
  void Preload(const std::string& key, const std::string& value);

  // Makes `node` the leader; -1: no node is (every hint is empty).
  void SetLeader(int node);
  // What `node` answers in `raftkv-leader-addr` instead of the leader's
  // address ("" for none); std::nullopt restores the default.
  void SetHint(int node, std::optional<std::string> addr);
  // The size limits every node reports in Admin.Status (0, the default:
  // none, as an older server). The nodes' real gRPC receive limit stays
  // gRPC's default, 4 MiB, whatever they report.
  void SetLimits(uint64_t max_value_bytes, uint64_t max_request_bytes);
  // Fields merged (protobuf MergeFrom) into every Admin.Status answer of
  // `node`, e.g. alarms.
  void SetStatusExtra(int node, const adminpb::StatusResponse& extra);
  // Shuts `node`'s server down; its port refuses connections.
  void Stop(int node);
  // Sleeps this long before answering each request on `node`.
  void SetDelay(int node, absl::Duration delay);
  // The next `count` requests on `node` get `status` and change nothing.
  void FailNext(int node, grpc::Status status, int count = 1);
  // The next `count` writes on `node` are applied, then answered UNAVAILABLE.
  void LoseResponses(int node, int count = 1);
  // Writes to `key` block until Release(key) (or the client gives up).
  void Block(const std::string& key);
  void Release(const std::string& key);
  // While `hung`, a Batch stream of `node` that receives a message goes
  // dead: it reads and answers nothing more (a node stopped by SIGSTOP, a
  // black-holed connection), and stays dead after Hang(node, false) until
  // the client cancels it or the node stops. Unary calls are not affected.
  void Hang(int node, bool hung);

  BatchStats batch_stats(int node) const;

  std::vector<Call> calls() const;
  // Calls of one method; with ok_only, only those answered OK.
  std::vector<Call> calls(const std::string& method,
                          bool ok_only = false) const;
  void ClearCalls();
  // How many writes were applied (retries answered from the session table
  // do not count).
  int applied_writes() const;
  // Sequence numbers per client whose write was answered OK.
  std::map<uint64_t, std::vector<uint64_t>> answered_seqs() const;
  // Problems the fake saw in write headers (e.g. a first_incomplete above a
  // sequence number that was never answered); empty if none.
  std::vector<std::string> header_errors() const;

 private:
  class Node;
  friend class Node;

  class UnaryCtx;  // fake_cluster.cc
  class OpCtx;     // fake_batch.cc

  struct Session {
    std::map<uint64_t, kvpb::WriteResult> results;  // by seq
  };

  // What a handler needs from the call it serves: a unary call, or one op
  // of a Batch stream.
  class CallCtx {
   public:
    virtual ~CallCtx() = default;
    virtual bool batch() const = 0;
    // The client gave up: the call or the stream was cancelled (or broken),
    // or the op's own deadline passed.
    virtual bool Cancelled() const = 0;
    // What a handler answers once Cancelled(): CANCELLED, or for an op past
    // its deadline DEADLINE_EXCEEDED (as the real server does).
    virtual grpc::Status GaveUp() const {
      return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    }
    // The hint of a NOT_LEADER answer (id 0 and "" when no leader is known).
    virtual void SetLeader(uint64_t id, const std::string& addr) = 0;
    // The answer to this write is to be lost (LoseResponses): a unary call
    // just answers UNAVAILABLE; a Batch stream breaks.
    virtual void LoseAnswer() = 0;
  };

  // Runs one Batch op through the handler of its unary call; the answer's
  // payload goes into *out.
  using RunOp =
      std::function<grpc::Status(CallCtx&, const kvpb::RequestOp&, kvpb::ResponseOp*)>;

  // The common start of every handler: the node's delay, the call's record,
  // scripted failures, the leader check. Returns OK with mu_ held, or the
  // status to answer with mu_ released; `*call` indexes calls_.
  grpc::Status Enter(int node, CallCtx& ctx,
                     const std::string& method, const std::string& key,
                     const kvpb::WriteHeader* header, bool needs_leader,
                     size_t* call) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // Enter for reads; returns with mu_ released.
  grpc::Status Read(int node, CallCtx& ctx,
                    const std::string& method, const std::string& key,
                    bool serializable);
  // Enter, then the session table: `apply` runs (under mu_) only for a
  // sequence number not seen before; a retry gets the stored result.
  grpc::Status Write(int node, CallCtx& ctx,
                     const std::string& method, const std::string& key,
                     const kvpb::WriteHeader& header,
                     const std::function<kvpb::WriteResult(FakeCluster&)>& apply,
                     kvpb::WriteResult* result) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // Serves one Batch stream of `node` (fake_batch.cc): reads ops until the
  // client half-closes, runs each with `run` on a thread of its own and
  // answers it; returns once every op is answered (or the stream is dead,
  // broken or cancelled and every op thread has returned).
  grpc::Status ServeBatch(
      int node, grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<kvpb::BatchResponse, kvpb::BatchRequest>* stream,
      const RunOp& run);

  // Whether Hang(node, true) is in force.
  bool HungLocked(int node) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // members_, filled on first use. REQUIRES: mu_ held.
  std::map<uint64_t, std::pair<std::string, bool>>& Members()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  int leader_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, kvpb::KeyValue> data_ ABSL_GUARDED_BY(mu_);
  uint64_t index_ ABSL_GUARDED_BY(mu_) = 0;
  int applied_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, Session> sessions_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::vector<uint64_t>> answered_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> header_errors_ ABSL_GUARDED_BY(mu_);
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
  // Membership (id -> address, voter); empty until first used: then every
  // node as a voter.
  std::map<uint64_t, std::pair<std::string, bool>> members_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, bool> blocked_ ABSL_GUARDED_BY(mu_);
  std::map<int, BatchStats> batch_stats_ ABSL_GUARDED_BY(mu_);  // by node
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t max_value_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t max_request_bytes_ ABSL_GUARDED_BY(mu_) = 0;

  std::vector<std::unique_ptr<Node>> nodes_;
};

// Client options with short timeouts and backoff, for tests.
ClientOptions FastOptions(std::vector<std::string> endpoints);
// Client::Create; on error fails the running test and returns null.
std::unique_ptr<Client> MakeClient(ClientOptions o);
// The node of each call, in order.
std::vector<int> Nodes(const std::vector<FakeCluster::Call>& calls);

}  // namespace raftkv::client::testing

#endif  // RAFTKV_CLIENT_FAKE_CLUSTER_H_
