#include "server/kv_service.h"

#include <unistd.h>

#include <chrono>
#include <memory>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "glog/logging.h"
#include "raft/membership.h"
#include "server/backup_source.h"
#include "server/await_node.h"
#include "server/raw_message.h"

namespace raftkv::server {
namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbers.
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

absl::Status ValidateKey(const std::string& key) {
  if (key.empty()) return absl::InvalidArgumentError("key must not be empty");
  if (key.size() > Limits::kMaxKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("key of ", key.size(),
                                                   " bytes exceeds the limit of ",
                                                   Limits::kMaxKeyBytes));
  }
  return absl::OkStatus();
}

absl::Status ValidateHeader(const kvpb::WriteHeader& h) {
  if (h.client_id() != 0 && h.seq() == 0) {
    return absl::InvalidArgumentError("a write with a client id needs a sequence number > 0");
  }
  if (h.first_incomplete() > h.seq()) {
    return absl::InvalidArgumentError("first_incomplete must not exceed seq");
  }
  return absl::OkStatus();
}

absl::Status ValidatePut(const kvpb::PutRequest& req, size_t max_value_bytes) {
  absl::Status valid = ValidateKey(req.key());
  if (valid.ok()) valid = ValidateHeader(req.header());
  if (valid.ok() && req.value().size() > max_value_bytes) {
    valid = absl::InvalidArgumentError(absl::StrCat(
        "value of ", req.value().size(), " bytes exceeds --max_value_bytes=", max_value_bytes));
  }
  return valid;
}

absl::Status ValidateDelete(const kvpb::DeleteRequest& req) {
  absl::Status valid = ValidateKey(req.key());
  if (valid.ok()) valid = ValidateHeader(req.header());
  return valid;
}

absl::Status ValidateCas(const kvpb::CasRequest& req, size_t max_value_bytes) {
  absl::Status valid = ValidateKey(req.key());
  if (valid.ok()) valid = ValidateHeader(req.header());
  if (valid.ok() && req.new_value().size() > max_value_bytes) {
    valid = absl::InvalidArgumentError(absl::StrCat("value of ", req.new_value().size(),
                                                    " bytes exceeds --max_value_bytes=",
                                                    max_value_bytes));
  }
  if (valid.ok() && req.expected_case() == kvpb::CasRequest::EXPECTED_NOT_SET) {
    valid = absl::InvalidArgumentError(
        "compare-and-swap needs expected_value or expected_version");
  }
  return valid;
}

absl::Status ValidateScan(const kvpb::ScanRequest& req) {
  for (const auto& [name, field] :
       {std::pair<const char*, const std::string*>{"prefix", &req.prefix()},
        {"start_after", &req.start_after()}}) {
    if (field->size() > Limits::kMaxKeyBytes) {
      return absl::InvalidArgumentError(absl::StrCat(name, " of ", field->size(),
                                                     " bytes exceeds the limit of ",
                                                     Limits::kMaxKeyBytes));
    }
  }
  return absl::OkStatus();
}

// HOST:PORT, the port a number in 1..65535.
absl::Status ValidateAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size() ||
      address.find_first_not_of("0123456789", colon + 1) != std::string::npos ||
      !absl::SimpleAtoi(absl::string_view(address).substr(colon + 1), &port) || port == 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address must be HOST:PORT, got \"", absl::CHexEscape(address), "\""));
  }
  return absl::OkStatus();
}

template <typename Resp>
void FillHeader(Node* node, KvStateMachine* sm, uint64_t id, bool serializable, Resp* resp,
                uint64_t applied = 0) {
  kvpb::ResponseHeader* h = resp->mutable_header();
  h->set_node_id(id);
  h->set_term(node->term());
  h->set_applied_index(applied != 0 ? applied : sm->applied_index());
  h->set_serializable(serializable);
}

// A request's deadline: the call's (`fallback` from now if it has none, or
// one more than an hour away), capped at timeout_ms from now if > 0.
absl::Time RequestDeadline(std::chrono::system_clock::time_point call_deadline,
                           uint32_t timeout_ms, absl::Duration fallback) {
  const absl::Time now = absl::Now();
  absl::Time deadline = absl::FromChrono(call_deadline);
  if (deadline == absl::InfiniteFuture() || deadline > now + absl::Hours(1)) {
    deadline = now + fallback;
  }
  if (timeout_ms > 0) deadline = std::min(deadline, now + absl::Milliseconds(timeout_ms));
  return deadline;
}

