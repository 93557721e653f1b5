// Log replication, commitment, membership and leadership transfer.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "raft/quorum.h"
#include "raft/raft.h"

namespace raftkv::raft {

using raftpb::Message;

absl::StatusOr<std::vector<EntryId>> Raft::Propose(const std::vector<std::string>& data) {
  if (role_ != Role::kLeader) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", id_, " is not the leader (leader: ", leader_, ")"));
  }
  if (lead_transferee_ != 0) {
    return absl::UnavailableError(absl::StrCat(
        "leadership transfer to ", lead_transferee_, " in progress"));
  }
  std::vector<raftpb::Entry> entries(data.size());
  std::vector<EntryId> ids;
  ids.reserve(data.size());
  uint64_t index = log_.LastIndex();
  for (size_t k = 0; k < data.size(); ++k) {
    entries[k].set_data(data[k]);
    ids.push_back(EntryId{++index, term_});
  }
  AppendEntries(std::move(entries));
  BroadcastAppend();
  DebugCheck();
  return ids;
}

absl::StatusOr<EntryId> Raft::Propose(std::string data) {
  auto ids = Propose(std::vector<std::string>{std::move(data)});
  if (!ids.ok()) return ids.status();
  return ids->front();
}

absl::StatusOr<EntryId> Raft::ProposeConfChange(const raftpb::ConfChange& cc) {
  if (role_ != Role::kLeader) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", id_, " is not the leader (leader: ", leader_, ")"));
  }
  if (lead_transferee_ != 0) {
    return absl::UnavailableError("leadership transfer in progress");
  }
  if (log_.committed() < term_start_index_) {
    // The correction to single-server changes: a leader first commits an
    // entry of its own term, so a change it lost from a prior term cannot
    // combine with this one into non-overlapping majorities.
    return absl::FailedPreconditionError(
        "the leader has not committed an entry of its term yet; retry");
  }
  if (config_log_.LatestIndex() > log_.committed()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "another membership change (entry ", config_log_.LatestIndex(),
        ") is in progress"));
  }
  auto next = ApplyConfChange(conf_state(), cc);
  if (!next.ok()) return next.status();
  raftpb::ConfChange recorded = cc;
  *recorded.mutable_result() = std::move(*next);
  raftpb::Entry e;
  e.set_type(raftpb::ENTRY_CONF_CHANGE);
  e.set_data(recorded.SerializeAsString());
  const EntryId id{log_.LastIndex() + 1, term_};
  AppendEntries({std::move(e)});
  BroadcastAppend();
  DebugCheck();
  return id;
}

void Raft::AppendEntries(std::vector<raftpb::Entry> entries) {
  uint64_t index = log_.LastIndex();
  for (auto& e : entries) {
    e.set_index(++index);
    e.set_term(term_);
  }
  std::vector<raftpb::Entry> conf;
  for (const auto& e : entries) {
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) conf.push_back(e);
  }
  log_.Append(std::move(entries));
  // §4.1: a configuration is in effect as soon as it is in the log.
  if (!conf.empty()) ApplyConfigFromLog(conf);
}

void Raft::BroadcastAppend() {
  for (auto& [id, pr] : progress_) {
    if (id != id_) SendAppend(id, /*send_if_empty=*/true);
  }
}

bool Raft::SendAppend(uint64_t to, bool send_if_empty) {
  auto it = progress_.find(to);
  if (it == progress_.end()) return false;
  Progress& pr = it->second;
  if (pr.IsPaused()) return false;
  const uint64_t prev = pr.next() - 1;
  absl::StatusOr<uint64_t> prev_term = log_.Term(prev);
  absl::StatusOr<std::vector<raftpb::Entry>> ents;
  if (prev_term.ok()) ents = log_.Slice(pr.next(), log_.LastIndex() + 1, config_.max_msg_bytes);
  const absl::Status err = !prev_term.ok() ? prev_term.status() : ents.status();
  if (!err.ok() && err.code() != absl::StatusCode::kFailedPrecondition) {
    // Not "compacted": a storage read error. Retry on the next heartbeat.
    LOG_EVERY_N(WARNING, 100) << "raft " << id_ << ": reading the log for " << to
                              << ": " << err;
    return false;
  }
  if (!err.ok()) {
    // The entries the follower needs were compacted: send a snapshot (§7),
    // but only to a follower that is known to be alive.
    if (!pr.recent_active) return false;
    absl::StatusOr<raftpb::Snapshot> snap = stable_->GetSnapshot();
    if (!snap.ok()) {
      LOG_EVERY_N(WARNING, 100) << "raft " << id_ << ": snapshot for " << to
                                << " unavailable: " << snap.status();
      return false;
    }
    Message m;
    m.set_type(raftpb::MSG_SNAPSHOT);
    m.set_to(to);
    *m.mutable_snapshot() = std::move(*snap);
    pr.BecomeSnapshot(m.snapshot().metadata().index());
    LOG(INFO) << "raft " << id_ << ": sending snapshot at "
              << m.snapshot().metadata().index() << " to " << to;
    Send(std::move(m));
    return true;
  }
  if (ents->empty() && !send_if_empty) return false;
  Message m;
  m.set_type(raftpb::MSG_APPEND);
  m.set_to(to);
  m.set_index(prev);
  m.set_log_term(*prev_term);
  m.set_commit(log_.committed());
  const uint64_t last = ents->empty() ? prev : ents->back().index();
  const bool carried = !ents->empty();
  for (auto& e : *ents) *m.add_entries() = std::move(e);
  pr.SentEntries(last, carried);
  Send(std::move(m));
  return true;
}

