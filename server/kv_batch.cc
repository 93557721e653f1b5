// KV.Batch: many ops over one stream (proto/kv.proto). Each op runs through
// the same steps as its unary call (KvService::RunOp); what this file adds
// is the stream: reading, answering in batches, flow control, and ending.
#include <algorithm>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "glog/logging.h"
#include "server/answer_budget.h"
#include "server/flush_scope.h"
#include "server/kv_service.h"
#include "server/raw_message.h"

namespace raftkv::server {

// One Batch stream. It reads a message, starts its ops as the budgets allow,
// and reads the next once every op of the message has started. Answers
// queue up as ops finish; whenever no write is in flight the queue goes out
// as one message (up to kMaxMessageBytes), so the answers that finish during
// a write share the next one.
//
// An answer given inside a FlushScope (the node answering a round's writes
// or a batch of reads) waits for the scope's end, so the round's answers to
// this stream leave in one message.
//
// Memory (server/answer_budget.h): `held_` is what this stream holds of the
// node's answer budget: a reservation per started op (est_, at least
// kMinReserve), replaced by its answer's charge when it finishes, kept until
// gRPC reports the message carrying it sent. An op starts only if its
// reservation fits both the stream's budget and the node's (else it waits
// for the client to read, or for a grant from the node's budget, in arrival
// order), and the next message is read only when the backlog is low. A read
// whose answer turns out not to fit is parked: its answer is dropped and the
// op runs again once its size fits (reads are safe to repeat; a write's or
// an error's answer is small and always kept). A stream with no answer yet
// runs one op at a time reserving its whole stream budget (see
// StartOpsLocked).
//
// Invariants (under mu_): at most one read and one write in flight (gRPC's
// rule); `outstanding_` counts ops started and not yet answered; Finish is
// called once, only when the client has closed its side (or the call is
// broken), no op is outstanding or pending, no write is in flight, no grant
// is awaited and no deferred flush is pending. So no callback can outlive
// the reactor, which deletes itself in OnDone.
//
// Messages travel as raw bytes (kv_service.h): a request message that does
// not parse stops the reading, and once every op read before it is answered
// the stream ends INVALID_ARGUMENT saying so.
class BatchReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // Ops started and answers not yet sent, at most (besides the budgets).
  static constexpr size_t kMaxBacklog = 1024;
  // An answer message stops growing past this many bytes (it always takes
  // one answer), well under gRPC's default 4 MiB receive limit: a client
  // with default limits never loses its stream to big answers sharing a
  // message. One answer is at most ~3 MiB (a 1 MiB value, a ~2 MiB scan).
  static constexpr size_t kMaxMessageBytes = 1 << 20;
  // The least an op reserves when it starts (in charged bytes).
  static constexpr size_t kMinReserve = 8 << 10;

  BatchReactor(KvService* svc, grpc::CallbackServerContext* ctx)
      : svc_(svc),
        ctx_(ctx),
        budget_(&svc->budget_),
        stream_bytes_(svc->budget_.options().stream_bytes) {
    reading_ = true;
    StartRead(&in_raw_);
  }

  void OnReadDone(bool ok) override {
    absl::Status parsed;
    if (ok) {
      parsed = ParseRequest(in_raw_, &in_);
      in_raw_.Clear();
      if (!parsed.ok()) svc_->LogOutcome("Batch", ctx_, parsed, absl::Now());
    }
    Actions a;
    {
      absl::MutexLock l(&mu_);
      reading_ = false;
      if (!ok || !parsed.ok()) {  // the client closed its side, the call ended, or bad bytes
        reads_done_ = true;
        bad_request_ = std::move(parsed);
      } else {
        // Every op of the last message has started (the read waits for it).
        message_.Swap(&in_);
        next_op_ = 0;
      }
      TakeActionsLocked(&a);
    }
    Perform(a);
  }

