// KV.Batch: many ops over one stream (proto/kv.proto). Each op runs through
// the same steps as its unary call (KvService::RunOp); what this file adds
// is the stream: reading, answering in batches, flow control, and ending.
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "glog/logging.h"
#include "server/flush_scope.h"
#include "server/kv_service.h"
#include "server/raw_message.h"

namespace raftkv::server {

// One Batch stream. It reads a message, starts each of its ops, and reads
// the next. Answers queue up as ops finish; whenever no write is in flight
// the queue goes out as one message (up to kMaxMessageBytes), so the
// answers that finish during a write share the next one.
//
// An answer given inside a FlushScope (the node answering a round's writes
// or a batch of reads) waits for the scope's end, so the round's answers to
// this stream leave in one message.
//
// Invariants (under mu_): at most one read and one write in flight (gRPC's
// rule); `outstanding_` counts ops started and not yet answered; Finish is
// called once, only when the client has closed its side (or the call is
// cancelled), no op is outstanding, no write is in flight and no deferred
// flush is pending. So no callback can outlive the reactor, which deletes
// itself in OnDone.
//
// Messages travel as raw bytes (kv_service.h): a request message that does
// not parse stops the reading, and once every op read before it is answered
// the stream ends INVALID_ARGUMENT saying so.
//
// Flow control: the backlog is the ops not yet answered plus the answers not
// yet sent. Past kMaxBacklog ops or kMaxQueuedBytes of unsent answers (a
// client that does not read) the reactor stops reading, and gRPC's window
// then pushes back on the client, until the backlog is under half of both.
class BatchReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // Ops are started when read, before their answers' size is known, so
  // kMaxBacklog times the largest answer is what a stream that is not read
  // can pin (gRPC's unary calls have the same exposure per connection).
  static constexpr size_t kMaxBacklog = 1024;
  static constexpr size_t kMaxQueuedBytes = 16 << 20;
  // An answer message stops growing past this many bytes (it always takes
  // one answer), well under gRPC's default 4 MiB receive limit: a client
  // with default limits never loses its stream to big answers sharing a
  // message. One answer is at most ~3 MiB (a 1 MiB value, a ~2 MiB scan).
  static constexpr size_t kMaxMessageBytes = 1 << 20;

  BatchReactor(KvService* svc, grpc::CallbackServerContext* ctx) : svc_(svc), ctx_(ctx) {
    StartRead(&in_raw_);
  }

  void OnReadDone(bool ok) override {
    absl::Status parsed;
    if (ok) {
      parsed = ParseRequest(in_raw_, &in_);
      in_raw_.Clear();
    }
    if (!ok || !parsed.ok()) {  // the client closed its side, the call ended, or bad bytes
      if (!parsed.ok()) svc_->LogOutcome("Batch", ctx_, parsed, absl::Now());
      Actions a;
      {
        absl::MutexLock l(&mu_);
        reads_done_ = true;
        bad_request_ = std::move(parsed);
        a = TakeActionsLocked();
      }
      return Perform(a);
    }
    const absl::Time start = absl::Now();
    std::vector<Op*> ops;
    ops.reserve(in_.ops_size());
    for (kvpb::RequestOp& r : *in_.mutable_ops()) {
      Op* op = new Op;
      op->req.Swap(&r);
      op->start = start;
      ops.push_back(op);
    }
    in_.Clear();
    {
      absl::MutexLock l(&mu_);
      outstanding_ += ops.size();
    }
    for (Op* op : ops) {
      svc_->RunOp(op->req, &op->resp, svc_->DeadlineFrom(ctx_->deadline(), op->req.timeout_ms()),
                  [this, op](absl::Status s) { Answer(op, std::move(s)); });
    }
    Actions a;
    {
      absl::MutexLock l(&mu_);
      if (BacklogFullLocked()) {
        read_paused_ = true;
      } else {
        read_wanted_ = true;
      }
      a = TakeActionsLocked();
    }
    Perform(a);
  }

  void OnWriteDone(bool ok) override {
    Actions a;
    {
      absl::MutexLock l(&mu_);
      writing_ = false;
      if (!ok) {  // the stream is broken: later answers have nowhere to go
        write_failed_ = true;
        queued_.clear();
        queued_bytes_ = 0;
      }
      a = TakeActionsLocked();
    }
    Perform(a);
  }