void Raft::SendHeartbeat(uint64_t to) {
  const Progress& pr = progress_.at(to);
  Message m;
  m.set_type(raftpb::MSG_HEARTBEAT);
  m.set_to(to);
  // The follower may not hold entries up to our commit index yet.
  m.set_commit(std::min(pr.match(), log_.committed()));
  m.set_read_round(round_);
  Send(std::move(m));
}

void Raft::HandleAppend(const Message& m) {
  if (m.index() < log_.committed()) {
    Message r;
    r.set_type(raftpb::MSG_APPEND_RESP);
    r.set_to(m.from());
    r.set_index(log_.committed());
    Send(std::move(r));
    return;
  }
  std::vector<raftpb::Entry> ents(m.entries().begin(), m.entries().end());
  const uint64_t old_commit = log_.committed();
  uint64_t truncated = 0;
  std::optional<uint64_t> last = log_.MaybeAppend(m.index(), m.log_term(), m.commit(),
                                                  ents, &truncated);
  Message r;
  r.set_type(raftpb::MSG_APPEND_RESP);
  r.set_to(m.from());
  if (last) {
    if (truncated != 0 && config_log_.LatestIndex() >= truncated) {
      config_log_.TruncateFrom(truncated);
      OnConfigChanged();
    }
    ApplyConfigFromLog(ents);
    if (log_.committed() != old_commit) OnCommitAdvanced();
    if (m.commit_only() && m.entries_size() == 0) return;  // nothing to tell the leader
    r.set_index(*last);
  } else {
    // Reject with a hint for fast backtracking (§5.3): our last index at or
    // below the probe whose term is <= the leader's term there.
    auto [hint, hint_term] =
        log_.FindConflictByTerm(std::min(m.index(), log_.LastIndex()), m.log_term());
    r.set_index(m.index());
    r.set_reject(true);
    r.set_reject_hint(hint);
    r.set_reject_term(hint_term);
  }
  Send(std::move(r));
}

void Raft::HandleHeartbeat(const Message& m) {
  if (m.commit() > log_.committed()) {
    log_.CommitTo(m.commit());
    OnCommitAdvanced();
  }
  Message r;
  r.set_type(raftpb::MSG_HEARTBEAT_RESP);
  r.set_to(m.from());
  r.set_read_round(m.read_round());
  Send(std::move(r));
}

void Raft::HandleSnapshot(const Message& m) {
  const auto& meta = m.snapshot().metadata();
  Message r;
  r.set_type(raftpb::MSG_APPEND_RESP);
  r.set_to(m.from());
  if (meta.index() <= log_.committed()) {
    r.set_index(log_.committed());  // older than what we have: ignore it
  } else if (log_.MatchTerm(meta.index(), meta.term())) {
    // We hold the snapshot's last entry: just fast-forward the commit.
    log_.CommitTo(meta.index());
    OnCommitAdvanced();
    r.set_index(log_.committed());
  } else {
    LOG(INFO) << "raft " << id_ << ": installing snapshot at " << meta.index()
              << " term " << meta.term();
    log_.Restore(m.snapshot());
    config_log_.Reset(meta.index(), meta.conf_state());
    OnConfigChanged();
    r.set_index(meta.index());
  }
  Send(std::move(r));
}

