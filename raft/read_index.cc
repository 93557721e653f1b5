// Linearizable reads without log writes: ReadIndex and leases (§6.4).
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "raft/quorum.h"
#include "raft/raft.h"

namespace raftkv::raft {

using raftpb::Message;

absl::Status Raft::ReadIndex(std::string context) {
  if (role_ == Role::kLeader) {
    Message m;  // served as if this node had asked itself
    m.set_from(id_);
    m.set_context(std::move(context));
    HandleReadIndexRequest(m);
    DebugCheck();
    return absl::OkStatus();
  }
  if (leader_ == 0) return absl::UnavailableError("no leader known");
  if (!forwarded_reads_.emplace(context, ticks_).second) {
    return absl::AlreadyExistsError("read context already outstanding");
  }
  Message m;
  m.set_type(raftpb::MSG_READ_INDEX);
  m.set_to(leader_);
  m.set_context(std::move(context));
  Send(std::move(m));
  DebugCheck();
  return absl::OkStatus();
}

void Raft::HandleReadIndexRequest(const Message& m) {
  // §6.4 step 1: the commit index is a safe read index only once this
  // leader has committed an entry of its own term.
  if (log_.committed() < term_start_index_) {
    reads_.AddAwaitingCommit(m.context(), m.from());
    return;
  }
  ReadRequest r{m.context(), m.from(), log_.committed(), 0};
  if (conf_state().voters_size() == 1 && IsVoterId(id_)) {
    RespondToRead(r);  // the only voter: nobody else can be leader
    return;
  }
  if (LeaseValid()) {
    RespondToRead(r);  // §6.4.1: within the lease no other leader exists
    return;
  }
  // §6.4 steps 2-3: confirm leadership with a heartbeat round sent after
  // the read arrived. Reads share rounds: while one is in flight, newer
  // reads wait for the next, broadcast as soon as that one is confirmed.
  reads_.Add(std::move(r.context), r.from, r.index, round_ + 1);
  round_wanted_ = true;
  if (confirmed_round_ == round_) StartReadRound();
}

void Raft::StartReadRound() { BroadcastHeartbeat(); }

void Raft::ExpireForwardedReads() {
  // The leader may have dropped them (lost messages, lost leadership
  // without a term change seen here): let the caller retry.
  for (auto it = forwarded_reads_.begin(); it != forwarded_reads_.end();) {
    if (it->second + 2 * config_.election_ticks <= ticks_) {
      dropped_reads_.push_back(it->first);
      it = forwarded_reads_.erase(it);
    } else {
      ++it;
    }
  }
}

void Raft::BroadcastHeartbeat() {
  ++round_;
  round_wanted_ = false;
  // Rounds sent more than an election timeout ago can no longer start a
  // lease; forget them so an unconfirmed leader's map stays bounded.
  for (auto it = round_sent_tick_.begin(); it != round_sent_tick_.end();) {
    auto cur = it++;
    if (cur->second + config_.election_ticks < ticks_) round_sent_tick_.erase(cur);
  }
  round_sent_tick_[round_] = ticks_;
  for (const auto& [id, pr] : progress_) {
    if (id != id_) SendHeartbeat(id);
  }
  // The leader's own acknowledgement of the round is immediate.
  HandleHeartbeatResponse(Message());
}

void Raft::HandleHeartbeatResponse(const Message& m) {
  if (m.from() != 0) {
    auto it = progress_.find(m.from());
    if (it == progress_.end()) return;
    Progress& pr = it->second;
    pr.recent_active = true;
    pr.ResumeProbe();
    // A follower behind (e.g. restarted, having lost a pipelined window)
    // gets an append even if empty: its rejection restarts probing. A full
    // window of lost appends would pause it for good (only acknowledgements
    // free the window): probe again from match.
    if (pr.state() == ProgressState::kReplicate && pr.inflights().Full()) pr.BecomeProbe();
    if (pr.match() < log_.LastIndex()) SendAppend(m.from(), true);
    if (m.read_round() <= pr.acked_round) return;
    pr.acked_round = m.read_round();
  }
  const uint64_t confirmed = MajorityValue(conf_state().voters(), [&](uint64_t id) {
    if (id == id_) return round_;
    auto it = progress_.find(id);
    return it == progress_.end() ? uint64_t{0} : it->second.acked_round;
  });
  if (confirmed <= confirmed_round_) return;
  confirmed_round_ = confirmed;
  // The lease runs from the moment the confirmed round was sent.
  auto sent = round_sent_tick_.find(confirmed);
  if (sent != round_sent_tick_.end()) {
    const auto lease = static_cast<uint64_t>((config_.election_ticks - 1) *
                                             (1.0 - config_.max_clock_drift));
    lease_until_tick_ = std::max(lease_until_tick_, sent->second + lease);
  }
  for (auto it = round_sent_tick_.begin(); it != round_sent_tick_.end();) {
    auto cur = it++;
    if (cur->first <= confirmed) round_sent_tick_.erase(cur);
  }
  ReleaseConfirmedReads();
  if (round_wanted_ && confirmed_round_ == round_) StartReadRound();
}

void Raft::ReleaseConfirmedReads() {
  for (const ReadRequest& r : reads_.Release(confirmed_round_)) RespondToRead(r);
}

void Raft::RespondToRead(const ReadRequest& r) {
  if (r.from == id_) {
    read_states_.push_back(ReadState{r.index, r.context});
    return;
  }
  Message m;
  m.set_type(raftpb::MSG_READ_INDEX_RESP);
  m.set_to(r.from);
  m.set_index(r.index);
  m.set_context(r.context);
  Send(std::move(m));
}

void Raft::HandleReadIndexResponse(const Message& m) {
  auto it = forwarded_reads_.find(m.context());
  if (it == forwarded_reads_.end()) return;  // expired or dropped meanwhile
  forwarded_reads_.erase(it);
  read_states_.push_back(ReadState{m.index(), m.context()});
}

void Raft::DropPendingReads() {
  for (ReadRequest& r : reads_.TakeAll()) {
    if (r.from == id_) dropped_reads_.push_back(std::move(r.context));
  }
  round_sent_tick_.clear();
  lease_until_tick_ = 0;
}

bool Raft::LeaseValid() const {
  // Revoked during a transfer: the target campaigns with a vote that
  // overrides the followers' promise not to elect anyone else.
  return config_.read_mode == ReadMode::kLeaseBased && role_ == Role::kLeader &&
         lead_transferee_ == 0 && !timeout_now_sent_ && ticks_ < lease_until_tick_;
}

}  // namespace raftkv::raft