// If `s` is a "not leader" error: rewrites it to name the leader, sets the
// leader's id and address (0 and "" if unknown) and returns true.
bool ExplainNotLeader(Node* node, const ServiceOptions& options, absl::Status* s,
                      uint64_t* leader_id, std::string* leader_addr) {
  if (s->code() != absl::StatusCode::kFailedPrecondition ||
      !absl::StartsWith(s->message(), "not leader")) {
    return false;
  }
  *leader_id = node->leader();
  *leader_addr = *leader_id == 0 ? "" : options.address_of(*leader_id);
  *s = absl::FailedPreconditionError(
      *leader_id == 0
          ? "not leader; no leader is known (election in progress?)"
          : absl::StrCat("not leader; leader is node ", *leader_id, " at ", *leader_addr));
  return true;
}

// ExplainNotLeader for a unary call: the hint goes into the trailing
// metadata (proto/kv.proto).
absl::Status WithLeaderHint(Node* node, const ServiceOptions& options,
                            grpc::ServerContextBase* ctx, absl::Status s) {
  uint64_t leader = 0;
  std::string addr;
  if (ExplainNotLeader(node, options, &s, &leader, &addr)) {
    ctx->AddTrailingMetadata("raftkv-leader-id", absl::StrCat(leader));
    ctx->AddTrailingMetadata("raftkv-leader-addr", addr);
  }
  return s;
}

}  // namespace

absl::Time KvService::DeadlineFrom(std::chrono::system_clock::time_point stream_deadline,
                                   uint32_t timeout_ms) const {
  return RequestDeadline(stream_deadline, timeout_ms, options_.default_deadline);
}

absl::Status KvService::Admit(OpKind kind, absl::Status valid) const {
  if (!valid.ok()) return valid;
  // etcd's auth on: this API has no credentials (writes are refused at
  // apply as well, server/state_machine.h).
  if (sm_->etcd_auth().enabled()) {
    return absl::PermissionDeniedError(
        "etcd's auth is enabled: raftkv's native API has no credentials; use etcd's API "
        "with a user");
  }
  if (kind == OpKind::kWrite && !node_->is_leader()) {
    return absl::FailedPreconditionError(absl::StrCat("not leader; leader is ", node_->leader()));
  }
  if (kind == OpKind::kRead && options_.corruption != nullptr) {
    return options_.corruption->AdmitRead();
  }
  return absl::OkStatus();
}

absl::Status KvService::CheckRead(absl::Status s) const {
  if (s.ok() || options_.corruption == nullptr) return s;
  return options_.corruption->Check(s);
}

absl::Status KvService::ExplainNotLeader(absl::Status s, uint64_t* leader_id,
                                         std::string* leader_addr) const {
  server::ExplainNotLeader(node_, options_, &s, leader_id, leader_addr);
  return s;
}

void KvService::LogOutcome(const char* method, grpc::CallbackServerContext* ctx,
                           const absl::Status& s, absl::Time start) const {
  VLOG(1) << method << " from " << ctx->peer() << ": " << s << " in "
          << absl::ToDoubleMilliseconds(absl::Now() - start) << " ms";
  LOG_IF(WARNING, s.code() == absl::StatusCode::kInternal) << method << ": " << s;
  if (s.code() == absl::StatusCode::kDataLoss) {
    // The first is logged loudly by the CorruptionGuard; then every read is
    // (its counter is shared by all threads: off the path of good answers).
    LOG_EVERY_N(WARNING, 1000) << method << ": " << s << " (every 1000th such answer logged)";
  }
}

// A unary call: parses and admits it, runs the op, and finishes the reactor
// with the op's status (NOT_LEADER hints in the trailing metadata) and, on
// OK, the response's bytes.
template <typename Req, typename Resp, typename Validate, typename Body>
grpc::ServerUnaryReactor* KvService::RunUnary(grpc::CallbackServerContext* ctx,
                                              const char* method, OpKind kind,
                                              const grpc::ByteBuffer* in, grpc::ByteBuffer* out,
                                              Validate validate, Body body) {
  // The request and response live until the op has finished.
  struct Call {
    Req req;
    Resp resp;
  };
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const absl::Time start = absl::Now();
  Call* call = new Call;
  OpDone finish = [this, ctx, reactor, method, start, call, out](absl::Status s) {
    s = WithLeaderHint(node_, options_, ctx, std::move(s));
    if (s.ok()) s = SerializeResponse(call->resp, out);
    delete call;
    LogOutcome(method, ctx, s, start);
    reactor->Finish(ToGrpc(s));
  };
  absl::Status admitted = ParseRequest(*in, &call->req);
  if (admitted.ok()) admitted = Admit(kind, validate(call->req));
  if (!admitted.ok()) {
    finish(std::move(admitted));
  } else {
    body(call->req, &call->resp, DeadlineFrom(ctx->deadline(), 0), std::move(finish));
  }
  return reactor;
}

