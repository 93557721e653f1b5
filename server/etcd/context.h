// EtcdContext: what the etcd services (server/etcd/*_service.h) share: the
// node and state machine they serve, how writes and membership changes reach
// the leader from any member, and the identity every ResponseHeader carries.
// Built once in the server's main; the services keep a copy.
//
// Thread safety: the functions and pointers it holds are thread-safe; the
// context itself is immutable once built.
#ifndef RAFTKV_SERVER_ETCD_CONTEXT_H_
#define RAFTKV_SERVER_ETCD_CONTEXT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "proto/etcd/rpc.pb.h"
#include "proto/raft.pb.h"
#include "server/alarms.h"
#include "server/answer_budget.h"
#include "server/corruption_guard.h"
#include "server/etcd/authorizer.h"
#include "server/mvcc_compactor.h"
#include "server/node.h"
#include "server/state_machine.h"

namespace raftkv::server::etcd {

struct EtcdContext {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;  // this node's raft id: etcd's member id (non-zero)
  // Not owned; outlive the services.
  Node* node = nullptr;
  KvStateMachine* sm = nullptr;
  MvccCompactor* compactor = nullptr;  // Compact's physical flag waits on it
  Alarms* alarms = nullptr;            // may be null
  CorruptionGuard* corruption = nullptr;  // may be null
  // Read answers are charged to it until sent (may be null: not charged).
  AnswerBudget* answer_budget = nullptr;
  // etcd's auth checks (server/etcd/authorizer.h); null: none (every call
  // is allowed, as with auth disabled).
  const Authorizer* auth = nullptr;

  // Proposes `command` (a serialized kvpb::Command) through the log: on this
  // node while it leads, else forwarded to the leader (server/forwarding.h).
  // `done` runs exactly once, on any thread, and must not block.
  std::function<void(std::string command, absl::Time deadline, Node::WriteCallback done)> propose;
  // A membership change through the leader, from any member; blocks until
  // the leader applied it (the membership after it) or fails.
  std::function<absl::StatusOr<raftpb::ConfState>(raftpb::ConfChange cc, absl::Time deadline)>
      change_membership;
  // Each member's address (host:port) by id, as of the applied index.
  std::function<std::map<uint64_t, std::string>()> member_addresses;
  bool client_tls = false;  // member URLs are https:// (else http://)
  // etcd's quota check for a write that adds about `cost` bytes, before it is
  // proposed (server/etcd/space_quota.h): OK or ErrNoSpace. Empty: none.
  std::function<absl::Status(uint64_t cost)> admit_write;

  // A call without a deadline of its own gets this one.
  absl::Duration default_deadline = absl::Seconds(10);
  int64_t max_txn_ops = 128;                  // --max_txn_ops
  size_t max_request_bytes = (3 << 20) / 2;   // --max_request_bytes (1.5 MiB)
  // Keys and values one Range may gather (--max_range_bytes): past it the
  // read fails rather than hold more memory.
  int64_t max_range_bytes = int64_t{128} << 20;

  absl::Status Validate() const;
};

// Sets the header every etcd answer carries: cluster id, member id, the raft
// term now and `revision` (the store's revision the answer reflects).
void FillHeader(const EtcdContext& c, int64_t revision, etcdserverpb::ResponseHeader* h);

// A failure of the node (Node::Propose, Node::Read, membership changes) as
// etcd's server answers it: not leader / no leader -> ErrNoLeader, a write
// whose leader changed -> ErrLeaderChanged, deadline -> ErrTimeout, shutting
// down -> ErrStopped, no space -> ErrNoSpace, corrupt data -> ErrCorrupt.
// etcd's own errors and OK pass unchanged; others keep their code and text.
absl::Status FromNode(const absl::Status& s);

// OK, or why the caller may not make an admin call (root only once auth is
// enabled).
absl::Status CheckAdmin(const EtcdContext& c, const grpc::ServerContextBase& ctx);

// `s` as a gRPC status (same code and message).
grpc::Status ToGrpc(const absl::Status& s);

// The deadline of a call: its own, or default_deadline from now if it has
// none (or one more than an hour away).
absl::Time DeadlineOf(const EtcdContext& c, std::chrono::system_clock::time_point call_deadline);

}  // namespace raftkv::server::etcd

#endif  // RAFTKV_SERVER_ETCD_CONTEXT_H_
