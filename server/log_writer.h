// LogWriter: the node's asynchronous log writer (raft.h, "Asynchronous
// writes").
//
// The loop queues each Ready's entries, hard state and persisted messages
// and goes on stepping; one writer thread performs the queued writes in
// queue order. Whatever queued up during a flush is merged into the next
// store write (one fsync for several rounds: group commit across rounds).
// After a write is durable the writer sends its persisted messages (votes
// and acknowledgements, which promise what it made durable), then reports
// the last entry it wrote through `on_persisted`, which the node feeds to
// the core as Raft::Persisted().
//
// Invariant: a message handed to Queue() is sent only after every write
// queued before it, and its own, is durable.
//
// Thread safety: Queue() and WaitIdle() from one thread (the node's loop);
// the callbacks run on the writer thread and must not call back into the
// writer. A failed store write is fatal (server/storage_failure.h), never
// skipped.
#ifndef RAFTKV_SERVER_LOG_WRITER_H_
#define RAFTKV_SERVER_LOG_WRITER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "proto/raft.pb.h"
#include "server/transport.h"
#include "storage/log_store.h"

namespace raftkv::server {

class LogWriter {
 public:
  // The entries through (index, term) are durable; `writes` is how many
  // queued requests with entries that store write covered (merged ones
  // report once, together).
  using PersistedFn = std::function<void(uint64_t index, uint64_t term, int writes)>;

  // Starts the writer thread. `store` and `transport` are not owned and
  // must outlive the writer.
  LogWriter(storage::LogStore* store, MessageSender* transport, PersistedFn on_persisted);
  // Finishes every queued write (and sends its messages), then joins.
  ~LogWriter();
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Queues one Ready's write. With nothing to write and nothing queued or
  // in flight, `persisted_messages` are sent at once, on the caller's thread.
  // REQUIRES: entries continue the log as the writes queued before them
  // leave it (they may replace a suffix: entries[0].index <= last + 1).
  void Queue(std::vector<raftpb::Entry> entries, std::optional<raftpb::HardState> hard_state,
             std::vector<raftpb::Message> persisted_messages) ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until every queued write is done and its messages sent.
  void WaitIdle() ABSL_LOCKS_EXCLUDED(mu_);

  // Store writes performed so far (merged writes count once).
  uint64_t writes() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Request {
    std::vector<raftpb::Entry> entries;
    std::optional<raftpb::HardState> hard_state;
    std::vector<raftpb::Message> messages;
  };

  void Run();
  // Performs `batch` as one store write, then sends and reports.
  void Write(std::deque<Request> batch);
  bool HasWorkLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return stopping_ || !queue_.empty();
  }
  bool IdleLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return queue_.empty() && !busy_; }

  storage::LogStore* const store_;
  MessageSender* const transport_;
  const PersistedFn on_persisted_;

  mutable absl::Mutex mu_;
  std::deque<Request> queue_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;  // the writer holds a batch
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t writes_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

// Appends `next` to `merged` as the store would apply it after `merged`:
// entries of `next` replace those of `merged` from next[0].index on.
// REQUIRES: next is empty or next[0].index <= merged.back().index + 1.
void MergeEntries(std::vector<raftpb::Entry>* merged, std::vector<raftpb::Entry> next);

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_LOG_WRITER_H_