// Proposes `cmd`; on success `fill` copies the result into the response.
template <typename Resp, typename Fill>
void KvService::ProposeWrite(const kvpb::Command& cmd, absl::Time deadline, OpDone finish,
                             Resp* resp, Fill fill) {
  node_->Propose(cmd.SerializeAsString(), deadline,
                 [this, finish = std::move(finish), resp, fill](
                     absl::StatusOr<kvpb::WriteResult> r) {
                   if (!r.ok()) return finish(r.status());
                   fill(*r);
                   FillHeader(node_, sm_, options_.node_id, false, resp);
                   finish(absl::OkStatus());
                 });
}

void KvService::DoPut(const kvpb::PutRequest& req, kvpb::PutResponse* resp, absl::Time deadline,
                      OpDone finish) {
  kvpb::Command cmd;
  *cmd.mutable_header() = req.header();
  cmd.mutable_put()->set_key(req.key());
  cmd.mutable_put()->set_value(req.value());
  ProposeWrite(cmd, deadline, std::move(finish), resp,
               [resp](const kvpb::WriteResult& r) { resp->set_version(r.put().version()); });
}

void KvService::DoDelete(const kvpb::DeleteRequest& req, kvpb::DeleteResponse* resp,
                         absl::Time deadline, OpDone finish) {
  kvpb::Command cmd;
  *cmd.mutable_header() = req.header();
  cmd.mutable_delete_()->set_key(req.key());
  ProposeWrite(cmd, deadline, std::move(finish), resp,
               [resp](const kvpb::WriteResult& r) { resp->set_deleted(r.delete_().deleted()); });
}

void KvService::DoCas(const kvpb::CasRequest& req, kvpb::CasResponse* resp, absl::Time deadline,
                      OpDone finish) {
  kvpb::Command cmd;
  *cmd.mutable_header() = req.header();
  *cmd.mutable_cas() = req;
  cmd.mutable_cas()->clear_header();
  ProposeWrite(cmd, deadline, std::move(finish), resp,
               [resp](const kvpb::WriteResult& r) { *resp = r.cas(); });
}

// `req` and `resp` must stay valid until `finish` runs.
void KvService::DoGet(const kvpb::GetRequest* req, kvpb::GetResponse* resp, absl::Time deadline,
                      OpDone finish) {
  const bool serializable = req->serializable();
  auto read = [this, req, resp, serializable](const OpDone& finish) {
    // Again: a linearizable read waited, and the scrub may have found
    // corruption meanwhile.
    if (absl::Status refused = Admit(OpKind::kRead, absl::OkStatus()); !refused.ok()) {
      return finish(refused);
    }
    uint64_t applied = 0;  // of the state read: sm_->applied_index() may lag the value
    auto kv = sm_->Get(req->key(), &applied);
    if (kv.ok()) {
      resp->set_found(true);
      *resp->mutable_kv() = std::move(*kv);
    } else if (kv.status().code() != absl::StatusCode::kNotFound) {
      return finish(CheckRead(kv.status()));
    }
    FillHeader(node_, sm_, options_.node_id, serializable, resp, applied);
    finish(absl::OkStatus());
  };
  if (serializable) return read(finish);
  node_->Read(deadline, [read, finish = std::move(finish)](absl::Status s) {
    if (!s.ok()) return finish(s);
    read(finish);
  });
}

// `req` and `resp` must stay valid until `finish` runs.
void KvService::DoScan(const kvpb::ScanRequest* req, kvpb::ScanResponse* resp,
                       absl::Time deadline, OpDone finish) {
  const bool serializable = req->serializable();
  auto read = [this, req, resp, serializable](const OpDone& finish) {
    if (absl::Status refused = Admit(OpKind::kRead, absl::OkStatus()); !refused.ok()) {
      return finish(refused);
    }
    const size_t limit = req->limit() == 0 ? 1000 : std::min<size_t>(req->limit(), 10000);
    absl::StatusOr<ScanResult> r = sm_->Scan(req->prefix(), req->start_after(), limit);
    if (!r.ok()) return finish(CheckRead(r.status()));
    for (auto& kv : r->kvs) *resp->add_kvs() = std::move(kv);
    resp->set_more(r->more);
    FillHeader(node_, sm_, options_.node_id, serializable, resp, r->applied_index);
    finish(absl::OkStatus());
  };
  if (serializable) return read(finish);
  node_->Read(deadline, [read, finish = std::move(finish)](absl::Status s) {
    if (!s.ok()) return finish(s);
    read(finish);
  });
}

