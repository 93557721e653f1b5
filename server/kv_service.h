// The client-facing gRPC services: KV (callback API, so a request waiting
// for its entry to commit holds no thread) and Admin.
//
// A KV request arrives either as a unary call or as one op of a Batch
// stream (kv_batch.cc). Both go through the same steps: parsing, validation,
// the leader check (Admit), the deadline, the op itself (Do*), and on the
// way out the NOT_LEADER hint (ExplainNotLeader) and logging.
//
// Every KV and Admin method takes its request as raw bytes (gRPC's raw
// method variants) and parses it with server/raw_message.h, so a body that
// is not a valid message gets INVALID_ARGUMENT saying so (gRPC alone answers
// INTERNAL or UNIMPLEMENTED with no message). A method added to kv.proto or
// admin.proto must be raw here too (tests/bad_input_test checks them all).
#ifndef RAFTKV_SERVER_KV_SERVICE_H_
#define RAFTKV_SERVER_KV_SERVICE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/time/time.h"
#include "proto/admin.grpc.pb.h"
#include "proto/kv.grpc.pb.h"
#include "server/alarms.h"
#include "server/answer_budget.h"
#include "server/corruption_guard.h"
#include "server/node.h"
#include "server/state_machine.h"
#include "server/transport.h"

namespace raftkv::server {

struct ServiceOptions {
  uint64_t node_id = 0;
  uint64_t cluster_id = 0;
  std::string address;                 // this node's
  size_t max_value_bytes = 1 << 20;
  // The gRPC server's receive limit (ServerBuilder::SetMaxReceiveMessageSize):
  // reported in Admin.Status with max_value_bytes, for clients to check.
  size_t max_request_bytes = 64 << 20;
  absl::Duration default_deadline = absl::Seconds(10);
  // Address of a node id, for NOT_LEADER hints ("" if unknown).
  std::function<std::string(uint64_t)> address_of;
  // Snapshot transfers in progress, for status (may be empty).
  std::function<std::vector<std::string>()> snapshot_transfers;
  // True once this node learned from the leader that it was removed (a
  // removed node may never receive the entry that removes it). May be empty.
  std::function<bool()> removed;
  // The test-only fault layer (--enable_fault_injection); null: SetFaults
  // is refused.
  FaultInjector* faults = nullptr;
  uint64_t incarnation = 0;  // this node's
  // Incarnations of the peers this node heard from, and those recorded in
  // the replicated state. May be empty.
  std::function<std::map<uint64_t, uint64_t>()> peer_incarnations;
  std::function<std::map<uint64_t, uint64_t>()> recorded_incarnations;
  // Peer traffic refused, by reason (server/peer_refusals.h). May be empty.
  std::function<std::map<std::string, uint64_t>()> peer_refusals;
  // This member's latest state hashes, (index, hash). May be empty.
  std::function<std::vector<std::pair<uint64_t, uint64_t>>()> state_hashes;
  // Whether a caller may use the Admin calls that change the cluster or
  // read all of its data (all but Status): with etcd's auth on, only root
  // (server/etcd/authorizer.h). Empty: everyone.
  std::function<absl::Status(const grpc::ServerContextBase&)> admit_admin;
  // The node's alarms (not owned; outlives the services). Null: none.
  Alarms* alarms = nullptr;
  // Reads that meet corrupt data raise CORRUPT through it, and while CORRUPT
  // is raised KV reads are refused (server/corruption_guard.h). Not owned;
  // null: neither.
  CorruptionGuard* corruption = nullptr;
  // Memory held in answers not yet sent (server/answer_budget.h).
  AnswerBudgetOptions answer_budget;
};

// The KV service with every method raw (callback API, bytes in and out).
using RawKvService = kvpb::KV::WithRawCallbackMethod_Put<
    kvpb::KV::WithRawCallbackMethod_Get<kvpb::KV::WithRawCallbackMethod_Delete<
        kvpb::KV::WithRawCallbackMethod_Scan<kvpb::KV::WithRawCallbackMethod_CompareAndSwap<
            kvpb::KV::WithRawCallbackMethod_Batch<kvpb::KV::Service>>>>>>;

class KvService final : public RawKvService {
 public:
  // `node` and `sm` are not owned and must outlive the service.
  // REQUIRES: options.answer_budget.Validate().ok().
  KvService(ServiceOptions options, Node* node, KvStateMachine* sm)
      : options_(std::move(options)), node_(node), sm_(sm), budget_(options_.answer_budget) {}

