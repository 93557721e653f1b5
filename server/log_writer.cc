#include "server/log_writer.h"

#include <pthread.h>

#include <utility>

#include "glog/logging.h"
#include "server/storage_failure.h"
#include "server/corruption_guard.h"

namespace raftkv::server {

void MergeEntries(std::vector<raftpb::Entry>* merged, std::vector<raftpb::Entry> next) {
  if (next.empty()) return;
  if (merged->empty()) {
    *merged = std::move(next);
    return;
  }
  const uint64_t first = next.front().index();
  const uint64_t merged_first = merged->front().index();
  CHECK_LE(first, merged->back().index() + 1) << "queued entries leave a hole";
  if (first <= merged_first) {
    // Replaces everything merged so far (and, in the store, from `first`).
    *merged = std::move(next);
    return;
  }
  merged->resize(first - merged_first);
  merged->insert(merged->end(), std::make_move_iterator(next.begin()),
                 std::make_move_iterator(next.end()));
}

LogWriter::LogWriter(storage::LogStore* store, MessageSender* transport,
                     PersistedFn on_persisted)
    : store_(store), transport_(transport), on_persisted_(std::move(on_persisted)) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "log-writer");  // for top -H and perf
    Run();
  });
}

LogWriter::~LogWriter() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void LogWriter::Queue(std::vector<raftpb::Entry> entries,
                      std::optional<raftpb::HardState> hard_state,
                      std::vector<raftpb::Message> persisted_messages) {
  const bool nothing_to_write = entries.empty() && !hard_state.has_value();
  if (nothing_to_write && persisted_messages.empty()) return;
  {
    absl::MutexLock l(&mu_);
    if (!nothing_to_write || !IdleLocked()) {
      queue_.push_back(
          Request{std::move(entries), std::move(hard_state), std::move(persisted_messages)});
      return;
    }
  }
  // Idle, and only this thread queues: everything queued before is durable.
  transport_->Send(std::move(persisted_messages));
}

void LogWriter::WaitIdle() {
  absl::MutexLock l(&mu_);
  mu_.Await(absl::Condition(this, &LogWriter::IdleLocked));
}

uint64_t LogWriter::writes() const {
  absl::MutexLock l(&mu_);
  return writes_;
}

void LogWriter::Run() {
  while (true) {
    std::deque<Request> batch;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(this, &LogWriter::HasWorkLocked));
      if (queue_.empty()) break;  // stopping, and everything is written
      std::swap(batch, queue_);
      busy_ = true;
    }
    Write(std::move(batch));
    absl::MutexLock l(&mu_);
    busy_ = false;
    ++writes_;
  }
}

void LogWriter::Write(std::deque<Request> batch) {
  std::vector<raftpb::Entry> entries;
  std::optional<raftpb::HardState> hard_state;
  std::vector<raftpb::Message> messages;
  int entry_writes = 0;
  for (Request& r : batch) {
    if (!r.entries.empty()) ++entry_writes;
    MergeEntries(&entries, std::move(r.entries));
    if (r.hard_state) hard_state = std::move(r.hard_state);
    for (auto& m : r.messages) messages.push_back(std::move(m));
  }
  absl::Status s = store_->Append(entries, hard_state ? &*hard_state : nullptr);
  if (!s.ok()) {
    ExitIfCorrupt(0, "persisting the raft log", s);  // damaged data: exit status 1
    StoreWriteFailed(*store_, "persisting the raft log", s);
  }
  transport_->Send(std::move(messages));
  if (!entries.empty()) {
    on_persisted_(entries.back().index(), entries.back().term(), entry_writes);
  }
}

}  // namespace raftkv::server