void KvService::RunOp(const kvpb::RequestOp& op, kvpb::ResponseOp* out, absl::Time deadline,
                      OpDone finish) {
  absl::Status admitted;
  switch (op.op_case()) {
    case kvpb::RequestOp::kPut:
      admitted = Admit(OpKind::kWrite, ValidatePut(op.put(), options_.max_value_bytes));
      if (admitted.ok()) return DoPut(op.put(), out->mutable_put(), deadline, std::move(finish));
      break;
    case kvpb::RequestOp::kDelete:
      admitted = Admit(OpKind::kWrite, ValidateDelete(op.delete_()));
      if (admitted.ok()) {
        return DoDelete(op.delete_(), out->mutable_delete_(), deadline, std::move(finish));
      }
      break;
    case kvpb::RequestOp::kCas:
      admitted = Admit(OpKind::kWrite, ValidateCas(op.cas(), options_.max_value_bytes));
      if (admitted.ok()) return DoCas(op.cas(), out->mutable_cas(), deadline, std::move(finish));
      break;
    case kvpb::RequestOp::kGet:
      admitted = Admit(OpKind::kRead, ValidateKey(op.get().key()));
      if (admitted.ok()) return DoGet(&op.get(), out->mutable_get(), deadline, std::move(finish));
      break;
    case kvpb::RequestOp::kScan:
      admitted = Admit(OpKind::kRead, ValidateScan(op.scan()));
      if (admitted.ok()) {
        return DoScan(&op.scan(), out->mutable_scan(), deadline, std::move(finish));
      }
      break;
    case kvpb::RequestOp::OP_NOT_SET:
      admitted = absl::InvalidArgumentError("op has none of put, get, delete, scan, cas");
      break;
  }
  finish(std::move(admitted));
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* ctx,
                                         const grpc::ByteBuffer* req, grpc::ByteBuffer* resp) {
  return RunUnary<kvpb::PutRequest, kvpb::PutResponse>(
      ctx, "Put", OpKind::kWrite, req, resp,
      [this](const kvpb::PutRequest& r) { return ValidatePut(r, options_.max_value_bytes); },
      [this](const kvpb::PutRequest& r, kvpb::PutResponse* out, absl::Time deadline,
             OpDone finish) { DoPut(r, out, deadline, std::move(finish)); });
}

grpc::ServerUnaryReactor* KvService::Delete(grpc::CallbackServerContext* ctx,
                                            const grpc::ByteBuffer* req, grpc::ByteBuffer* resp) {
  return RunUnary<kvpb::DeleteRequest, kvpb::DeleteResponse>(
      ctx, "Delete", OpKind::kWrite, req, resp,
      [](const kvpb::DeleteRequest& r) { return ValidateDelete(r); },
      [this](const kvpb::DeleteRequest& r, kvpb::DeleteResponse* out, absl::Time deadline,
             OpDone finish) { DoDelete(r, out, deadline, std::move(finish)); });
}

grpc::ServerUnaryReactor* KvService::CompareAndSwap(grpc::CallbackServerContext* ctx,
                                                    const grpc::ByteBuffer* req,
                                                    grpc::ByteBuffer* resp) {
  return RunUnary<kvpb::CasRequest, kvpb::CasResponse>(
      ctx, "CompareAndSwap", OpKind::kWrite, req, resp,
      [this](const kvpb::CasRequest& r) { return ValidateCas(r, options_.max_value_bytes); },
      [this](const kvpb::CasRequest& r, kvpb::CasResponse* out, absl::Time deadline,
             OpDone finish) { DoCas(r, out, deadline, std::move(finish)); });
}

// A unary read under the answer budget (server/answer_budget.h), as an op
// of a Batch stream: it reserves kMinReserve to start (waiting for a grant
// while the budget is full), its answer is charged until gRPC has sent it
// (OnDone), and an answer that does not fit is dropped and read again once
// its size is granted. It owns the parsed request and the response, and
// answers the response's bytes in `out`. Deletes itself in OnDone.
class KvService::ReadCall final : public grpc::ServerUnaryReactor {
 public:
  using Body = std::function<void(absl::Time deadline, OpDone finish)>;
  static constexpr size_t kMinReserve = 8 << 10;

  ReadCall(KvService* svc, grpc::CallbackServerContext* ctx, const char* method,
           std::unique_ptr<google::protobuf::Message> req,
           std::unique_ptr<google::protobuf::Message> resp, grpc::ByteBuffer* out, Body body)
      : svc_(svc),
        ctx_(ctx),
        method_(method),
        req_(std::move(req)),
        resp_(std::move(resp)),
        out_(out),
        body_(std::move(body)),
        start_(absl::Now()),
        deadline_(svc->DeadlineFrom(ctx->deadline(), 0)) {}