  void OnWriteDone(bool ok) override {
    Actions a;
    {
      absl::MutexLock l(&mu_);
      writing_ = false;
      // A cleared message keeps its answers' memory: free a big one now.
      if (writing_bytes_ > 2 * AnswerBudget::kSmallBytes) kvpb::BatchResponse().Swap(&out_);
      out_raw_.Clear();
      ReleaseLocked(std::exchange(writing_bytes_, 0), &a);
      if (!ok) write_failed_ = true;  // the stream is broken
      TakeActionsLocked(&a);
    }
    Perform(a);
  }

  void OnCancel() override {
    Actions a;
    {
      absl::MutexLock l(&mu_);
      cancelled_ = true;
      if (waiting_ && budget_->Cancel(ticket_)) waiting_ = false;
      TakeActionsLocked(&a);
    }
    Perform(a);
  }

  void OnDone() override { delete this; }

 private:
  struct Op {
    kvpb::RequestOp req;
    kvpb::ResponseOp resp;
    absl::Time start;
    absl::Time deadline;
    size_t reserved = 0;  // of the budgets, while it runs
  };
  struct Queued {
    kvpb::ResponseOp answer;
    size_t bytes;  // charged
  };
  // What to do once mu_ is released.
  struct Actions {
    std::vector<Op*> start;
    // Bytes to give back to the node's budget (outlives the reactor).
    size_t release = 0;
    AnswerBudget* budget = nullptr;
    bool read = false, write = false, finish = false;
    grpc::Status status;  // with finish
  };

