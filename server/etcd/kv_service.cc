#include "server/etcd/kv_service.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "google/protobuf/descriptor.h"
#include "server/etcd/errors.h"
#include "server/etcd/kv_apply.h"
#include "server/await_node.h"
#include "server/raw_message.h"
#include "server/raw_unary.h"

namespace raftkv::server::etcd {
namespace {

// The request's size as etcd checks it (the marshalled request against
// --max_request_bytes).
absl::Status CheckSize(const EtcdContext& c, const grpc::ByteBuffer& in) {
  if (in.Length() > c.max_request_bytes) return EtcdError(Error::kRequestTooLarge);
  return absl::OkStatus();
}

// Parses `in` into *req and runs `check` on it; the first error of the two.
template <typename Req, typename Check>
absl::Status ParseAndCheck(const grpc::ByteBuffer& in, Req* req, Check check) {
  if (absl::Status s = ParseRequest(in, req); !s.ok()) return s;
  return check(*req);
}

// Finishes `reactor` with `r`'s message serialized into `out`, or its error.
template <typename Resp>
void Answer(grpc::ServerUnaryReactor* reactor, grpc::ByteBuffer* out,
            const absl::StatusOr<Resp>& r) {
  if (!r.ok()) {
    reactor->Finish(ToGrpc(r.status()));
    return;
  }
  absl::Status s = SerializeResponse(*r, out);
  reactor->Finish(ToGrpc(s));
}


// A unary call whose answer is charged to the answer budget until gRPC is
// done with it. Deletes itself.
class BudgetedReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit BudgetedReactor(AnswerBudget* budget) : budget_(budget) {}
  // Charges `bytes` (twice the answer: it and gRPC's copy); false if the
  // budget has no room (the caller answers an error instead).
  bool Charge(size_t bytes) {
    if (budget_ == nullptr || !budget_->TryAcquire(bytes)) return budget_ == nullptr;
    charged_ = bytes;
    return true;
  }
  void OnDone() override {
    if (charged_ > 0) budget_->Release(charged_);
    delete this;
  }

 private:
  AnswerBudget* const budget_;
  size_t charged_ = 0;
};

// Finishes a read's `reactor` with `r`, charged to the budget.
template <typename Resp>
void AnswerRead(BudgetedReactor* reactor, grpc::ByteBuffer* out, const absl::StatusOr<Resp>& r) {
  if (r.ok() && !reactor->Charge(2 * r->ByteSizeLong())) {
    reactor->Finish(ToGrpc(EtcdError(Error::kTooManyRequests)));
    return;
  }
  Answer(reactor, out, r);
}

}  // namespace

KvService::KvService(EtcdContext context) : c_(std::move(context)) {
  const absl::Status valid = c_.Validate();
  CHECK(valid.ok()) << valid;
  const google::protobuf::MethodDescriptor* m =
      etcdserverpb::CompactionRequest::descriptor()->file()->FindServiceByName("KV")->FindMethodByName(
          "Compact");
  CHECK(m != nullptr) << "no method KV.Compact";
  MarkMethodStreamed(
      m->index(),
      RawUnaryHandler<etcdserverpb::CompactionRequest, etcdserverpb::CompactionResponse>(
          [this](grpc::ServerContext* ctx, const etcdserverpb::CompactionRequest& req,
                 etcdserverpb::CompactionResponse* resp) { return Compact(ctx, req, resp); }));
}

absl::Status KvService::ReadRefusal() const {
  return c_.corruption != nullptr ? c_.corruption->AdmitRead() : absl::OkStatus();
}

absl::Status KvService::CheckRead(const absl::Status& s) const {
  return c_.corruption != nullptr ? c_.corruption->Check(s) : s;
}

template <typename Resp>
void KvService::ReadThen(bool serializable, absl::Time deadline,
                         std::function<absl::StatusOr<Resp>(const mvcc::Reader&)> read,
                         Done<Resp> done) {
  if (absl::Status refused = ReadRefusal(); !refused.ok()) {
    done(refused);
    return;
  }
  // Shared: the read may end in either callback below.
  auto answer = std::make_shared<Done<Resp>>(std::move(done));
  auto run = [this, read = std::move(read), answer]() {
    std::unique_ptr<mvcc::View> view = c_.sm->mvcc()->Read();
    absl::StatusOr<Resp> r = read(mvcc::BoundedReader(*view, c_.max_range_bytes));
    if (!r.ok()) {
      if (mvcc::IsTooLarge(r.status())) {
        (*answer)(absl::ResourceExhaustedError(absl::StrCat(
            "etcdserver: range holds more than ", c_.max_range_bytes,
            " bytes of keys and values (the server's --max_range_bytes): ask for fewer keys "
            "with a limit")));
        return;
      }
      (*answer)(CheckRead(FromMvcc(r.status())));
      return;
    }
    FillHeader(c_, view->revision(), r->mutable_header());
    (*answer)(std::move(r));
  };
  if (serializable) {
    run();
    return;
  }
  c_.node->Read(deadline, [run = std::move(run), answer](absl::Status s) {
    if (!s.ok()) {
      (*answer)(FromNode(s));
      return;
    }
    run();
  });
}