  // Starts the read once kMinReserve is granted; answers `admitted` at once
  // if it is not OK (a request that did not parse or was refused).
  void Start(absl::Status admitted) {
    if (!admitted.ok()) return Done(std::move(admitted));
    Reserve(kMinReserve);
  }

  void OnCancel() override {
    bool finish = false;
    {
      absl::MutexLock l(&mu_);
      if (waiting_ && svc_->budget_.Cancel(ticket_)) {
        waiting_ = false;
        finish = true;
      }
    }
    if (finish) Finish(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    svc_->budget_.Release(held_);  // sent, or never will be
    delete this;
  }

 private:
  void Reserve(size_t bytes) {
    bool now;
    {
      absl::MutexLock l(&mu_);
      now = svc_->budget_.AcquireOrWait(bytes, [this, bytes] { Granted(bytes); }, &ticket_);
      waiting_ = !now;
    }
    if (now) Run(bytes);
  }
  void Granted(size_t bytes) {
    {
      absl::MutexLock l(&mu_);
      waiting_ = false;
    }
    Run(bytes);
  }
  void Run(size_t reserved) {
    held_ = reserved;
    body_(deadline_, [this](absl::Status s) { Done(std::move(s)); });
  }
  void Done(absl::Status s) {
    if (s.ok()) {
      const size_t bytes = 2 * resp_->ByteSizeLong();
      if (bytes > held_) {
        if (!svc_->budget_.TryAcquire(bytes - held_)) {
          // Read again once this size is granted.
          svc_->budget_.Release(std::exchange(held_, 0));
          resp_->Clear();
          return Reserve(bytes);
        }
        held_ = bytes;
      }
    }
    s = WithLeaderHint(svc_->node_, svc_->options_, ctx_, std::move(s));
    if (s.ok()) s = SerializeResponse(*resp_, out_);
    svc_->LogOutcome(method_, ctx_, s, start_);
    Finish(ToGrpc(s));
  }

  KvService* const svc_;
  grpc::CallbackServerContext* const ctx_;
  const char* const method_;
  const std::unique_ptr<google::protobuf::Message> req_;  // read by body_
  const std::unique_ptr<google::protobuf::Message> resp_;
  grpc::ByteBuffer* const out_;
  const Body body_;
  const absl::Time start_;
  const absl::Time deadline_;
  // Of the budget; touched by one step at a time (reserve, run, done).
  size_t held_ = 0;
  absl::Mutex mu_;
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t ticket_ ABSL_GUARDED_BY(mu_) = 0;
};

grpc::ServerUnaryReactor* KvService::Get(grpc::CallbackServerContext* ctx,
                                         const grpc::ByteBuffer* req, grpc::ByteBuffer* resp) {
  auto r = std::make_unique<kvpb::GetRequest>();
  auto out = std::make_unique<kvpb::GetResponse>();
  absl::Status admitted = ParseRequest(*req, r.get());
  if (admitted.ok()) admitted = Admit(OpKind::kRead, ValidateKey(r->key()));
  ReadCall::Body body = [this, r = r.get(), out = out.get()](absl::Time deadline,
                                                              OpDone finish) {
    DoGet(r, out, deadline, std::move(finish));
  };
  auto* call = new ReadCall(this, ctx, "Get", std::move(r), std::move(out), resp, std::move(body));
  call->Start(std::move(admitted));
  return call;
}

grpc::ServerUnaryReactor* KvService::Scan(grpc::CallbackServerContext* ctx,
                                          const grpc::ByteBuffer* req, grpc::ByteBuffer* resp) {
  auto r = std::make_unique<kvpb::ScanRequest>();
  auto out = std::make_unique<kvpb::ScanResponse>();
  absl::Status admitted = ParseRequest(*req, r.get());
  if (admitted.ok()) admitted = Admit(OpKind::kRead, ValidateScan(*r));
  ReadCall::Body body = [this, r = r.get(), out = out.get()](absl::Time deadline,
                                                              OpDone finish) {
    DoScan(r, out, deadline, std::move(finish));
  };
  auto* call = new ReadCall(this, ctx, "Scan", std::move(r), std::move(out), resp, std::move(body));
  call->Start(std::move(admitted));
  return call;
}

template <typename Req, typename Resp>
void AdminService::MarkRaw(const char* method, grpc::Status (AdminService::*handler)(
                                                   grpc::ServerContext*, const Req*, Resp*)) {
  // The generated Service numbers its methods in the order of admin.proto.
  const google::protobuf::MethodDescriptor* m =
      adminpb::StatusRequest::descriptor()->file()->FindServiceByName("Admin")->FindMethodByName(
          method);
  CHECK(m != nullptr) << "no method Admin." << method;
  using Streamer = grpc::ServerUnaryStreamer<grpc::ByteBuffer, grpc::ByteBuffer>;
  MarkMethodStreamed(
      m->index(),
      new grpc::internal::StreamedUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
          [this, handler, method](grpc::ServerContext* ctx, Streamer* stream) {
            grpc::ByteBuffer in;
            Req req;
            absl::Status parsed = stream->Read(&in)
                                      ? ParseRequest(in, &req)
                                      : absl::InvalidArgumentError("request has no body");
            if (!parsed.ok()) return Answer(ctx, std::move(parsed));
            if (options_.admit_admin && absl::string_view(method) != "Status") {
              if (absl::Status a = options_.admit_admin(*ctx); !a.ok()) return Answer(ctx, a);
            }
            Resp resp;
            grpc::Status s = (this->*handler)(ctx, &req, &resp);
            if (!s.ok()) return s;
            grpc::ByteBuffer out;
            if (absl::Status ser = SerializeResponse(resp, &out); !ser.ok()) return ToGrpc(ser);
            stream->Write(out);  // false: the call is gone, and the status goes nowhere
            return grpc::Status::OK;
          }));
}