  static bool IsRead(const kvpb::RequestOp& op) {
    return op.op_case() == kvpb::RequestOp::kGet || op.op_case() == kvpb::RequestOp::kScan;
  }
  bool BrokenLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return cancelled_ || write_failed_;
  }
  bool PendingLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !parked_.empty() || next_op_ < message_.ops_size();
  }
  size_t BacklogLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return outstanding_ + queued_.size();
  }
  void ReleaseLocked(size_t bytes, Actions* a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    held_ -= bytes;
    a->release += bytes;
    a->budget = budget_;
  }

  // Runs on whatever thread finished the op.
  void Answer(Op* op, absl::Status s) {
    kvpb::ResponseOp& resp = op->resp;
    resp.set_id(op->req.id());
    const bool big_read = IsRead(op->req) && s.ok();
    if (!s.ok()) {
      uint64_t leader = 0;
      std::string addr;
      s = svc_->ExplainNotLeader(std::move(s), &leader, &addr);
      resp.clear_response();
      resp.set_code(static_cast<int32_t>(s.code()));
      resp.set_message(std::string(s.message()));
      resp.set_leader_id(leader);
      resp.set_leader_addr(addr);
    }
    const size_t bytes = 2 * resp.ByteSizeLong();
    bool parked = false;
    Actions a;
    {
      absl::MutexLock l(&mu_);
      --outstanding_;
      answered_any_ = true;
      const size_t reserved = std::exchange(op->reserved, 0);
      if (BrokenLocked()) {
        ReleaseLocked(reserved, &a);  // the answer has nowhere to go
        svc_->LogOutcome("Batch", ctx_, s, op->start);
      } else {
        bool keep = true;
        if (bytes <= reserved) {
          ReleaseLocked(reserved - bytes, &a);
        } else {
          const size_t extra = bytes - reserved;
          const bool stream_fits = held_ == reserved || held_ + extra <= stream_bytes_;
          if (stream_fits && budget_->TryAcquire(extra)) {
            held_ += extra;
          } else if (big_read) {
            // Park it: run it again once this size fits.
            keep = false;
            ReleaseLocked(reserved, &a);
            est_ = bytes;
            resp.Clear();
            parked_.push_front(op);
            parked = true;
          } else {
            budget_->Force(extra);
            held_ += extra;
          }
        }
        if (keep) {
          est_ = std::max(kMinReserve, bytes);
          queued_.push_back({std::move(resp), bytes});
          // Here, not after unlocking: then the reactor may be gone.
          svc_->LogOutcome("Batch", ctx_, s, op->start);
        }
      }
      if (!FlushScope::Active()) {
        TakeActionsLocked(&a);
      } else if (!flush_deferred_) {
        // This thread is answering a batch: write once it is done.
        flush_deferred_ = true;
        FlushScope::Defer([this] {
          Actions a;
          {
            absl::MutexLock l(&mu_);
            flush_deferred_ = false;
            TakeActionsLocked(&a);
          }
          Perform(a);
        });
      }
    }
    if (!parked) delete op;
    Perform(a);
  }

  // The node's budget granted what this stream waited for.
  void Granted() {
    Actions a;
    {
      absl::MutexLock l(&mu_);
      waiting_ = false;
      granted_ += waiting_bytes_;
      held_ += waiting_bytes_;
      TakeActionsLocked(&a);
    }
    Perform(a);
  }

  // Starts pending ops while the budgets allow.
  void StartOpsLocked(Actions* a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (PendingLocked() && !waiting_ && BacklogLocked() < kMaxBacklog) {
      // Until an answer shows their size, ops run one at a time, each
      // reserving the stream's whole budget: a client cannot start reads
      // that are computed only to be dropped, and a burst of new streams
      // waits for room rather than reading values there is no room for.
      if (!answered_any_ && outstanding_ > 0) break;
      size_t need = answered_any_ ? est_ : stream_bytes_;
      if (granted_ > 0) {
        need = std::exchange(granted_, 0);  // held_ has it already
      } else if (held_ > 0 && held_ + need > stream_bytes_) {
        break;  // until the client reads
      } else if (budget_->AcquireOrWait(need, [this] { Granted(); }, &ticket_)) {
        held_ += need;
      } else {
        waiting_ = true;
        waiting_bytes_ = need;
        break;
      }
      Op* op;
      if (!parked_.empty()) {
        op = parked_.front();
        parked_.pop_front();
      } else {
        op = new Op;
        op->req.Swap(message_.mutable_ops(next_op_++));
        op->start = absl::Now();
        op->deadline = svc_->DeadlineFrom(ctx_->deadline(), op->req.timeout_ms());
      }
      op->reserved = need;
      ++outstanding_;
      a->start.push_back(op);
    }
    // Drained: free the message (a cleared one keeps its ops' memory).
    if (!PendingLocked() && message_.ops_size() > 0) kvpb::BatchRequest().Swap(&message_);
  }

  // Decides what to start: ops, the next read, a write of the queued
  // answers, or the end of the call. Whoever takes actions must Perform them.
  void TakeActionsLocked(Actions* a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (BrokenLocked()) {
      // Nothing more can be answered: drop what waits, give back what is held.
      for (Op* op : parked_) delete op;
      parked_.clear();
      kvpb::BatchRequest().Swap(&message_);
      next_op_ = 0;
      for (const Queued& q : queued_) ReleaseLocked(q.bytes, a);
      queued_.clear();
      ReleaseLocked(std::exchange(granted_, 0), a);
    } else {
      StartOpsLocked(a);
    }
    if (!writing_ && !BrokenLocked() && !queued_.empty()) {
      out_.Clear();
      size_t bytes = 0, charged = 0;
      while (!queued_.empty()) {
        const size_t next = queued_.front().bytes / 2;
        if (out_.ops_size() > 0 && bytes + next > kMaxMessageBytes) break;
        bytes += next;
        charged += queued_.front().bytes;
        *out_.add_ops() = std::move(queued_.front().answer);
        queued_.pop_front();
      }
      writing_ = true;
      writing_bytes_ = charged;
      a->write = true;
    }
    // A broken stream reads on until the read fails, to learn it is done.
    const bool low = BacklogLocked() < kMaxBacklog / 2 && held_ < stream_bytes_ / 2;
    if (!reading_ && !reads_done_ && !PendingLocked() && (BrokenLocked() || low)) {
      reading_ = true;
      a->read = true;
    }
    if (reads_done_ && outstanding_ == 0 && !PendingLocked() && !writing_ && !waiting_ &&
        !flush_deferred_ && !finished_) {
      ReleaseLocked(std::exchange(granted_, 0), a);
      for (const Queued& q : queued_) ReleaseLocked(q.bytes, a);
      queued_.clear();
      CHECK_EQ(held_, 0u);
      finished_ = true;
      a->finish = true;
      if (BrokenLocked()) {
        a->status = grpc::Status::CANCELLED;
      } else if (!bad_request_.ok()) {
        a->status = grpc::Status(static_cast<grpc::StatusCode>(bad_request_.code()),
                                 std::string(bad_request_.message()));
      }
    }
  }

  // Starts `a` with mu_ released (gRPC may run a reaction inline, an op may
  // finish inline). Must be the caller's last use of the reactor: once
  // Finish is called, OnDone may delete it on another thread. While an op
  // started here, a read or a write is pending no one can decide to finish,
  // so the reactor outlives every Perform but the one that finishes it.
  void Perform(const Actions& a) {
    for (Op* op : a.start) {
      svc_->RunOp(op->req, &op->resp, op->deadline,
                  [this, op](absl::Status s) { Answer(op, std::move(s)); });
    }
    if (a.read) StartRead(&in_raw_);
    if (a.write) {
      // What gRPC's typed StartWrite would do; an answer cannot be too big.
      absl::Status s = SerializeResponse(out_, &out_raw_);
      CHECK(s.ok()) << s;
      StartWrite(&out_raw_);
    }
    // No member is read here: the reactor may be gone unless finishing.
    if (a.release > 0) a.budget->Release(a.release);
    if (a.finish) Finish(a.status);
  }

  KvService* const svc_;
  grpc::CallbackServerContext* const ctx_;
  AnswerBudget* const budget_;
  const size_t stream_bytes_;
  absl::Mutex mu_;
  grpc::ByteBuffer in_raw_;  // the read in flight; touched only by the read path
  kvpb::BatchRequest in_;    // in_raw_ parsed; touched only by the read path
  kvpb::BatchResponse out_;  // the write in flight; swapped only while !writing_
  grpc::ByteBuffer out_raw_;  // out_ serialized; touched only with out_
  // The last message read; its ops from next_op_ on have not started.
  kvpb::BatchRequest message_ ABSL_GUARDED_BY(mu_);
  int next_op_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Op*> parked_ ABSL_GUARDED_BY(mu_);   // reads to run again
  std::deque<Queued> queued_ ABSL_GUARDED_BY(mu_);  // answers not yet sent
  size_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  // Of the node's budget: reservations, queued and in-flight answers, grant.
  size_t held_ ABSL_GUARDED_BY(mu_) = 0;
  size_t writing_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // charged, of the write
  size_t granted_ ABSL_GUARDED_BY(mu_) = 0;        // granted, not yet used
  size_t est_ ABSL_GUARDED_BY(mu_) = kMinReserve;  // the next op's reservation
  bool answered_any_ ABSL_GUARDED_BY(mu_) = false;
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;  // for a grant of waiting_bytes_
  size_t waiting_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t ticket_ ABSL_GUARDED_BY(mu_) = 0;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // Why reading stopped early: a message that did not parse (OK if none).
  absl::Status bad_request_ ABSL_GUARDED_BY(mu_);
  // A FlushScope will take and perform actions: no finishing before then.
  bool flush_deferred_ ABSL_GUARDED_BY(mu_) = false;
};

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* KvService::Batch(
    grpc::CallbackServerContext* ctx) {
  return new BatchReactor(this, ctx);
}

}  // namespace raftkv::server
