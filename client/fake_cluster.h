// FakeCluster: in-process gRPC servers speaking kvpb::KV and adminpb::Admin,
// for testing the client and kvctl against real sockets (127.0.0.1, ports
// picked by the kernel).
//
// The nodes share one in-memory key-value map and one exactly-once session
// table (client_id -> seq -> result), the way a real cluster's state machine
// would. One node is the leader (SetLeader); the others answer writes and
// linearizable reads with FAILED_PRECONDITION "not leader" plus the
// `raftkv-leader-id` / `raftkv-leader-addr` trailing metadata (the hint can
// be overridden per node). Serializable reads are answered by any node.
//
// Faults are scripted per node: Stop() (port closed: UNAVAILABLE), a delay
// before every answer, N answers replaced by a given status before doing
// anything, and N write answers lost: the write is applied and recorded, then
// the node answers UNAVAILABLE.
//
// Every request is recorded (node, method, key, write header) for tests to
// assert on. Thread-safe; the servers run on gRPC's thread pools.
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
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
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

  struct Session {
    std::map<uint64_t, kvpb::WriteResult> results;  // by seq
  };

  // The common start of every handler: the node's delay, the call's record,
  // scripted failures, the leader check. Returns OK with mu_ held, or the
  // status to answer with mu_ released; `*call` indexes calls_.
  grpc::Status Enter(int node, grpc::ServerContext* ctx,
                     const std::string& method, const std::string& key,
                     const kvpb::WriteHeader* header, bool needs_leader,
                     size_t* call) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // Enter for reads; returns with mu_ released.
  grpc::Status Read(int node, grpc::ServerContext* ctx,
                    const std::string& method, const std::string& key,
                    bool serializable);
  // Enter, then the session table: `apply` runs (under mu_) only for a
  // sequence number not seen before; a retry gets the stored result.
  grpc::Status Write(int node, grpc::ServerContext* ctx,
                     const std::string& method, const std::string& key,
                     const kvpb::WriteHeader& header,
                     const std::function<kvpb::WriteResult(FakeCluster&)>& apply,
                     kvpb::WriteResult* result) ABSL_NO_THREAD_SAFETY_ANALYSIS;

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
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;

  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace raftkv::client::testing

#endif  // RAFTKV_CLIENT_FAKE_CLUSTER_H_