AdminService::AdminService(ServiceOptions options, Node* node, KvStateMachine* sm)
    : options_(std::move(options)), node_(node), sm_(sm) {
  MarkRaw("Status", &AdminService::Status);
  MarkRaw("AddMember", &AdminService::AddMember);
  MarkRaw("PromoteMember", &AdminService::PromoteMember);
  MarkRaw("RemoveMember", &AdminService::RemoveMember);
  MarkRaw("TransferLeader", &AdminService::TransferLeader);
  MarkRaw("SetFaults", &AdminService::SetFaults);
  MarkRawSnapshot();
}

void AdminService::MarkRawSnapshot() {
  const google::protobuf::MethodDescriptor* m =
      adminpb::StatusRequest::descriptor()->file()->FindServiceByName("Admin")->FindMethodByName(
          "Snapshot");
  CHECK(m != nullptr) << "no method Admin.Snapshot";
  using Streamer = grpc::ServerSplitStreamer<grpc::ByteBuffer, grpc::ByteBuffer>;
  MarkMethodStreamed(
      m->index(),
      new grpc::internal::SplitServerStreamingHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
          [this](grpc::ServerContext* ctx, Streamer* stream) {
            grpc::ByteBuffer in;
            adminpb::SnapshotRequest req;
            absl::Status parsed = stream->Read(&in)
                                      ? ParseRequest(in, &req)
                                      : absl::InvalidArgumentError("request has no body");
            if (!parsed.ok()) return Answer(ctx, std::move(parsed));
            if (options_.admit_admin) {
              if (absl::Status a = options_.admit_admin(*ctx); !a.ok()) return Answer(ctx, a);
            }
            BackupSourceOptions bo;
            bo.cluster_id = options_.cluster_id;
            bo.member_id = options_.node_id;
            if (req.bytes_per_sec() != 0) bo.bytes_per_sec = req.bytes_per_sec();
            if (absl::Status valid = bo.Validate(); !valid.ok()) return Answer(ctx, valid);
            const absl::Time start = absl::Now();
            LOG(INFO) << "backup to " << ctx->peer() << " starting";
            auto sent = StreamBackup(*sm_, bo, [&](std::string bytes) {
              if (ctx->IsCancelled()) return false;
              adminpb::SnapshotChunk chunk;
              *chunk.mutable_data() = std::move(bytes);
              grpc::ByteBuffer out;
              return SerializeResponse(chunk, &out).ok() && stream->Write(out);
            });
            if (!sent.ok()) {
              LOG(WARNING) << "backup to " << ctx->peer() << ": " << sent.status();
              return ToGrpc(options_.corruption != nullptr ? options_.corruption->Check(sent.status())
                                                           : sent.status());
            }
            LOG(INFO) << "backup to " << ctx->peer() << " at index " << sent->applied_index
                      << ": " << sent->keys << " keys, " << sent->bytes << " bytes in "
                      << absl::Now() - start;
            return grpc::Status::OK;
          }));
}