  void OnDone() override { delete this; }

 private:
  struct Op {
    kvpb::RequestOp req;
    kvpb::ResponseOp resp;
    absl::Time start;
  };
  struct Queued {
    kvpb::ResponseOp answer;
    size_t bytes;
  };
  bool BacklogFullLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return outstanding_ + queued_.size() >= kMaxBacklog || queued_bytes_ >= kMaxQueuedBytes;
  }
  bool BacklogLowLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return outstanding_ + queued_.size() < kMaxBacklog / 2 && queued_bytes_ < kMaxQueuedBytes / 2;
  }
  // What to start once mu_ is released.
  struct Actions {
    bool read = false, write = false, finish = false;
    grpc::Status status;  // with finish
  };

  // Runs on whatever thread finished the op.
  void Answer(Op* op, absl::Status s) {
    kvpb::ResponseOp& resp = op->resp;
    resp.set_id(op->req.id());
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
    svc_->LogOutcome("Batch", ctx_, s, op->start);
    const size_t bytes = resp.ByteSizeLong();
    Actions a;
    {
      absl::MutexLock l(&mu_);
      --outstanding_;
      if (!write_failed_) {
        queued_.push_back({std::move(resp), bytes});
        queued_bytes_ += bytes;
      }
      if (!FlushScope::Active()) {
        a = TakeActionsLocked();
      } else if (!flush_deferred_) {
        // This thread is answering a batch: write once it is done.
        flush_deferred_ = true;
        FlushScope::Defer([this] {
          Actions a;
          {
            absl::MutexLock l(&mu_);
            flush_deferred_ = false;
            a = TakeActionsLocked();
          }
          Perform(a);
        });
      }
    }
    delete op;
    Perform(a);
  }

  // Decides what to start: the next read, a write of the queued answers,
  // or the end of the call. Whoever takes an action must Perform it.
  Actions TakeActionsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Actions a;
    if (!writing_ && !write_failed_ && !queued_.empty()) {
      out_.Clear();
      size_t bytes = 0;
      while (!queued_.empty()) {
        const size_t next = queued_.front().bytes;
        if (out_.ops_size() > 0 && bytes + next > kMaxMessageBytes) break;
        bytes += next;
        queued_bytes_ -= next;
        *out_.add_ops() = std::move(queued_.front().answer);
        queued_.pop_front();
      }
      writing_ = true;
      a.write = true;
    }
    if (read_paused_ && BacklogLowLocked()) {
      read_paused_ = false;
      read_wanted_ = true;
    }
    a.read = std::exchange(read_wanted_, false);
    if (reads_done_ && outstanding_ == 0 && !writing_ && !flush_deferred_ && !finished_) {
      finished_ = true;
      a.finish = true;
      if (write_failed_) {
        a.status = grpc::Status::CANCELLED;
      } else if (!bad_request_.ok()) {
        a.status = grpc::Status(static_cast<grpc::StatusCode>(bad_request_.code()),
                                std::string(bad_request_.message()));
      }
    }
    return a;
  }

  // Starts `a` with mu_ released (gRPC may run a reaction inline). Must be
  // the caller's last use of the reactor: once Finish is called, OnDone may
  // delete it on another thread. While an action to read or write is
  // pending no one can decide to finish (that needs no read wanted and no
  // write in flight), so the reactor outlives every Perform but the one
  // that finishes it.
  void Perform(const Actions& a) {
    if (a.read) StartRead(&in_raw_);
    if (a.write) {
      // What gRPC's typed StartWrite would do; an answer cannot be too big.
      absl::Status s = SerializeResponse(out_, &out_raw_);
      CHECK(s.ok()) << s;
      StartWrite(&out_raw_);
    }
    if (a.finish) Finish(a.status);
  }

  KvService* const svc_;
  grpc::CallbackServerContext* const ctx_;
  absl::Mutex mu_;
  grpc::ByteBuffer in_raw_;  // the read in flight; touched only by the read path
  kvpb::BatchRequest in_;    // in_raw_ parsed; touched only by the read path
  kvpb::BatchResponse out_;  // the write in flight; swapped only while !writing_
  grpc::ByteBuffer out_raw_;  // out_ serialized; touched only with out_
  std::deque<Queued> queued_ ABSL_GUARDED_BY(mu_);  // answers not yet sent
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  bool read_wanted_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
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