void Raft::HandleAppendResponse(const Message& m) {
  auto it = progress_.find(m.from());
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  if (m.reject()) {
    uint64_t hint = m.reject_hint();
    if (m.reject_term() > 0) {
      // Skip every entry of ours in a term the follower does not have there.
      hint = log_.FindConflictByTerm(m.reject_hint(), m.reject_term()).first;
    }
    if (pr.MaybeDecrTo(m.index(), hint)) {
      if (pr.state() == ProgressState::kReplicate) pr.BecomeProbe();
      SendAppend(m.from(), true);
    }
    return;
  }
  const bool was_paused = pr.IsPaused();
  if (pr.state() == ProgressState::kSnapshot && m.index() >= pr.pending_snapshot()) {
    // The follower is at or past the snapshot (it may have needed none).
    pr.MaybeUpdate(m.index());
    pr.BecomeProbe();
    SendAppend(m.from(), false);
    return;
  }
  if (pr.MaybeUpdate(m.index())) {
    if (pr.state() == ProgressState::kProbe) {
      pr.BecomeReplicate();
    } else if (pr.state() == ProgressState::kSnapshot &&
               pr.match() >= pr.pending_snapshot()) {
      pr.BecomeProbe();
    }
    MaybeCommit();
    // Fill the pipeline.
    while (SendAppend(m.from(), false)) {
    }
    if (m.from() == lead_transferee_) MaybeSendTimeoutNow(m.from());
  } else if (was_paused) {
    SendAppend(m.from(), false);
  }
}

void Raft::MaybeCommit() {
  if (role_ != Role::kLeader) return;
  const uint64_t index = MajorityValue(conf_state().voters(), [&](uint64_t id) {
    auto it = progress_.find(id);
    return it == progress_.end() ? uint64_t{0} : it->second.match();
  });
  bool advanced;
  if (config_.unsafe_commit_old_terms) {
    // The planted bug: counting replicas of an old-term entry (Figure 8).
    advanced = index > log_.committed();
    if (advanced) log_.CommitTo(index);
  } else {
    // §5.4.2: only an entry of the current term is committed by counting
    // replicas; earlier ones are committed with it.
    advanced = log_.MaybeCommit(index, term_);
  }
  if (advanced) {
    OnCommitAdvanced();
    if (role_ == Role::kLeader) commit_broadcast_pending_ = true;  // followers learn it
  }
}

void Raft::FlushCommitBroadcast() {
  commit_broadcast_pending_ = false;
  if (role_ != Role::kLeader) return;
  const uint64_t commit = log_.committed();
  std::vector<uint64_t> carried;
  for (Message& m : msgs_) {
    if (m.type() != raftpb::MSG_APPEND || m.term() != term_) continue;
    // §5.3: the follower commits min(leaderCommit, index of its last new
    // entry), so an append built before the commit advanced may carry the
    // newer commit index.
    if (m.commit() < commit) m.set_commit(commit);
    carried.push_back(m.to());
  }
  for (const auto& [id, pr] : progress_) {
    if (id == id_ || std::find(carried.begin(), carried.end(), id) != carried.end()) continue;
    if (!SendAppend(id, /*send_if_empty=*/config_.commit_notices)) continue;
    Message& m = msgs_.back();
    if (m.type() == raftpb::MSG_APPEND && m.to() == id && m.entries_size() == 0 &&
        pr.state() == ProgressState::kReplicate && m.index() == pr.match()) {
      m.set_commit_only(true);
    }
  }
  DebugCheck();
}

void Raft::OnCommitAdvanced() {
  config_log_.CompactTo(log_.committed());
  if (role_ != Role::kLeader) return;
  if (log_.committed() >= term_start_index_ && reads_.HasAwaitingCommit()) {
    reads_.AdmitAwaitingCommit(log_.committed(), round_ + 1);
    round_wanted_ = true;
    if (confirmed_round_ == round_) StartReadRound();
  }
  if (!IsVoterId(id_) && config_log_.LatestIndex() <= log_.committed()) {
    // §4.2.2: a leader that removed itself steps down once the change is
    // committed; hand over to the most up-to-date voter to shorten the gap.
    uint64_t best = 0, best_match = 0;
    for (const auto& [id, pr] : progress_) {
      if (IsVoterId(id) && pr.match() >= best_match) {
        best = id;
        best_match = pr.match();
      }
    }
    LOG(INFO) << "raft " << id_ << ": removed from the configuration, stepping down";
    if (best != 0 && best_match == log_.LastIndex()) {
      timeout_now_sent_ = true;
      Message m;
      m.set_type(raftpb::MSG_TIMEOUT_NOW);
      m.set_to(best);
      Send(std::move(m));
    }
    BecomeFollower(term_, 0);
  }
}

