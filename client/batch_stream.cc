#include "client/batch_stream.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace raftkv::client {
namespace {

// The op's timeout_ms: the time left to `deadline`, rounded up, at least 1
// (0 would mean the server's default).
uint32_t TimeoutMs(absl::Duration left) {
  const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)));
  return static_cast<uint32_t>(
      std::clamp<int64_t>(ms, 1, std::numeric_limits<uint32_t>::max()));
}

std::string CodeName(const grpc::Status& s) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code()));
}

}  // namespace

// A caller blocked in Call. Lives on the caller's stack; reached by the
// stream through Stream::waiting_ until it is answered, failed or gives up
// (each under mu_, and only one of them happens).
struct BatchStream::Waiter {
  absl::CondVar cv;
  bool done = false;  // under mu_: `result` is final
  Result result;      // under mu_ until done
  Stream* stream = nullptr;  // the incarnation the op was queued on
  absl::Time queued_at;
  size_t bytes = 0;  // the op's size
};

// One incarnation of the stream: a gRPC reactor that owns itself and is
// deleted in OnDone.
//
// Invariants (under owner_->mu_):
//  * at most one write in flight (writing_); out_ is only touched while
//    writing_ is false (to fill it) or by gRPC during the write;
//  * one read in flight from Start until a read fails; in_ is only touched
//    by the read path;
//  * every op in queued_ (not yet written) or written and unanswered has its
//    caller in waiting_, until answered, failed in OnDone, or given up;
//  * the hold (taken in Start) is released exactly once, when the stream is
//    detached and no write is in flight. So OnDone cannot run while a thread
//    that saw the stream live may still start a write on it, and a Stream in
//    owner_->streams_ is never deleted while mu_ is held.
//
// gRPC runs this stream's reactions on its callback threads, never inline in
// Start*/TryCancel (gRPC 1.51: no inlined client reactions); Start* and
// RemoveHold are still called with mu_ released.
class BatchStream::Stream final
    : public grpc::ClientBidiReactor<kvpb::BatchRequest, kvpb::BatchResponse> {
 public:
  explicit Stream(BatchStream* owner) : owner_(owner) {}

  // Opens the call and sends out_. Called once, by the creator, after it
  // filled out_ (TakeBatchLocked) with mu_ released.
  void Start() {
    owner_->stub_->async()->Batch(&ctx_, this);
    AddHold();
    StartRead(&in_);
    StartWrite(&out_);
    StartCall();
  }

  // Sends out_. REQUIRES: the caller set writing_ (TakeBatchLocked) after
  // Start was called; mu_ released.
  void Write() { StartWrite(&out_); }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the call is over: OnDone fails whatever still waits
      bool release;
      {
        absl::MutexLock l(&owner_->mu_);
        owner_->DetachLocked(this, /*cancel=*/false);
        release = TakeHoldLocked();
      }
      if (release) RemoveHold();
      return;
    }
    {
      absl::MutexLock l(&owner_->mu_);
      last_read_ = absl::Now();
      for (kvpb::ResponseOp& r : *in_.mutable_ops()) {
        auto it = waiting_.find(r.id());
        if (it == waiting_.end()) continue;  // its caller gave up
        Waiter* w = it->second;
        waiting_.erase(it);
        w->result.status = grpc::Status(static_cast<grpc::StatusCode>(r.code()), r.message());
        w->result.response.Swap(&r);
        w->done = true;
        w->cv.Signal();
      }
    }
    in_.Clear();
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    bool write = false;
    bool release = false;
    {
      absl::MutexLock l(&owner_->mu_);
      writing_ = false;
      if (!ok) {
        // The stream is broken; make sure the read ends too.
        owner_->DetachLocked(this, /*cancel=*/true);
      } else if (!detached_ && !queued_.empty()) {
        TakeBatchLocked();
        write = true;
      }
      release = TakeHoldLocked();
    }
    if (write) Write();
    if (release) RemoveHold();
  }

  void OnDone(const grpc::Status& status) override {
    BatchStream* const owner = owner_;
    {
      absl::MutexLock l(&owner->mu_);
      owner->DetachLocked(this, /*cancel=*/false);  // already, but be sure
      const grpc::Status ended(
          grpc::StatusCode::UNAVAILABLE,
          absl::StrCat("batch stream to ", owner->address_, " ended before the answer: ",
                       CodeName(status), ": ", status.error_message()));
      // The node refused a message as larger than its receive limit. Only
      // an op over kMaxMessageBytes travels in a message that large, alone:
      // that op fails for good; the others' outcome is unknown, as above.
      const bool too_large = status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
                             absl::StrContains(status.error_message(), "larger than max");
      for (auto& [id, w] : waiting_) {
        if (too_large && w->bytes > kMaxMessageBytes) {
          w->result.status = grpc::Status(
              grpc::StatusCode::RESOURCE_EXHAUSTED,
              absl::StrCat("request of ", w->bytes, " bytes is over the gRPC receive limit of ",
                           owner->address_, ": ", status.error_message()));
        } else {
          w->result.status = ended;
        }
        w->done = true;
        w->cv.Signal();
      }
      waiting_.clear();
      owner->streams_.erase(this);
      ++owner->ending_;
    }
    // The context goes before the owner counts this stream out: it holds a
    // reference to the call and one to the grpc::Channel (set_call), and the
    // channel's last reference must be dropped by the Client's thread, never
    // on a gRPC callback thread (a double free in gRPC 1.51; see
    // server/transport.cc).
    delete this;
    owner->StreamEnded();
  }

  // Moves queued ops into out_, up to kMaxMessageBytes (one op at least),
  // and marks a write in flight. REQUIRES: !writing_, queued_ not empty.
  void TakeBatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(owner_->mu_) {
    out_.Clear();
    size_t bytes = 0;
    while (!queued_.empty()) {
      const size_t size = queued_.front().ByteSizeLong();
      if (out_.ops_size() > 0 && bytes + size > kMaxMessageBytes) break;
      bytes += size;
      *out_.add_ops() = std::move(queued_.front());
      queued_.pop_front();
    }
    writing_ = true;
  }

  // Drops op `id` if it is still queued (never sent).
  void UnqueueLocked(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(owner_->mu_) {
    auto it = std::find_if(queued_.begin(), queued_.end(),
                           [id](const kvpb::RequestOp& op) { return op.id() == id; });
    if (it != queued_.end()) queued_.erase(it);
  }

  // True, once, when the hold is to be released (by the caller, with mu_
  // released): detached and no write in flight.
  bool TakeHoldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(owner_->mu_) {
    if (!detached_ || writing_ || !hold_) return false;
    hold_ = false;
    return true;
  }

  BatchStream* const owner_;
  grpc::ClientContext ctx_;  // TryCancel under owner_->mu_ only (see the invariants)
  kvpb::BatchRequest out_;   // the write in flight
  kvpb::BatchResponse in_;   // the read in flight

  std::deque<kvpb::RequestOp> queued_ ABSL_GUARDED_BY(owner_->mu_);
  absl::flat_hash_map<uint64_t, Waiter*> waiting_ ABSL_GUARDED_BY(owner_->mu_);
  bool writing_ ABSL_GUARDED_BY(owner_->mu_) = false;
  bool detached_ ABSL_GUARDED_BY(owner_->mu_) = false;
  bool hold_ ABSL_GUARDED_BY(owner_->mu_) = true;
  // When answers last arrived; InfinitePast before the first.
  absl::Time last_read_ ABSL_GUARDED_BY(owner_->mu_) = absl::InfinitePast();
};

