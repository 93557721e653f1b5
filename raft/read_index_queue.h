// ReadIndexQueue: the leader's linearizable reads awaiting confirmation
// (Raft dissertation §6.4).
//
// A read is served at the commit index it arrived at (its read index), once
// the leader has shown it was still leader after the read arrived: a
// majority answered a heartbeat round sent after it. Rounds are numbered by
// the leader and only grow, so one confirmed round releases every read
// queued for it or an earlier one: one heartbeat round serves a batch.
//
// Reads that arrive before the leader has committed an entry of its own term
// do not yet know a safe read index (the commit index may lag what earlier
// leaders committed, §6.4 step 1); they wait in a separate list.
#ifndef RAFTKV_RAFT_READ_INDEX_QUEUE_H_
#define RAFTKV_RAFT_READ_INDEX_QUEUE_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace raftkv::raft {

struct ReadRequest {
  std::string context;  // the requester's unique id for this read
  uint64_t from = 0;    // the node that asked (the leader itself, or a follower)
  uint64_t index = 0;   // read index: commit index when admitted
  uint64_t round = 0;   // heartbeat round that must confirm it
};

class ReadIndexQueue {
 public:
  // Queues a read at `index`, to be released when `round` is confirmed.
  // REQUIRES: round >= the round of every read already queued.
  void Add(std::string context, uint64_t from, uint64_t index, uint64_t round);

  // Holds a read until the leader commits an entry of its term.
  void AddAwaitingCommit(std::string context, uint64_t from);
  bool HasAwaitingCommit() const { return !awaiting_commit_.empty(); }
  // Moves every held read into the queue at `index`, confirmed by `round`.
  void AdmitAwaitingCommit(uint64_t index, uint64_t round);

  // Removes and returns the reads whose round <= confirmed_round, in order.
  std::vector<ReadRequest> Release(uint64_t confirmed_round);

  // Removes and returns every read (the node lost leadership).
  std::vector<ReadRequest> TakeAll();

  bool empty() const { return queue_.empty() && awaiting_commit_.empty(); }
  size_t size() const { return queue_.size() + awaiting_commit_.size(); }
  // The round of the newest queued read, 0 if none.
  uint64_t LastRound() const { return queue_.empty() ? 0 : queue_.back().round; }

 private:
  std::deque<ReadRequest> queue_;  // rounds non-decreasing front to back
  std::vector<ReadRequest> awaiting_commit_;
};

}  // namespace raftkv::raft

#endif  // RAFTKV_RAFT_READ_INDEX_QUEUE_H_
