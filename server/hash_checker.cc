#include "server/hash_checker.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "server/state_machine.h"

namespace raftkv::server {
namespace {

constexpr size_t kKeptHashes = 8;

}  // namespace

absl::Status HashCheckerOptions::Validate() const {
  if (self_id == 0) return absl::InvalidArgumentError("HashCheckerOptions.self_id is 0");
  if (!ask) return absl::InvalidArgumentError("HashCheckerOptions.ask is empty");
  if (interval < absl::ZeroDuration() || first_delay < absl::ZeroDuration() ||
      answer_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("HashCheckerOptions: negative duration");
  }
  return absl::OkStatus();
}

HashChecker::HashChecker(HashCheckerOptions options, Node* node, Alarms* alarms)
    : options_(std::move(options)), node_(node), alarms_(alarms) {}

HashChecker::~HashChecker() { Stop(); }

void HashChecker::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void HashChecker::Stop() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void HashChecker::OnCheckpoint(uint64_t index, std::unique_ptr<storage::DataSnapshot> view) {
  absl::MutexLock l(&mu_);
  pending_index_ = index;
  pending_ = std::move(view);  // an older one not hashed yet is dropped
}

std::vector<std::pair<uint64_t, uint64_t>> HashChecker::Hashes() const {
  absl::MutexLock l(&mu_);
  return {hashes_.begin(), hashes_.end()};
}

std::optional<uint64_t> HashChecker::HashAt(uint64_t index) const {
  absl::MutexLock l(&mu_);
  for (const auto& [i, h] : hashes_) {
    if (i == index) return h;
  }
  return std::nullopt;
}

void HashChecker::Loop() {
  while (true) {
    uint64_t index = 0;
    std::unique_ptr<storage::DataSnapshot> view;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_ || pending_ != nullptr; };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(200));
      if (stop_) return;
      index = pending_index_;
      view = std::move(pending_);
    }
    MaybePropose();
    if (view == nullptr) continue;
    absl::StatusOr<uint64_t> h = KvStateMachine::StateHash(*view);
    view.reset();
    if (!h.ok()) {
      // A read error here is the corruption guard's to report (it raised
      // CORRUPT when the read failed, if it was DataLoss).
      LOG(ERROR) << "hash check at index " << index << ": " << h.status();
      continue;
    }
    {
      absl::MutexLock l(&mu_);
      hashes_.emplace_back(index, *h);
      while (hashes_.size() > kKeptHashes) hashes_.pop_front();
    }
    Compare(index, *h);
  }
}

void HashChecker::MaybePropose() {
  if (!node_->is_leader()) {
    proposed_term_ = 0;
    return;
  }
  const absl::Time now = absl::Now();
  const uint64_t term = node_->term();
  if (term != proposed_term_) {
    proposed_term_ = term;
    next_proposal_ = now + options_.first_delay;
  }
  if (now < next_proposal_) return;
  next_proposal_ = options_.interval > absl::ZeroDuration() ? now + options_.interval
                                                           : absl::InfiniteFuture();
  node_->Propose(KvStateMachine::HashCheckCommand(), now + absl::Seconds(10),
                 [](absl::StatusOr<kvpb::WriteResult> r) {
                   LOG_IF(WARNING, !r.ok()) << "proposing a hash check: " << r.status();
                 });
}

void HashChecker::Compare(uint64_t index, uint64_t mine) {
  const raft::Status st = node_->RaftStatus();
  std::vector<uint64_t> voters(st.conf_state.voters().begin(), st.conf_state.voters().end());
  std::map<uint64_t, uint64_t> hash_of;  // voter -> its hash at index
  bool self_voter = false;
  for (uint64_t v : voters) self_voter |= v == options_.self_id;
  if (self_voter) hash_of[options_.self_id] = mine;
  const absl::Time give_up = absl::Now() + options_.answer_timeout;
  while (true) {
    for (uint64_t v : voters) {
      if (hash_of.count(v) > 0) continue;
      auto h = options_.ask(v, index);
      if (h.ok() && h->has_value()) hash_of[v] = **h;
    }
    // A member that differs from a majority says so at once; the wait goes
    // on until every voter answered, to name any other that differs.
    const Verdict v = Decide(voters, hash_of);
    if (v.majority.has_value() && mine != *v.majority) break;
    if (hash_of.size() == voters.size() || absl::Now() > give_up) break;
    {
      absl::MutexLock l(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(500))) return;
    }
    MaybePropose();
  }
  const Verdict verdict = Decide(voters, hash_of);
  if (verdict.majority.has_value()) {
    if (mine != *verdict.majority) {
      alarms_->Raise(AlarmType::kCorrupt,
                     absl::StrCat("the state at index ", index, " hashes to ", mine,
                                  " here but to ", *verdict.majority,
                                  " on a majority of the voters: this node's data differ"));
    }
    for (uint64_t v : verdict.differing) {
      LOG(ERROR) << "hash check at index " << index << ": node " << v << " has "
                 << hash_of[v] << ", a majority of the voters " << *verdict.majority
                 << ": node " << v << "'s data differ";
    }
    VLOG(1) << "hash check at index " << index << ": a majority of the voters agree";
    return;
  }
  if (verdict.no_majority) {
    std::vector<std::string> parts;
    for (const auto& [v, h] : hash_of) parts.push_back(absl::StrCat(v, ":", h));
    alarms_->Raise(AlarmType::kCorrupt,
                   absl::StrCat("no majority of the voters agrees on the state at index ", index,
                                " (node:hash ", absl::StrJoin(parts, " "),
                                "): which data are right cannot be told; an operator must act"));
    return;
  }
  LOG(WARNING) << "hash check at index " << index << ": only " << hash_of.size() << " of "
               << voters.size() << " voters answered within " << options_.answer_timeout
               << "; no verdict";
}

HashChecker::Verdict HashChecker::Decide(const std::vector<uint64_t>& voters,
                                         const std::map<uint64_t, uint64_t>& hash_of) {
  Verdict out;
  std::map<uint64_t, size_t> count;  // hash -> voters holding it
  size_t answered = 0;
  for (uint64_t v : voters) {
    auto it = hash_of.find(v);
    if (it == hash_of.end()) continue;
    ++answered;
    ++count[it->second];
  }
  const size_t quorum = voters.size() / 2 + 1;
  for (const auto& [h, n] : count) {
    if (n >= quorum) out.majority = h;
  }
  if (out.majority.has_value()) {
    for (uint64_t v : voters) {
      auto it = hash_of.find(v);
      if (it != hash_of.end() && it->second != *out.majority) out.differing.push_back(v);
    }
  } else {
    out.no_majority = answered == voters.size() && count.size() > 1;
  }
  return out;
}

}  // namespace raftkv::server