BatchStream::BatchStream(kvpb::KV::Stub* stub, std::string address)
    : stub_(stub), address_(std::move(address)) {}

BatchStream::~BatchStream() {
  std::vector<Stream*> release;
  {
    absl::MutexLock l(&mu_);
    for (Stream* s : streams_) {
      DetachLocked(s, /*cancel=*/true);
      if (s->TakeHoldLocked()) release.push_back(s);
    }
  }
  for (Stream* s : release) s->RemoveHold();
  // Every stream is cancelled, so each reaches OnDone promptly. Acquiring
  // mu_ after StreamEnded's release also makes sure that thread is done
  // with mu_ before it is destroyed.
  absl::MutexLock l(&mu_);
  mu_.Await(absl::Condition(this, &BatchStream::AllEndedLocked));
}

void BatchStream::DetachLocked(Stream* s, bool cancel) {
  if (live_ == s) live_ = nullptr;
  s->detached_ = true;
  if (cancel) s->ctx_.TryCancel();
}

void BatchStream::StreamEnded() {
  absl::MutexLock l(&mu_);
  --ending_;
}

BatchStream::Result BatchStream::Call(kvpb::RequestOp op, absl::Time deadline) {
  const absl::Time now = absl::Now();
  if (deadline <= now) {
    return Result{grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded"), {}};
  }
  op.set_timeout_ms(TimeoutMs(deadline - now));
  Waiter w;
  w.queued_at = now;
  w.bytes = op.ByteSizeLong();
  Stream* start = nullptr;
  Stream* write = nullptr;
  uint64_t id;
  {
    absl::MutexLock l(&mu_);
    if (live_ == nullptr) {
      live_ = start = new Stream(this);
      streams_.insert(start);
    }
    Stream* s = live_;
    id = next_id_++;
    op.set_id(id);
    w.stream = s;
    s->waiting_.emplace(id, &w);
    s->queued_.push_back(std::move(op));
    if (!s->writing_) {
      s->TakeBatchLocked();
      write = s;
    }
  }
  // A new stream's creator always holds its first write (nobody else can
  // start one before Start: writing_ is set).
  if (start != nullptr) {
    start->Start();
  } else if (write != nullptr) {
    write->Write();
  }

  Stream* release = nullptr;
  {
    absl::MutexLock l(&mu_);
    while (!w.done && absl::Now() < deadline) w.cv.WaitWithDeadline(&mu_, deadline);
    if (w.done) return std::move(w.result);
    // Given up. The stream (still holding this waiter, so not at OnDone)
    // forgets the op; an answer that comes later is dropped.
    Stream* s = w.stream;
    s->waiting_.erase(id);
    s->UnqueueLocked(id);
    if (s->last_read_ < w.queued_at) {
      // Nothing at all arrived since this op was queued: the server or the
      // connection is hung. Cancel, so later ops do not queue behind it.
      DetachLocked(s, /*cancel=*/true);
      if (s->TakeHoldLocked()) release = s;
    }
  }
  if (release != nullptr) release->RemoveHold();
  return Result{grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded"), {}};
}

}  // namespace raftkv::client