void Raft::ApplyConfigFromLog(const std::vector<raftpb::Entry>& entries) {
  bool changed = false;
  for (const auto& e : entries) {
    if (e.type() != raftpb::ENTRY_CONF_CHANGE || e.index() <= config_log_.LatestIndex()) {
      continue;
    }
    absl::StatusOr<raftpb::ConfChange> cc = DecodeConfChange(e);
    if (!cc.ok() || !cc->has_result()) {
      // Every node adopts the same recorded result, so every node skips a
      // broken entry alike.
      LOG(ERROR) << "raft " << id_ << ": ignoring conf change at " << e.index() << ": "
                 << (cc.ok() ? "no resulting membership" : cc.status().ToString());
      continue;
    }
    config_log_.Append(e.index(), cc->result());
    changed = true;
  }
  if (changed) OnConfigChanged();
}

void Raft::OnConfigChanged() {
  if (role_ != Role::kLeader) return;
  const raftpb::ConfState& cs = conf_state();
  for (auto it = progress_.begin(); it != progress_.end();) {
    auto cur = it++;
    if (!IsMember(cs, cur->first)) progress_.erase(cur);
  }
  auto add = [&](uint64_t id) {
    if (progress_.count(id)) return;
    Progress pr(log_.LastIndex() + 1, config_.max_inflight_msgs);
    pr.recent_active = true;  // a grace period before CheckQuorum counts it
    if (id == id_) {
      pr.MaybeUpdate(log_.StableLastIndex());
      pr.BecomeReplicate();
    }
    progress_.emplace(id, std::move(pr));
  };
  for (uint64_t id : cs.voters()) add(id);
  for (uint64_t id : cs.learners()) add(id);
  if (lead_transferee_ != 0 && !IsVoterId(lead_transferee_)) AbortTransfer();
  MaybeCommit();
}

absl::Status Raft::TransferLeadership(uint64_t target) {
  if (role_ != Role::kLeader) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", id_, " is not the leader (leader: ", leader_, ")"));
  }
  if (target == 0) {
    uint64_t best_match = 0;
    for (const auto& [id, pr] : progress_) {
      if (id != id_ && IsVoterId(id) && (target == 0 || pr.match() > best_match)) {
        target = id;
        best_match = pr.match();
      }
    }
    if (target == 0) {
      return absl::FailedPreconditionError("no other voter to transfer leadership to");
    }
  }
  if (target == id_) return absl::OkStatus();
  if (!IsVoterId(target)) {
    return absl::InvalidArgumentError(absl::StrCat("node ", target, " is not a voter"));
  }
  if (lead_transferee_ == target) return absl::OkStatus();
  AbortTransfer();
  LOG(INFO) << "raft " << id_ << ": transferring leadership to " << target;
  lead_transferee_ = target;
  transfer_elapsed_ = 0;
  // Proposals are refused from now on, so the target can catch up (§3.10).
  if (progress_.at(target).match() == log_.LastIndex()) {
    MaybeSendTimeoutNow(target);
  } else {
    SendAppend(target, true);
  }
  DebugCheck();
  return absl::OkStatus();
}

void Raft::MaybeSendTimeoutNow(uint64_t to) {
  if (to != lead_transferee_) return;
  if (progress_.at(to).match() != log_.LastIndex()) return;
  timeout_now_sent_ = true;
  Message m;
  m.set_type(raftpb::MSG_TIMEOUT_NOW);
  m.set_to(to);
  Send(std::move(m));
}

void Raft::AbortTransfer() {
  lead_transferee_ = 0;
  transfer_elapsed_ = 0;
}

void Raft::ReportUnreachable(uint64_t id) {
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(id);
  // Probe again from the match point (a snapshot in flight is lost too).
  if (it != progress_.end() && it->second.state() != ProgressState::kProbe) {
    it->second.BecomeProbe();
  }
}

void Raft::ReportSnapshot(uint64_t id, bool ok) {
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(id);
  if (it == progress_.end() || it->second.state() != ProgressState::kSnapshot) return;
  LOG(INFO) << "raft " << id_ << ": snapshot to " << id << (ok ? " sent" : " failed");
  // Either way probe next: after success the follower's response moves it
  // on; after failure the probe falls back to a new snapshot.
  it->second.BecomeProbe();
  DebugCheck();
}

}  // namespace raftkv::raft
