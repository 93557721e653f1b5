// BatchStream: one endpoint's KV.Batch stream (proto/kv.proto), shared by
// every thread of a Client that calls that endpoint.
//
// Call() queues an op and blocks until its answer. Ops from concurrent
// callers travel together: gRPC allows one write in flight per stream, and
// whatever queued up during a write goes out as the next message (bounded at
// kMaxMessageBytes, at least one op). The server answers each op once, in any
// order, several per message; answers are matched to callers by op id.
//
// Failures:
//  * The stream ends (the connection breaks, the server shuts down or kills
//    the stream, it cannot connect): every op waiting on it fails UNAVAILABLE,
//    naming the stream's status. A write among them may or may not have been
//    applied; the caller retries it with the same sequence number. The next
//    Call opens a new stream (no backoff here: that is the Client's).
//    Except: when the node ended the stream because a message was larger
//    than its receive limit (RESOURCE_EXHAUSTED), the op over
//    kMaxMessageBytes (which travelled alone) fails RESOURCE_EXHAUSTED.
//  * A caller's deadline passes without an answer: that call returns
//    DEADLINE_EXCEEDED and a later answer is dropped. If nothing at all was
//    received on the stream since the op was queued, the stream is taken for
//    hung (a stopped server, a black-holed connection) and cancelled, so that
//    later calls start a fresh one instead of queueing behind it forever.
//    The ops still waiting on it then fail UNAVAILABLE.
//
// Each op carries timeout_ms, the time left to the caller's deadline, so the
// server gives up on it too.
//
// Threads: Call may be called from any number of threads at once. Stream
// reactions run on gRPC's callback threads; they never block on a caller.
//
// Ownership and lifetimes: the stub is not owned and must outlive the
// BatchStream. Each incarnation of the stream (a gRPC reactor) is owned by
// itself and deleted in its OnDone; the BatchStream counts them and its
// destructor cancels them and waits until every one has reached OnDone, so
// no reaction ever touches a destroyed BatchStream. A stream's context
// holds a reference to the channel; it is dropped before the destructor can
// return, so the caller, which destroys the channel on its own thread after
// the BatchStream, always drops the last one (never a gRPC thread).
#ifndef RAFTKV_CLIENT_BATCH_STREAM_H_
#define RAFTKV_CLIENT_BATCH_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/kv.grpc.pb.h"

namespace raftkv::client {

class BatchStream {
 public:
  // A request message carries ops up to this many bytes (one op at least,
  // whatever its size): well under a server's receive limit (4 MiB by
  // default in gRPC, 64 MiB in raftkv's server) however many ops queue up.
  static constexpr size_t kMaxMessageBytes = 2 << 20;

  struct Result {
    // The op's outcome as the unary call would have ended: the server's
    // code and message; DEADLINE_EXCEEDED when the caller's deadline passed
    // first; UNAVAILABLE when the stream ended before the answer.
    grpc::Status status;
    // The server's answer (with leader_id / leader_addr on a NOT_LEADER
    // answer, the response on OK); empty unless the server answered.
    kvpb::ResponseOp response;
  };

  // `stub` is not owned and must outlive this; `address` names the endpoint
  // in error messages.
  BatchStream(kvpb::KV::Stub* stub, std::string address);
  // Cancels the stream and waits until every incarnation has reached OnDone
  // (prompt: a cancelled stream ends at once). REQUIRES: no Call running.
  ~BatchStream();
  BatchStream(const BatchStream&) = delete;
  BatchStream& operator=(const BatchStream&) = delete;

  // Sends `op` (its id and timeout_ms are set here) and blocks until its
  // answer, or until `deadline`. Opens the stream if none is live.
  // Thread-safe.
  Result Call(kvpb::RequestOp op, absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  class Stream;
  struct Waiter;

  // Takes `s` out of use: no new op goes to it and no new write starts on
  // it; with `cancel`, cancels its call. Idempotent. The caller then
  // releases the stream's hold if Stream::TakeHoldLocked says so.
  void DetachLocked(Stream* s, bool cancel) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Called from a stream's OnDone after it deleted itself.
  void StreamEnded() ABSL_LOCKS_EXCLUDED(mu_);
  // Every incarnation has ended: the destructor may return.
  bool AllEndedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return streams_.empty() && ending_ == 0;
  }

  kvpb::KV::Stub* const stub_;
  const std::string address_;

  // Guards this and every Stream's shared state (Stream members marked
  // "under owner_->mu_").
  mutable absl::Mutex mu_;
  // The stream new ops go to; null until the first Call and after it was
  // detached (broken, hung, or the destructor).
  Stream* live_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Every incarnation not yet at OnDone (live_ among them, if set).
  std::set<Stream*> streams_ ABSL_GUARDED_BY(mu_);
  // Incarnations past OnDone's last touch of their own members but not yet
  // counted out (StreamEnded): the destructor waits for these too.
  int ending_ ABSL_GUARDED_BY(mu_) = 0;
  // Op ids: unique over this BatchStream's life, so over each stream's.
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace raftkv::client

#endif  // RAFTKV_CLIENT_BATCH_STREAM_H_