grpc::Status AdminService::Status(grpc::ServerContext* /*ctx*/,
                                  const adminpb::StatusRequest* req,
                                  adminpb::StatusResponse* resp) {
  // Fresh, not as of the last tick: a user checks the indexes right after a
  // write.
  raft::Status st = node_->FreshRaftStatus(absl::Milliseconds(200));
  resp->set_node_id(options_.node_id);
  resp->set_address(options_.address);
  resp->set_cluster_id(options_.cluster_id);
  resp->set_incarnation(options_.incarnation);
  if (options_.peer_incarnations) {
    for (const auto& [id, inc] : options_.peer_incarnations()) {
      (*resp->mutable_peer_incarnations())[id] = inc;
    }
  }
  if (options_.recorded_incarnations) {
    for (const auto& [id, inc] : options_.recorded_incarnations()) {
      (*resp->mutable_recorded_incarnations())[id] = inc;
    }
  }
  resp->set_role(raft::RoleName(st.role));
  resp->set_term(st.term);
  resp->set_leader_id(st.leader);
  if (st.leader != 0) {
    resp->set_leader_address(st.leader == options_.node_id ? options_.address
                                                           : options_.address_of(st.leader));
  }
  resp->set_commit_index(st.commit);
  // From the same snapshot of the core as the commit index, so applied <=
  // commit always reads true.
  resp->set_applied_index(st.applied);
  resp->set_first_index(st.first_index);
  resp->set_last_index(st.last_index);
  // From the core's view too: the store's snapshot may be newer than this
  // status (installed since the last refresh).
  resp->set_snapshot_index(st.snapshot_index);
  resp->set_snapshot_term(st.snapshot_term);
  resp->set_rejected_peer_messages(st.rejected_messages);
  if (options_.peer_refusals) {
    for (const auto& [reason, n] : options_.peer_refusals()) {
      (*resp->mutable_peer_refusals())[reason] = n;
    }
  }
  for (uint64_t v : st.conf_state.voters()) resp->add_voters(v);
  for (uint64_t l : st.conf_state.learners()) resp->add_learners(l);
  for (const auto& p : st.progress) {
    adminpb::PeerProgress* pp = resp->add_progress();
    pp->set_id(p.id);
    pp->set_address(p.id == options_.node_id ? options_.address : options_.address_of(p.id));
    pp->set_voter(p.voter);
    pp->set_match(p.match);
    pp->set_next(p.next);
    pp->set_state(raft::ProgressStateName(p.state));
    pp->set_recent_active(p.recent_active);
  }
  auto add_member = [&](uint64_t id, bool voter) {
    adminpb::Member* m = resp->add_members();
    m->set_id(id);
    m->set_address(id == options_.node_id ? options_.address : options_.address_of(id));
    m->set_voter(voter);
  };
  for (uint64_t v : st.conf_state.voters()) add_member(v, true);
  for (uint64_t l : st.conf_state.learners()) add_member(l, false);
  resp->set_max_value_bytes(options_.max_value_bytes);
  resp->set_max_request_bytes(options_.max_request_bytes);
  resp->set_removed(!raft::IsMember(st.conf_state, options_.node_id) ||
                    (options_.removed && options_.removed()));
  if (options_.snapshot_transfers) {
    for (auto& t : options_.snapshot_transfers()) resp->add_snapshot_transfers(std::move(t));
  }
  if (options_.state_hashes) {
    for (const auto& [index, hash] : options_.state_hashes()) {
      adminpb::StateHash* h = resp->add_state_hashes();
      h->set_index(index);
      h->set_hash(hash);
    }
  }
  if (options_.alarms != nullptr) {
    for (auto& a : options_.alarms->Describe()) resp->add_alarms(std::move(a));
  }
  if (req->include_digest()) {
    auto d = sm_->Digest();
    if (!d.ok()) {
      return ToGrpc(options_.corruption != nullptr ? options_.corruption->Check(d.status())
                                                   : d.status());
    }
    resp->set_data_digest(d->first);
    resp->set_key_count(d->second);
  }
  return grpc::Status::OK;
}

namespace {

template <typename Resp>
void FillConf(const raftpb::ConfState& cs, Resp* resp) {
  for (uint64_t v : cs.voters()) resp->add_voters(v);
  for (uint64_t l : cs.learners()) resp->add_learners(l);
}

}  // namespace

absl::Time AdminService::DeadlineOf(grpc::ServerContext* ctx) const {
  return RequestDeadline(ctx->deadline(), 0, options_.default_deadline);
}

grpc::Status AdminService::Answer(grpc::ServerContext* ctx, absl::Status s) {
  s = WithLeaderHint(node_, options_, ctx, std::move(s));
  if (!s.ok()) LOG(INFO) << "admin request from " << ctx->peer() << ": " << s;
  return ToGrpc(s);
}

