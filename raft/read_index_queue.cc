#include "raft/read_index_queue.h"

#include <utility>

#include "glog/logging.h"

namespace raftkv::raft {

void ReadIndexQueue::Add(std::string context, uint64_t from, uint64_t index,
                         uint64_t round) {
  CHECK(queue_.empty() || queue_.back().round <= round)
      << "read rounds must not go backwards";
  queue_.push_back(ReadRequest{std::move(context), from, index, round});
}

void ReadIndexQueue::AddAwaitingCommit(std::string context, uint64_t from) {
  awaiting_commit_.push_back(ReadRequest{std::move(context), from, 0, 0});
}

void ReadIndexQueue::AdmitAwaitingCommit(uint64_t index, uint64_t round) {
  for (auto& r : awaiting_commit_) Add(std::move(r.context), r.from, index, round);
  awaiting_commit_.clear();
}

std::vector<ReadRequest> ReadIndexQueue::Release(uint64_t confirmed_round) {
  std::vector<ReadRequest> out;
  while (!queue_.empty() && queue_.front().round <= confirmed_round) {
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return out;
}

std::vector<ReadRequest> ReadIndexQueue::TakeAll() {
  std::vector<ReadRequest> out(std::make_move_iterator(queue_.begin()),
                               std::make_move_iterator(queue_.end()));
  for (auto& r : awaiting_commit_) out.push_back(std::move(r));
  queue_.clear();
  awaiting_commit_.clear();
  return out;
}

}  // namespace raftkv::raft