absl::StatusOr<AuthInfo> KvService::Caller(const grpc::ServerContextBase& ctx) const {
  if (c_.auth == nullptr) return AuthInfo();
  return c_.auth->Caller(ctx);
}

void KvService::Write(kvpb::EtcdWrite w, AuthInfo who, absl::Time deadline,
                      std::function<void(absl::StatusOr<kvpb::EtcdWriteResult>)> done,
                      int attempts) {
  if (c_.auth != nullptr) {
    if (absl::Status s = c_.auth->CheckWrite(who, &w); !s.ok()) {
      done(s);
      return;
    }
  }
  // Kept (not copied: a value may be large) to propose again after a refusal.
  auto cmd = std::make_shared<kvpb::Command>();
  *cmd->mutable_etcd() = std::move(w);
  c_.propose(cmd->SerializeAsString(), deadline,
             [this, cmd, who = std::move(who), deadline, done = std::move(done),
              attempts](absl::StatusOr<kvpb::WriteResult> r) mutable {
               if (!r.ok()) {
                 if (attempts > 1 && IsEtcdError(r.status(), Error::kAuthOldRevision)) {
                   // Auth changed: once this member applied the change (a
                   // ReadIndex waits for it), checked and proposed again.
                   cmd->mutable_etcd()->clear_auth();
                   c_.node->Read(deadline, [this, cmd, who = std::move(who), deadline,
                                            done = std::move(done),
                                            attempts](absl::Status s) mutable {
                     if (!s.ok()) return done(FromNode(s));
                     Write(std::move(*cmd->mutable_etcd()), std::move(who), deadline,
                           std::move(done), attempts - 1);
                   });
                   return;
                 }
                 done(FromNode(r.status()));
               } else if (!r->has_etcd()) {
                 done(absl::InternalError("an etcd write was applied without an etcd result"));
               } else {
                 done(std::move(*r->mutable_etcd()));
               }
             });
}

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* ctx,
                                           const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  auto* reactor = new BudgetedReactor(c_.answer_budget);
  auto req = std::make_shared<etcdserverpb::RangeRequest>();
  if (absl::Status s = ParseAndCheck(*in, req.get(), CheckRangeRequest); !s.ok()) {
    reactor->Finish(ToGrpc(s));
    return reactor;
  }
  absl::StatusOr<AuthInfo> who = Caller(*ctx);
  if (!who.ok()) {
    reactor->Finish(ToGrpc(who.status()));
    return reactor;
  }
  ReadThen<etcdserverpb::RangeResponse>(
      req->serializable(), DeadlineOf(c_, ctx->deadline()),
      [this, req, who = *who](const mvcc::Reader& view) -> absl::StatusOr<etcdserverpb::RangeResponse> {
        // Checked once the read is due, against the auth state of then.
        if (c_.auth != nullptr) {
          if (absl::Status s = c_.auth->CheckRead(who, *req); !s.ok()) return s;
        }
        return etcd::Range(view, *req);
      },
      [reactor, out](absl::StatusOr<etcdserverpb::RangeResponse> r) {
        AnswerRead(reactor, out, r);
      });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* ctx,
                                         const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  kvpb::EtcdWrite w;
  absl::Status s = CheckSize(c_, *in);
  if (s.ok()) s = ParseAndCheck(*in, w.mutable_put(), CheckPutRequest);
  if (s.ok() && c_.admit_write) s = c_.admit_write(in->Length());
  absl::StatusOr<AuthInfo> who = Caller(*ctx);
  if (s.ok()) s = who.status();
  if (!s.ok()) {
    reactor->Finish(ToGrpc(s));
    return reactor;
  }
  Write(std::move(w), *std::move(who), DeadlineOf(c_, ctx->deadline()),
        [this, reactor, out](absl::StatusOr<kvpb::EtcdWriteResult> r) {
          if (!r.ok()) return Answer<etcdserverpb::PutResponse>(reactor, out, r.status());
          etcdserverpb::PutResponse* resp = r->mutable_put();
          FillHeader(c_, resp->header().revision(), resp->mutable_header());
          Answer<etcdserverpb::PutResponse>(reactor, out, *resp);
        });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* ctx,
                                                 const grpc::ByteBuffer* in,
                                                 grpc::ByteBuffer* out) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  kvpb::EtcdWrite w;
  absl::Status s = CheckSize(c_, *in);
  if (s.ok()) s = ParseAndCheck(*in, w.mutable_delete_range(), CheckDeleteRangeRequest);
  absl::StatusOr<AuthInfo> who = Caller(*ctx);
  if (s.ok()) s = who.status();
  if (!s.ok()) {
    reactor->Finish(ToGrpc(s));
    return reactor;
  }
  Write(std::move(w), *std::move(who), DeadlineOf(c_, ctx->deadline()),
        [this, reactor, out](absl::StatusOr<kvpb::EtcdWriteResult> r) {
          if (!r.ok()) return Answer<etcdserverpb::DeleteRangeResponse>(reactor, out, r.status());
          etcdserverpb::DeleteRangeResponse* resp = r->mutable_delete_range();
          FillHeader(c_, resp->header().revision(), resp->mutable_header());
          Answer<etcdserverpb::DeleteRangeResponse>(reactor, out, *resp);
        });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* ctx,
                                         const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
  kvpb::EtcdWrite w;
  etcdserverpb::TxnRequest* req = w.mutable_txn();
  absl::Status s = CheckSize(c_, *in);
  if (s.ok()) {
    s = ParseAndCheck(*in, req, [this](const etcdserverpb::TxnRequest& r) {
      return CheckTxnRequest(r, c_.max_txn_ops);
    });
  }
  const absl::Time deadline = DeadlineOf(c_, ctx->deadline());
  absl::StatusOr<AuthInfo> who = Caller(*ctx);
  if (s.ok()) s = who.status();
  if (s.ok() && IsReadOnly(*req)) {
    auto* reactor = new BudgetedReactor(c_.answer_budget);
    auto shared = std::make_shared<etcdserverpb::TxnRequest>(std::move(*req));
    ReadThen<etcdserverpb::TxnResponse>(
        IsSerializable(*shared), deadline,
        [this, shared, who = *who](const mvcc::Reader& view) -> absl::StatusOr<etcdserverpb::TxnResponse> {
          if (c_.auth != nullptr) {
            if (absl::Status s = c_.auth->CheckRead(who, *shared); !s.ok()) return s;
          }
          return ReadOnlyTxn(view, *shared);
        },
        [reactor, out](absl::StatusOr<etcdserverpb::TxnResponse> r) {
          AnswerRead(reactor, out, r);
        });
    return reactor;
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (s.ok() && c_.admit_write) s = c_.admit_write(in->Length());
  if (!s.ok()) {
    reactor->Finish(ToGrpc(s));
    return reactor;
  }
  Write(std::move(w), *std::move(who), deadline,
        [this, reactor, out](absl::StatusOr<kvpb::EtcdWriteResult> r) {
    if (!r.ok()) return Answer<etcdserverpb::TxnResponse>(reactor, out, r.status());
    etcdserverpb::TxnResponse* resp = r->mutable_txn();
    FillHeader(c_, resp->header().revision(), resp->mutable_header());
    Answer<etcdserverpb::TxnResponse>(reactor, out, *resp);
  });
  return reactor;
}

