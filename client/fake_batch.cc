// FakeCluster's KV.Batch streams (fake_cluster.h): each op runs through the
// handler of its unary call, on a thread of its own, and is answered as it
// finishes.
#include <algorithm>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/fake_cluster.h"

namespace raftkv::client::testing {
namespace {

constexpr absl::Duration kPoll = absl::Milliseconds(2);
// An op's deadline when it carries none (the real server's default).
constexpr absl::Duration kDefaultOpTimeout = absl::Seconds(10);

// One stream's state, shared by the handler thread and the op threads.
// Answers go out one at a time (a sync stream takes one write at a time,
// alongside the handler's reads) until the stream is broken or dead.
//
// Only the handler thread asks the ServerContext whether the call was
// cancelled: on a sync stream IsCancelled() plucks the call's completion
// queue, which takes at most 6 pluckers at once (Read and Write pluck too),
// so op threads polling it would make the handler's Read fail.
class StreamState {
 public:
  StreamState(grpc::ServerContext* ctx,
              grpc::ServerReaderWriter<kvpb::BatchResponse, kvpb::BatchRequest>* stream)
      : ctx_(ctx), stream_(stream) {}

  void Answer(kvpb::ResponseOp op) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    if (!broken_ && !dead_) {
      kvpb::BatchResponse msg;
      *msg.add_ops() = std::move(op);
      stream_->Write(msg);
    }
    --running_;
  }

  void Started(int ops) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    running_ += ops;
  }
  int running() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    return running_;
  }

  // Cuts the stream: nothing more is answered and the call is cancelled.
  // Any thread.
  void Break() ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock l(&mu_);
      broken_ = true;
    }
    ctx_->TryCancel();
  }
  // The handler found the call cancelled.
  void Cancelled() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    cancelled_ = true;
  }
  // Hung: nothing more is answered, and the call stays open.
  void Die() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    dead_ = true;
  }

  bool broken() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    return broken_;
  }
  // Op threads give up on their ops.
  bool gave_up() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    return broken_ || cancelled_;
  }

 private:
  grpc::ServerContext* const ctx_;
  grpc::ServerReaderWriter<kvpb::BatchResponse, kvpb::BatchRequest>* const stream_;
  mutable absl::Mutex mu_;  // also serializes the writes
  int running_ ABSL_GUARDED_BY(mu_) = 0;  // ops started, not answered
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool dead_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

// One op's context: cancelled with its stream, or at the op's deadline.
class FakeCluster::OpCtx final : public CallCtx {
 public:
  OpCtx(StreamState* stream, absl::Time deadline, kvpb::ResponseOp* out)
      : stream_(stream), deadline_(deadline), out_(out) {}
  bool batch() const override { return true; }
  bool Cancelled() const override { return stream_->gave_up() || absl::Now() >= deadline_; }
  void SetLeader(uint64_t id, const std::string& addr) override {
    out_->set_leader_id(id);
    out_->set_leader_addr(addr);
  }
  grpc::Status GaveUp() const override {
    if (!stream_->gave_up() && absl::Now() >= deadline_) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "op deadline exceeded");
    }
    return CallCtx::GaveUp();
  }
  void LoseAnswer() override { stream_->Break(); }

 private:
  StreamState* const stream_;
  const absl::Time deadline_;
  kvpb::ResponseOp* const out_;
};

grpc::Status FakeCluster::ServeBatch(
    int node, grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<kvpb::BatchResponse, kvpb::BatchRequest>* stream,
    const RunOp& run) {
  StreamState state(ctx, stream);
  {
    absl::MutexLock lock(&mu_);
    ++batch_stats_[node].streams;
  }
  std::vector<std::thread> threads;
  kvpb::BatchRequest req;
  bool dead = false;
  while (stream->Read(&req)) {
    const absl::Time now = absl::Now();
    {
      absl::MutexLock lock(&mu_);
      BatchStats& st = batch_stats_[node];
      ++st.messages;
      st.ops += req.ops_size();
      st.max_ops = std::max(st.max_ops, req.ops_size());
      dead = HungLocked(node);
    }
    if (dead) break;
    state.Started(req.ops_size());
    for (kvpb::RequestOp& op : *req.mutable_ops()) {
      const absl::Time deadline =
          now + (op.timeout_ms() == 0 ? kDefaultOpTimeout : absl::Milliseconds(op.timeout_ms()));
      threads.emplace_back([&state, &run, op = std::move(op), deadline] {
        kvpb::ResponseOp out;
        OpCtx c(&state, deadline, &out);
        const grpc::Status s = run(c, op, &out);
        out.set_id(op.id());
        if (!s.ok()) {
          out.clear_response();
          out.set_code(static_cast<int32_t>(s.error_code()));
          out.set_message(s.error_message());
        }
        state.Answer(std::move(out));
      });
    }
    req.Clear();
  }
  // The client half-closed, or the call is over (cancelled, broken), or the
  // stream is hung. Wait for the ops still running (all given up if the
  // call is cancelled); a hung stream waits for the cancellation.
  if (dead) state.Die();
  while (dead || state.running() > 0) {
    if (ctx->IsCancelled()) {
      state.Cancelled();
      break;
    }
    absl::SleepFor(kPoll);
  }
  for (std::thread& t : threads) t.join();
  if (state.broken()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream broken (injected)");
  }
  return grpc::Status::OK;
}

}  // namespace raftkv::client::testing
