#include "server/hash_checker.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "storage/byte_pacer.h"
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
  if (bytes_per_sec != 0 && bytes_per_sec < (64 << 10)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HashCheckerOptions.bytes_per_sec is ", bytes_per_sec, "; 0 or at least 65536"));
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
  stop_requested_.store(true);
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
      mu_.AwaitWithTimeout(absl::Condition(&ready),
                           open_.empty() ? absl::Milliseconds(200) : absl::Milliseconds(500));
      if (stop_) return;
      index = pending_index_;
      view = std::move(pending_);
    }
    MaybePropose();
    if (view != nullptr) {
      storage::PacerClock clock;
      clock.sleep = [this](absl::Duration d) {  // false once Stop() is called
        absl::MutexLock l(&mu_);
        mu_.AwaitWithTimeout(absl::Condition(&stop_), d);
        return !stop_;
      };
      storage::BytePacer pacer(options_.bytes_per_sec, std::move(clock));
      absl::StatusOr<uint64_t> h = KvStateMachine::StateHash(
          *view, &stop_requested_, [&pacer](size_t bytes) { return pacer.Account(bytes); });
      view.reset();
      if (h.ok()) {
        {
          absl::MutexLock l(&mu_);
          hashes_.emplace_back(index, *h);
          while (hashes_.size() > kKeptHashes) hashes_.pop_front();
        }
        open_.push_back({index, *h, {}, absl::Now() + options_.answer_timeout});
        while (open_.size() > kKeptHashes) open_.pop_front();
      } else if (absl::IsDataLoss(h.status())) {
        alarms_->Raise(AlarmType::kCorrupt,
                       absl::StrCat("reading the state at index ", index,
                                    " for a hash check: ", h.status().message()));
      } else if (!absl::IsCancelled(h.status())) {
        LOG(ERROR) << "hash check at index " << index << ": " << h.status();
      }
    }
    for (auto it = open_.begin(); it != open_.end();) {
      it = Poll(&*it) ? open_.erase(it) : it + 1;
    }
  }
}

bool HashChecker::Poll(OpenCheck* check) {
  const raft::Status st = node_->RaftStatus();
  const std::vector<uint64_t> voters(st.conf_state.voters().begin(),
                                     st.conf_state.voters().end());
  for (uint64_t v : voters) {
    if (check->hash_of.count(v) > 0) continue;
    if (v == options_.self_id) {
      check->hash_of[v] = check->mine;
      continue;
    }
    auto h = options_.ask(v, check->index);
    if (h.ok() && h->has_value()) check->hash_of[v] = **h;
  }
  // A member that differs from a majority says so at once; otherwise the
  // check waits until every voter answered, to name any that differs.
  const Verdict v = Decide(voters, check->hash_of);
  const bool all = check->hash_of.size() >= voters.size();
  if ((v.majority.has_value() && check->mine != *v.majority) || all ||
      absl::Now() > check->give_up) {
    Conclude(*check, voters);
    return true;
  }
  return false;
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

void HashChecker::Conclude(const OpenCheck& check, const std::vector<uint64_t>& voters) {
  const uint64_t index = check.index;
  const uint64_t mine = check.mine;
  std::map<uint64_t, uint64_t> hash_of = check.hash_of;
  const Verdict verdict = Decide(voters, hash_of);
  if (verdict.majority.has_value()) {
    if (mine != *verdict.majority) {
      alarms_->Raise(AlarmType::kCorrupt,
                     absl::StrCat("the state at index ", index, " hashes to ", mine,
                                  " here but to ", *verdict.majority,
                                  " on a majority of the voters: this node's data differ. "
                                  "Remove it (kvctl member remove ", options_.self_id,
                                  ") and add a fresh node with --join"));
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
                                "): which data are right cannot be told, so the cluster "
                                "takes no writes until an operator acts (docs/INTEGRITY.md)"));
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