  // Each parses its request (a kvpb::PutRequest, ...) from `req` and
  // answers the response's bytes in `resp`.
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                   grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* Scan(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                 grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* CompareAndSwap(grpc::CallbackServerContext* ctx,
                                           const grpc::ByteBuffer* req,
                                           grpc::ByteBuffer* resp) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Batch(
      grpc::CallbackServerContext* ctx) override;

  AnswerBudget* answer_budget() { return &budget_; }

 private:
  friend class BatchReactor;
  class ReadCall;  // a unary Get or Scan under the answer budget
  enum class OpKind { kWrite, kRead };
  // Called once, from any thread, with the op's outcome.
  using OpDone = std::function<void(absl::Status)>;

  // The op's deadline: the stream's or call's (the server default if none,
  // or if more than an hour away), capped at timeout_ms from now if > 0.
  absl::Time DeadlineFrom(std::chrono::system_clock::time_point call_deadline,
                          uint32_t timeout_ms) const;
  // `valid`, or NOT_LEADER for a write reaching a follower, or DATA_LOSS
  // for a read reaching a node whose data is corrupt.
  absl::Status Admit(OpKind kind, absl::Status valid) const;
  // A read's outcome `s`, with corruption reported (CorruptionGuard::Check).
  absl::Status CheckRead(absl::Status s) const;
  // Rewrites a "not leader" status to name the leader, and sets its id and
  // address (0 and "" if unknown); returns any other status unchanged.
  absl::Status ExplainNotLeader(absl::Status s, uint64_t* leader_id,
                                std::string* leader_addr) const;
  void LogOutcome(const char* method, grpc::CallbackServerContext* ctx, const absl::Status& s,
                  absl::Time start) const;
  // A unary call: parses `in` as a Req, validates it (`validate(req)`),
  // admits it, runs `body(req, &resp, deadline, finish)` and answers resp's
  // bytes in `out`.
  template <typename Req, typename Resp, typename Validate, typename Body>
  grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* ctx, const char* method,
                                     OpKind kind, const grpc::ByteBuffer* in,
                                     grpc::ByteBuffer* out, Validate validate, Body body);

  // The ops, once admitted. REQUIRES: `req` and `resp` stay valid until
  // `finish` has run; `finish` runs exactly once (on the node's loop or
  // read thread, or on the calling thread).
  void DoPut(const kvpb::PutRequest& req, kvpb::PutResponse* resp, absl::Time deadline,
             OpDone finish);
  void DoDelete(const kvpb::DeleteRequest& req, kvpb::DeleteResponse* resp, absl::Time deadline,
                OpDone finish);
  void DoCas(const kvpb::CasRequest& req, kvpb::CasResponse* resp, absl::Time deadline,
             OpDone finish);
  void DoGet(const kvpb::GetRequest* req, kvpb::GetResponse* resp, absl::Time deadline,
             OpDone finish);
  void DoScan(const kvpb::ScanRequest* req, kvpb::ScanResponse* resp, absl::Time deadline,
              OpDone finish);
  // One op of a Batch stream: validates, admits and runs it, the answer's
  // payload going into `out`. Same REQUIRES as the Do* methods.
  void RunOp(const kvpb::RequestOp& op, kvpb::ResponseOp* out, absl::Time deadline,
             OpDone finish);
  template <typename Resp, typename Fill>
  void ProposeWrite(const kvpb::Command& cmd, absl::Time deadline, OpDone finish, Resp* resp,
                    Fill fill);

  const ServiceOptions options_;
  Node* const node_;
  KvStateMachine* const sm_;
  AnswerBudget budget_;  // answers of Batch streams and unary reads
};

class AdminService final : public adminpb::Admin::Service {
 public:
  // Makes every method raw: each reads its request's bytes, parses them
  // (INVALID_ARGUMENT if they do not parse) and calls the method below.
  AdminService(ServiceOptions options, Node* node, KvStateMachine* sm);

  grpc::Status Status(grpc::ServerContext* ctx, const adminpb::StatusRequest* req,
                      adminpb::StatusResponse* resp) override;
  // Membership changes and leadership transfer: served by the leader; each
  // returns once the change is applied here (or the transfer is done).
  grpc::Status AddMember(grpc::ServerContext* ctx, const adminpb::AddMemberRequest* req,
                         adminpb::AddMemberResponse* resp) override;
  grpc::Status PromoteMember(grpc::ServerContext* ctx, const adminpb::PromoteMemberRequest* req,
                             adminpb::PromoteMemberResponse* resp) override;
  grpc::Status RemoveMember(grpc::ServerContext* ctx, const adminpb::RemoveMemberRequest* req,
                            adminpb::RemoveMemberResponse* resp) override;
  grpc::Status TransferLeader(grpc::ServerContext* ctx,
                              const adminpb::TransferLeaderRequest* req,
                              adminpb::TransferLeaderResponse* resp) override;
  // Test-only: replaces the fault table of the peer transport.
  grpc::Status SetFaults(grpc::ServerContext* ctx, const adminpb::SetFaultsRequest* req,
                         adminpb::SetFaultsResponse* resp) override;

 private:
  // Serves `method` (of admin.proto's Admin service) as raw bytes through
  // `handler` (a sync, streamed-unary handler on gRPC's sync threads).
  template <typename Req, typename Resp>
  void MarkRaw(const char* method,
               grpc::Status (AdminService::*handler)(grpc::ServerContext*, const Req*, Resp*));
  // Serves Admin.Snapshot (server-streaming) as raw bytes: parses its
  // request, then streams a backup of this member (server/backup_source.h)
  // on the sync thread that took the call.
  void MarkRawSnapshot();
  absl::Time DeadlineOf(grpc::ServerContext* ctx) const;
  absl::StatusOr<raftpb::ConfState> ChangeMembership(grpc::ServerContext* ctx,
                                                     raftpb::ConfChange cc);
  grpc::Status Answer(grpc::ServerContext* ctx, absl::Status s);

  const ServiceOptions options_;
  Node* const node_;
  KvStateMachine* const sm_;
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_KV_SERVICE_H_