grpc::Status KvService::Compact(grpc::ServerContext* ctx,
                                const etcdserverpb::CompactionRequest& req,
                                etcdserverpb::CompactionResponse* resp) {
  const absl::Time deadline = DeadlineOf(c_, ctx->deadline());
  kvpb::EtcdWrite w;
  *w.mutable_compaction() = req;
  absl::StatusOr<AuthInfo> who = Caller(*ctx);
  if (!who.ok()) return ToGrpc(who.status());
  absl::StatusOr<kvpb::EtcdWriteResult> result = AwaitNode<kvpb::EtcdWriteResult>(
      deadline,
      [&](std::function<void(absl::StatusOr<kvpb::EtcdWriteResult>)> done) {
        Write(std::move(w), *who, deadline, std::move(done));
      });
  if (!result.ok()) {
    return ToGrpc(absl::IsDeadlineExceeded(result.status()) ? EtcdError(Error::kTimeout)
                                                            : result.status());
  }
  *resp = std::move(*result->mutable_compaction());
  if (req.physical()) {
    // The compaction was applied on the member that answered (the leader);
    // this member removes the history once it applied it too.
    absl::Status s = c_.compactor != nullptr
                         ? c_.compactor->WaitRemoved(req.revision(), deadline)
                         : absl::OkStatus();
    if (!s.ok()) return ToGrpc(FromNode(s));
  }
  FillHeader(c_, resp->header().revision(), resp->mutable_header());
  return grpc::Status::OK;
}

}  // namespace raftkv::server::etcd