absl::StatusOr<raftpb::ConfState> AdminService::ChangeMembership(grpc::ServerContext* ctx,
                                                                 raftpb::ConfChange cc) {
  if (cc.node_id() == 0) return absl::InvalidArgumentError("node_id must not be 0");
  if (!node_->is_leader()) return absl::FailedPreconditionError("not leader");
  const absl::Time deadline = DeadlineOf(ctx);
  return AwaitNode<raftpb::ConfState>(
      deadline, [&](std::function<void(absl::StatusOr<raftpb::ConfState>)> done) {
        node_->ProposeConfChange(std::move(cc), deadline, std::move(done));
      });
}

grpc::Status AdminService::AddMember(grpc::ServerContext* ctx,
                                     const adminpb::AddMemberRequest* req,
                                     adminpb::AddMemberResponse* resp) {
  if (absl::Status valid = ValidateAddress(req->address()); !valid.ok()) {
    return Answer(ctx, std::move(valid));
  }
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_ADD_LEARNER);
  cc.set_node_id(req->node_id());
  cc.set_context(req->address());
  auto r = ChangeMembership(ctx, std::move(cc));
  if (!r.ok()) return Answer(ctx, r.status());
  FillConf(*r, resp);
  return grpc::Status::OK;
}

grpc::Status AdminService::PromoteMember(grpc::ServerContext* ctx,
                                         const adminpb::PromoteMemberRequest* req,
                                         adminpb::PromoteMemberResponse* resp) {
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_ADD_VOTER);
  cc.set_node_id(req->node_id());
  auto r = ChangeMembership(ctx, std::move(cc));
  if (!r.ok()) return Answer(ctx, r.status());
  FillConf(*r, resp);
  return grpc::Status::OK;
}

grpc::Status AdminService::RemoveMember(grpc::ServerContext* ctx,
                                        const adminpb::RemoveMemberRequest* req,
                                        adminpb::RemoveMemberResponse* resp) {
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_REMOVE_NODE);
  cc.set_node_id(req->node_id());
  auto r = ChangeMembership(ctx, std::move(cc));
  if (!r.ok()) return Answer(ctx, r.status());
  FillConf(*r, resp);
  return grpc::Status::OK;
}

grpc::Status AdminService::TransferLeader(grpc::ServerContext* ctx,
                                          const adminpb::TransferLeaderRequest* req,
                                          adminpb::TransferLeaderResponse* resp) {
  if (!node_->is_leader()) return Answer(ctx, absl::FailedPreconditionError("not leader"));
  const absl::Time deadline = DeadlineOf(ctx);
  auto r = AwaitNode<uint64_t>(deadline, [&](std::function<void(absl::StatusOr<uint64_t>)> done) {
    node_->TransferLeadership(req->node_id(), deadline, std::move(done));
  });
  if (!r.ok()) return Answer(ctx, r.status());
  resp->set_leader_id(*r);
  return grpc::Status::OK;
}

grpc::Status AdminService::SetFaults(grpc::ServerContext* ctx,
                                     const adminpb::SetFaultsRequest* req,
                                     adminpb::SetFaultsResponse* resp) {
  if (options_.faults == nullptr) {
    return Answer(ctx, absl::FailedPreconditionError(
                           "fault injection is off (start the server with "
                           "--enable_fault_injection)"));
  }
  std::map<uint64_t, PeerFaults> table;
  for (const adminpb::PeerFault& f : req->faults()) {
    if (f.peer_id() == 0 || f.peer_id() == options_.node_id) {
      return Answer(ctx, absl::InvalidArgumentError("peer_id must name another node"));
    }
    if (!(f.drop_probability() >= 0 && f.drop_probability() <= 1)) {
      return Answer(ctx, absl::InvalidArgumentError("drop_probability must be in [0, 1]"));
    }
    PeerFaults& p = table[f.peer_id()];
    p.drop_probability = f.drop_probability();
    p.delay = absl::Milliseconds(f.delay_ms());
    p.blocked = f.blocked();
  }
  LOG(WARNING) << "fault injection: " << table.size() << " peer(s) faulty"
               << (req->faults().empty() ? " (healed)" : "") << ", from " << ctx->peer();
  for (const auto& [peer, f] : table) {
    LOG(WARNING) << "fault injection: to node " << peer << ": drop " << f.drop_probability
                 << ", delay " << f.delay << (f.blocked ? ", blocked" : "");
  }
  options_.faults->Set(std::move(table));
  for (const auto& [peer, f] : options_.faults->Get()) {
    adminpb::PeerFault* out = resp->add_faults();
    out->set_peer_id(peer);
    out->set_drop_probability(f.drop_probability);
    out->set_delay_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(f.delay)));
    out->set_blocked(f.blocked);
  }
  resp->set_dropped(options_.faults->dropped());
  resp->set_delayed(options_.faults->delayed());
  resp->set_pid(getpid());
  return grpc::Status::OK;
}

}  // namespace raftkv::server
