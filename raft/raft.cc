#include "raft/raft.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "raft/quorum.h"

namespace raftkv::raft {

using raftpb::Message;
using raftpb::MessageType;

const char* RoleName(Role r) {
  switch (r) {
    case Role::kFollower:
      return "follower";
    case Role::kPreCandidate:
      return "pre-candidate";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "?";
}

absl::Status Config::Validate() const {
  if (id == 0) return absl::InvalidArgumentError("node id must not be 0");
  if (heartbeat_ticks <= 0) {
    return absl::InvalidArgumentError("heartbeat_ticks must be positive");
  }
  if (election_ticks <= heartbeat_ticks) {
    return absl::InvalidArgumentError(
        "election_ticks must be greater than heartbeat_ticks");
  }
  if (max_inflight_msgs == 0) {
    return absl::InvalidArgumentError("max_inflight_msgs must be positive");
  }
  if (max_msg_bytes == 0 || max_committed_bytes_per_ready == 0) {
    return absl::InvalidArgumentError("byte limits must be positive");
  }
  if (read_mode == ReadMode::kLeaseBased && !check_quorum) {
    return absl::InvalidArgumentError("lease-based reads require check_quorum");
  }
  if (max_clock_drift < 0 || max_clock_drift >= 1) {
    return absl::InvalidArgumentError("max_clock_drift must be in [0, 1)");
  }
  return absl::OkStatus();
}

Raft::Raft(const Config& config, const LogReader* log)
    : config_(config),
      id_(config.id),
      stable_(log),
      log_(log, config.max_committed_bytes_per_ready, config.async_storage_writes),
      rng_(config.seed ^ (config.id * 0x9E3779B97F4A7C15ull)) {}

Raft::~Raft() = default;

absl::StatusOr<std::unique_ptr<Raft>> Raft::Create(const Config& config,
                                                   const LogReader* log) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  if (log == nullptr) return absl::InvalidArgumentError("log is null");
  std::unique_ptr<Raft> r(new Raft(config, log));
  if (absl::Status s = r->Restore(); !s.ok()) return s;
  return r;
}

absl::Status Raft::Restore() {
  absl::StatusOr<InitialState> st = stable_->GetInitialState();
  if (!st.ok()) return st.status();
  const raftpb::HardState& hs = st->hard_state;
  if (hs.term() > kMaxTerm) {
    return absl::DataLossError(absl::StrCat("the stored hard state's term ", hs.term(),
                                            " is past the highest term ", kMaxTerm,
                                            ": the raft log's state is corrupt"));
  }
  if (absl::Status s = log_.Init(hs.commit(), config_.applied); !s.ok()) return s;
  term_ = hs.term();
  vote_ = hs.vote();
  prev_hard_ = hs;

  // The configuration in effect is the latest one in the log (§4.1): start
  // from the snapshot's and replay the conf changes in the retained log.
  config_log_.Reset(st->snapshot.index(), st->snapshot.conf_state());
  // The log as this node wrote it: terms never decrease along it (from the
  // snapshot's), and none is past the stored term, which a node raises before
  // it appends an entry of a term. A log that says otherwise was damaged (a
  // record rewritten, a hard state rolled back) and is refused, not used:
  // a node back in an older term could vote twice in a term.
  uint64_t log_term = st->snapshot.term();
  for (uint64_t lo = log_.FirstIndex(); lo <= log_.LastIndex();) {
    auto ents = log_.Slice(lo, log_.LastIndex() + 1, 4 << 20);
    if (!ents.ok()) return ents.status();
    for (const raftpb::Entry& e : *ents) {
      if (e.term() < log_term) {
        return absl::DataLossError(absl::StrCat("the stored log's terms decrease at index ",
                                                e.index(), " (term ", e.term(), " after ",
                                                log_term, "): the raft log's state is corrupt"));
      }
      log_term = e.term();
    }
    ApplyConfigFromLog(*ents);
    lo = ents->back().index() + 1;
  }
  if (log_term > hs.term()) {
    return absl::DataLossError(absl::StrCat("the stored log holds an entry of term ", log_term,
                                            ", past the hard state's term ", hs.term(),
                                            ": the raft log's state is corrupt"));
  }
  config_log_.CompactTo(log_.committed());
  BecomeFollower(term_, 0);
  prev_soft_ = SoftState{leader_, role_};
  LOG(INFO) << "raft " << id_ << ": restored term=" << term_ << " vote=" << vote_
            << " commit=" << log_.committed() << " applied=" << log_.applied()
            << " log=[" << log_.FirstIndex() << "," << log_.LastIndex() << "] "
            << ConfStateString(conf_state());
  return absl::OkStatus();
}

void Raft::DebugCheck() const {
#ifndef NDEBUG
  absl::Status s = CheckInvariants();
  CHECK(s.ok()) << "raft " << id_ << ": invariant broken: " << s;
#endif
}

// ---------------------------------------------------------------- roles

void Raft::ResetRandomizedTimeout() {
  std::uniform_int_distribution<int> d(config_.election_ticks,
                                       2 * config_.election_ticks - 1);
  randomized_election_timeout_ = d(rng_);
}

void Raft::ResetTerm(uint64_t term) {
  if (term != term_) {
    term_ = term;
    vote_ = 0;
    for (const auto& [ctx, tick] : forwarded_reads_) dropped_reads_.push_back(ctx);
    forwarded_reads_.clear();
  }
  leader_ = 0;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedTimeout();
  votes_.clear();
  AbortTransfer();
}

void Raft::BecomeFollower(uint64_t term, uint64_t leader) {
  if (role_ == Role::kLeader) {
    DropPendingReads();
    progress_.clear();
  }
  ResetTerm(term);
  role_ = Role::kFollower;
  leader_ = leader;
}

void Raft::BecomePreCandidate() {
  CHECK(role_ != Role::kLeader) << "leader cannot become pre-candidate";
  // Pre-Vote (§9.6) changes neither term nor vote.
  role_ = Role::kPreCandidate;
  votes_.clear();
  leader_ = 0;
}

void Raft::BecomeCandidate() {
  CHECK(role_ != Role::kLeader) << "leader cannot become candidate";
  ResetTerm(term_ + 1);
  vote_ = id_;
  role_ = Role::kCandidate;
}

void Raft::BecomeLeader() {
  CHECK(role_ == Role::kCandidate) << "only a candidate becomes leader";
  ResetTerm(term_);
  role_ = Role::kLeader;
  leader_ = id_;
  round_ = 0;
  confirmed_round_ = 0;
  round_wanted_ = false;
  round_sent_tick_.clear();
  lease_until_tick_ = 0;
  timeout_now_sent_ = false;
  OnConfigChanged();  // builds progress_ for the members
  // §5.4.2 / §8: a new leader commits a no-op of its own term; until then it
  // neither serves reads nor accepts membership changes.
  term_start_index_ = log_.LastIndex() + 1;
  raftpb::Entry noop;
  AppendEntries({noop});
  LOG(INFO) << "raft " << id_ << ": leader of term " << term_;
  BroadcastAppend();
}

bool Raft::Promotable() const {
  if (log_.unstable_snapshot().has_value()) return false;
  // A voter that the latest configuration removes still campaigns until
  // that change commits (dissertation §4.2.2): it may hold the only copy of
  // the change that a quorum of the new configuration can elect, and it
  // refuses its vote to the others, whose logs are behind. (Its own vote
  // counts only if it is a voter in the latest configuration: TallyVotes.)
  return IsVoterId(id_) || IsVoter(config_log_.base(), id_);
}

// A follower that heard from a leader within the election timeout ignores
// vote requests (CheckQuorum / lease, §6.4.1 and §4.2.3): this is what keeps
// a removed or partitioned node from deposing a healthy leader. In lease
// mode a freshly started node also waits one election timeout, since it may
// have acknowledged a lease before it restarted.
bool Raft::InLease() const {
  if (!config_.check_quorum) return false;
  if (election_elapsed_ >= config_.election_ticks) return false;
  if (leader_ != 0) return true;
  return config_.read_mode == ReadMode::kLeaseBased &&
         ticks_ < static_cast<uint64_t>(config_.election_ticks);
}

void Raft::Campaign() {
  if (role_ == Role::kLeader) return;
  StartElection(config_.pre_vote, /*transfer=*/false);
  DebugCheck();
}

void Raft::StartElection(bool pre_vote, bool transfer) {
  if (!Promotable()) return;
  if (term_ >= kMaxTerm) {
    // An election needs the next term, and terms never wrap: stay a
    // follower. The current leader (if any) keeps leading; no other can be
    // elected.
    uint64_t suppressed = 0;
    if (max_term_log_.Allow(ticks_, 10 * config_.election_ticks, &suppressed)) {
      LOG(ERROR) << "raft " << id_ << ": not campaigning: term " << term_
                 << " is the highest term, so no new leader can be elected"
                 << (suppressed ? absl::StrCat(" (", suppressed, " more times)") : "");
    }
    election_elapsed_ = 0;
    return;
  }
  uint64_t vote_term;
  if (pre_vote) {
    BecomePreCandidate();
    vote_term = term_ + 1;
  } else {
    BecomeCandidate();
    vote_term = term_;
  }
  votes_[id_] = true;
  if (TallyVotes(conf_state().voters(), votes_) == VoteResult::kWon) {
    // A single-voter cluster wins at once.
    if (pre_vote) {
      StartElection(false, transfer);
    } else {
      BecomeLeader();
    }
    return;
  }
  for (uint64_t peer : conf_state().voters()) {
    if (peer == id_) continue;
    Message m;
    m.set_type(pre_vote ? raftpb::MSG_PRE_VOTE : raftpb::MSG_VOTE);
    m.set_to(peer);
    m.set_term(vote_term);
    m.set_index(log_.LastIndex());
    m.set_log_term(log_.LastTerm());
    if (transfer) m.set_context("transfer");
    Send(std::move(m));
  }
}

// ---------------------------------------------------------------- ticks

void Raft::Tick() {
  ++ticks_;
  if (!forwarded_reads_.empty()) ExpireForwardedReads();
  if (role_ == Role::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
  DebugCheck();
}

void Raft::TickElection() {
  ++election_elapsed_;
  if (Promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    StartElection(config_.pre_vote, false);
  }
}

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (lead_transferee_ != 0 && ++transfer_elapsed_ >= config_.election_ticks) {
    LOG(INFO) << "raft " << id_ << ": transfer to " << lead_transferee_ << " timed out";
    AbortTransfer();
  }
  if (election_elapsed_ >= config_.election_ticks) {
    election_elapsed_ = 0;
    if (config_.check_quorum) {
      // CheckQuorum: step down unless a majority was heard from recently.
      const uint64_t active = MajorityValue(conf_state().voters(), [&](uint64_t id) {
        if (id == id_) return uint64_t{1};
        auto it = progress_.find(id);
        return uint64_t{it != progress_.end() && it->second.recent_active};
      });
      if (active == 0) {
        LOG(INFO) << "raft " << id_ << ": lost contact with a quorum, stepping down";
        BecomeFollower(term_, 0);
        return;
      }
      for (auto& [id, pr] : progress_) pr.recent_active = (id == id_);
    }
  }
  if (heartbeat_elapsed_ >= config_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    BroadcastHeartbeat();
  }
}

// ---------------------------------------------------------------- step

absl::Status Raft::Step(const Message& m) {
  absl::Status s = CheckMessage(m);
  if (s.ok()) s = CheckAgainstState(m);
  if (!s.ok()) {
    NoteRejected(m, s);
    DebugCheck();
    return s;
  }
  bool handled = false;
  s = StepByTerm(m, &handled);
  if (s.ok() && !handled) {
    switch (m.type()) {
      case raftpb::MSG_VOTE:
      case raftpb::MSG_PRE_VOTE:
        HandleVoteRequest(m);
        break;
      case raftpb::MSG_VOTE_RESP:
      case raftpb::MSG_PRE_VOTE_RESP:
        HandleVoteResponse(m);
        break;
      case raftpb::MSG_APPEND:
      case raftpb::MSG_HEARTBEAT:
      case raftpb::MSG_SNAPSHOT:
        // Not a leader: CheckAgainstState refused these in the term we lead.
        if (role_ != Role::kFollower) BecomeFollower(term_, m.from());
        leader_ = m.from();
        election_elapsed_ = 0;
        if (m.type() == raftpb::MSG_APPEND) HandleAppend(m);
        if (m.type() == raftpb::MSG_HEARTBEAT) HandleHeartbeat(m);
        if (m.type() == raftpb::MSG_SNAPSHOT) HandleSnapshot(m);
        break;
      case raftpb::MSG_APPEND_RESP:
        if (role_ == Role::kLeader) HandleAppendResponse(m);
        break;
      case raftpb::MSG_HEARTBEAT_RESP:
        if (role_ == Role::kLeader) HandleHeartbeatResponse(m);
        break;
      case raftpb::MSG_TIMEOUT_NOW:
        // §3.10: the leader brought us up to date; campaign at once,
        // skipping Pre-Vote, with a vote that overrides voters' leases.
        if (role_ != Role::kLeader && m.from() == leader_) {
          StartElection(false, /*transfer=*/true);
        }
        break;
      case raftpb::MSG_READ_INDEX:
        if (role_ == Role::kLeader) HandleReadIndexRequest(m);
        break;
      case raftpb::MSG_READ_INDEX_RESP:
        HandleReadIndexResponse(m);
        break;
      default:
        break;
    }
  }
  DebugCheck();
  return s;
}

namespace {

bool FromLeader(const Message& m) {
  return m.type() == raftpb::MSG_APPEND || m.type() == raftpb::MSG_HEARTBEAT ||
         m.type() == raftpb::MSG_SNAPSHOT;
}

}  // namespace

absl::Status Raft::CheckMessage(const Message& m) const {
  if (m.to() != id_) {
    return absl::InvalidArgumentError(
        absl::StrCat("message for node ", m.to(), " delivered to ", id_));
  }
  if (m.from() == 0 || m.from() == id_) {
    return absl::InvalidArgumentError(absl::StrCat("bad sender ", m.from()));
  }
  if (m.type() == raftpb::MSG_UNKNOWN || !raftpb::MessageType_IsValid(m.type())) {
    return absl::InvalidArgumentError(absl::StrCat("bad message type ", m.type()));
  }
  if (m.term() > kMaxTerm) {
    return absl::InvalidArgumentError(
        absl::StrCat("term ", m.term(), " is past the highest term ", kMaxTerm));
  }
  // Leaders and candidates are in a term >= 1 (a candidate raised it), and
  // every entry but the one at index 0 has a term >= 1.
  if (m.term() == 0 && (FromLeader(m) || m.type() == raftpb::MSG_VOTE ||
                        m.type() == raftpb::MSG_PRE_VOTE ||
                        m.type() == raftpb::MSG_TIMEOUT_NOW)) {
    return absl::InvalidArgumentError("a leader's or candidate's message of term 0");
  }
  if (m.type() == raftpb::MSG_APPEND || m.type() == raftpb::MSG_VOTE ||
      m.type() == raftpb::MSG_PRE_VOTE) {
    if (m.log_term() > m.term()) {
      return absl::InvalidArgumentError(absl::StrCat("log term ", m.log_term(),
                                                     " past the message's term ", m.term()));
    }
    if (m.log_term() == 0 && m.index() != 0) {
      return absl::InvalidArgumentError(absl::StrCat("entry ", m.index(), " of term 0"));
    }
  }
  if (m.entries_size() > 0 &&
      m.index() > std::numeric_limits<uint64_t>::max() - m.entries_size()) {
    return absl::InvalidArgumentError(absl::StrCat("entries after index ", m.index()));
  }
  for (int k = 0; k < m.entries_size(); ++k) {
    const raftpb::Entry& e = m.entries(k);
    if (e.index() != m.index() + 1 + k || e.term() == 0 || e.term() > m.term() ||
        (k > 0 && e.term() < m.entries(k - 1).term()) || (k == 0 && e.term() < m.log_term())) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed entries in a message from ", m.from()));
    }
  }
  if (m.type() == raftpb::MSG_SNAPSHOT) {
    const raftpb::SnapshotMetadata& meta = m.snapshot().metadata();
    if (meta.term() > m.term() || (meta.term() == 0 && meta.index() != 0)) {
      return absl::InvalidArgumentError(absl::StrCat("a snapshot at ", meta.index(), " of term ",
                                                     meta.term(), " in a message of term ",
                                                     m.term()));
    }
  }
  if (m.type() == raftpb::MSG_APPEND_RESP && m.reject() && m.reject_hint() > m.index()) {
    // The hint is the follower's last index at or below the rejected one.
    return absl::InvalidArgumentError(absl::StrCat("rejection of ", m.index(),
                                                   " hints at a later index ",
                                                   m.reject_hint()));
  }
  return absl::OkStatus();
}

absl::Status Raft::CheckAgainstState(const Message& m) const {
  // A stale term's message is answered or ignored by StepByTerm whatever it
  // says; the checks below hold for a leader of any term >= ours.
  if (m.term() < term_) return absl::OkStatus();
  auto refuse = [&m](const auto&... why) {
    return absl::FailedPreconditionError(
        absl::StrCat(raftpb::MessageType_Name(m.type()), " of term ", m.term(), ": ", why...));
  };
  if (FromLeader(m) && m.term() == term_ && role_ == Role::kLeader) {
    return refuse("this node leads that term, and a term has one leader (Election Safety, §5.2)");
  }
  const uint64_t committed = log_.committed();
  switch (m.type()) {
    case raftpb::MSG_HEARTBEAT:
      // The leader sends min(match, commit): at most what we acknowledged.
      if (m.commit() > log_.LastIndex()) {
        return refuse("commit index ", m.commit(), " is past this node's last index ",
                      log_.LastIndex(), ", which it never acknowledged");
      }
      break;
    case raftpb::MSG_APPEND:
      // Leader Completeness (§5.4): a leader holds every committed entry,
      // so its entries at or below our commit index are ours.
      // (At the commit index itself a mismatch is rejected as usual, §5.3.)
      if (m.index() < committed && log_.KnownToDiffer(m.index(), m.log_term())) {
        return refuse("entry ", m.index(), " of term ", m.log_term(),
                      " contradicts this node's committed entry there");
      }
      for (const raftpb::Entry& e : m.entries()) {
        if (e.index() > committed) break;
        if (log_.KnownToDiffer(e.index(), e.term())) {
          return refuse("entry ", e.index(), " of term ", e.term(),
                        " would replace this node's committed entry there");
        }
      }
      break;
    case raftpb::MSG_SNAPSHOT: {
      const raftpb::SnapshotMetadata& meta = m.snapshot().metadata();
      if (meta.index() <= committed ? log_.KnownToDiffer(meta.index(), meta.term())
                                    : meta.term() < log_.TermOrZero(committed)) {
        // Past our commit index, the snapshot's last entry follows our
        // committed entries, so its term is not lower (terms never decrease
        // along a log).
        return refuse("a snapshot at ", meta.index(), " of term ", meta.term(),
                      " contradicts this node's entries committed through ", committed);
      }
      break;
    }
    case raftpb::MSG_APPEND_RESP:
      // The leader's log only grows in its term, and it sent nothing past it.
      if (role_ == Role::kLeader && m.term() == term_ &&
          (m.index() > log_.LastIndex() || m.reject_term() > term_)) {
        return refuse(m.reject() ? "rejects index " : "acknowledges index ", m.index(),
                      m.reject() ? absl::StrCat(" (term ", m.reject_term(), ")") : "",
                      ", past this leader's log (last index ", log_.LastIndex(), ", term ",
                      term_, ")");
      }
      break;
    case raftpb::MSG_HEARTBEAT_RESP:
      if (role_ == Role::kLeader && m.term() == term_ && m.read_round() > round_) {
        return refuse("answers heartbeat round ", m.read_round(), ", but the latest sent is ",
                      round_);
      }
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

bool Raft::LogLimiter::Allow(uint64_t tick, uint64_t period, uint64_t* suppressed) {
  if (logged_ && tick < last_tick_ + period) {
    ++suppressed_;
    return false;
  }
  *suppressed = suppressed_;
  suppressed_ = 0;
  logged_ = true;
  last_tick_ = tick;
  return true;
}

void Raft::NoteRejected(const Message& m, const absl::Status& s) {
  ++rejected_messages_;
  uint64_t suppressed = 0;
  if (!reject_log_.Allow(ticks_, 10 * config_.election_ticks, &suppressed)) return;
  LOG(WARNING) << "raft " << id_ << ": dropped a message from " << m.from() << ": " << s
               << " (" << rejected_messages_ << " dropped since start"
               << (suppressed ? absl::StrCat(", ", suppressed, " not logged") : "") << ")";
}

absl::Status Raft::StepByTerm(const Message& m, bool* handled) {
  const bool vote_req = m.type() == raftpb::MSG_VOTE || m.type() == raftpb::MSG_PRE_VOTE;
  if (m.term() > term_) {
    if (vote_req && m.context() != "transfer" && InLease()) {
      *handled = true;  // ignore: we have a live leader
      return absl::OkStatus();
    }
    if (m.type() == raftpb::MSG_PRE_VOTE) return absl::OkStatus();
    if (m.type() == raftpb::MSG_PRE_VOTE_RESP && !m.reject()) {
      return absl::OkStatus();  // a grant for the term we would campaign in
    }
    const bool from_leader = m.type() == raftpb::MSG_APPEND ||
                             m.type() == raftpb::MSG_HEARTBEAT ||
                             m.type() == raftpb::MSG_SNAPSHOT;
    // Figure 2: only a leader's message or a granted vote restarts the
    // election timer. A candidate we refuse must not hold back our own
    // timeout, or candidates that cannot win (stale logs, removed servers)
    // keep the only electable node from ever campaigning.
    const int elapsed = election_elapsed_;
    BecomeFollower(m.term(), from_leader ? m.from() : 0);
    if (!from_leader) election_elapsed_ = elapsed;
    return absl::OkStatus();
  }
  if (m.term() < term_) {
    *handled = true;
    if ((config_.check_quorum || config_.pre_vote) &&
        (m.type() == raftpb::MSG_APPEND || m.type() == raftpb::MSG_HEARTBEAT)) {
      // A stale leader (e.g. after a partition healed): tell it our term so
      // it steps down; with Pre-Vote it could otherwise never learn it.
      Message r;
      r.set_type(raftpb::MSG_APPEND_RESP);
      r.set_to(m.from());
      Send(std::move(r));
    } else if (m.type() == raftpb::MSG_PRE_VOTE) {
      Message r;
      r.set_type(raftpb::MSG_PRE_VOTE_RESP);
      r.set_to(m.from());
      r.set_reject(true);
      Send(std::move(r));
    }
  }
  return absl::OkStatus();
}

void Raft::HandleVoteRequest(const Message& m) {
  const bool pre = m.type() == raftpb::MSG_PRE_VOTE;
  // §5.2: one vote per term (a repeated request from the same candidate is
  // granted again); a pre-vote for a future term binds nothing.
  const bool can_vote = vote_ == m.from() || (vote_ == 0 && leader_ == 0) ||
                        (pre && m.term() > term_);
  // §5.4.1: only for a candidate whose log is at least as up to date.
  const bool grant = can_vote && log_.IsUpToDate(m.index(), m.log_term());
  Message r;
  r.set_type(pre ? raftpb::MSG_PRE_VOTE_RESP : raftpb::MSG_VOTE_RESP);
  r.set_to(m.from());
  r.set_reject(!grant);
  // A granted pre-vote answers in the candidate's future term, so that it
  // is counted; anything else answers in our own term.
  r.set_term(grant ? m.term() : term_);
  if (grant && !pre) {
    election_elapsed_ = 0;
    vote_ = m.from();
  }
  Send(std::move(r));
}

void Raft::HandleVoteResponse(const Message& m) {
  const bool pre = m.type() == raftpb::MSG_PRE_VOTE_RESP;
  if ((pre && role_ != Role::kPreCandidate) || (!pre && role_ != Role::kCandidate)) {
    return;
  }
  votes_.emplace(m.from(), !m.reject());
  switch (TallyVotes(conf_state().voters(), votes_)) {
    case VoteResult::kWon:
      if (pre) {
        StartElection(false, false);
      } else {
        BecomeLeader();
      }
      break;
    case VoteResult::kLost:
      BecomeFollower(term_, 0);
      break;
    case VoteResult::kPending:
      break;
  }
}

void Raft::Send(Message m) {
  m.set_from(id_);
  if (m.term() == 0) m.set_term(term_);
  if (role_ == Role::kLeader && term_ != prev_hard_.term()) {
    // A leader whose term was not handed out for persisting yet: a single
    // voter elects itself in one step. Its first messages wait for that
    // write, else after a crash it could win the same term again and send
    // learners different entries under the same (index, term) (§5.1).
    msgs_after_persist_.push_back(std::move(m));
    return;
  }
  switch (m.type()) {
    // A leader's replication traffic promises nothing about its own disk
    // (§10.2.1), and neither do pre-votes (which change no state), heartbeat
    // answers or reads.
    case raftpb::MSG_APPEND:
    case raftpb::MSG_HEARTBEAT:
    case raftpb::MSG_HEARTBEAT_RESP:
    case raftpb::MSG_SNAPSHOT:
    case raftpb::MSG_TIMEOUT_NOW:
    case raftpb::MSG_PRE_VOTE:
    case raftpb::MSG_PRE_VOTE_RESP:
    case raftpb::MSG_READ_INDEX:
    case raftpb::MSG_READ_INDEX_RESP:
      msgs_.push_back(std::move(m));
      break;
    // Votes and append acknowledgements promise durable state (§5.1).
    default:
      msgs_after_persist_.push_back(std::move(m));
      break;
  }
}

// ---------------------------------------------------------------- ready

bool Raft::HasReady() const {
  return !(SoftState{leader_, role_} == prev_soft_) ||
         term_ != prev_hard_.term() || vote_ != prev_hard_.vote() ||
         log_.committed() != prev_hard_.commit() ||
         log_.HasUnwrittenEntries() || log_.unstable_snapshot().has_value() ||
         !msgs_.empty() || !msgs_after_persist_.empty() ||
         log_.HasNextCommittedEntries() || !read_states_.empty() ||
         !dropped_reads_.empty() || (commit_broadcast_pending_ && role_ == Role::kLeader);
}

Ready Raft::GetReady() {
  if (commit_broadcast_pending_) FlushCommitBroadcast();
  Ready rd;
  SoftState soft{leader_, role_};
  if (!(soft == prev_soft_)) rd.soft_state = soft;
  if (term_ != prev_hard_.term() || vote_ != prev_hard_.vote() ||
      log_.committed() != prev_hard_.commit()) {
    raftpb::HardState hs;
    hs.set_term(term_);
    hs.set_vote(vote_);
    hs.set_commit(log_.committed());
    rd.hard_state = hs;
  }
  rd.snapshot = log_.unstable_snapshot();
  rd.entries = log_.UnwrittenEntries();
  rd.messages = std::move(msgs_);
  msgs_.clear();
  rd.persisted_messages = std::move(msgs_after_persist_);
  msgs_after_persist_.clear();
  rd.committed_entries = log_.NextCommittedEntries();
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  rd.dropped_reads = std::move(dropped_reads_);
  dropped_reads_.clear();
  return rd;
}

void Raft::Advance(const Ready& rd) {
  if (rd.soft_state) prev_soft_ = *rd.soft_state;
  if (rd.hard_state) prev_hard_ = *rd.hard_state;
  if (rd.snapshot) log_.StableSnapshotTo(rd.snapshot->metadata().index());
  if (!rd.entries.empty()) {
    const auto& last = rd.entries.back();
    if (config_.async_storage_writes) {
      log_.InProgressTo(last.index());  // durable when Persisted() says so
    } else {
      OnStable(last.index(), last.term());
    }
  }
  if (!rd.committed_entries.empty()) {
    log_.AppliedTo(rd.committed_entries.back().index());
  }
  DebugCheck();
}

void Raft::Persisted(uint64_t index, uint64_t term) {
  CHECK(config_.async_storage_writes) << "Persisted() is for asynchronous writes only";
  OnStable(index, term);
  DebugCheck();
}

void Raft::OnStable(uint64_t index, uint64_t term) {
  log_.StableTo(index, term);
  if (role_ != Role::kLeader) return;
  // The leader counts itself only once its own entries are durable.
  auto it = progress_.find(id_);
  if (it != progress_.end() && it->second.MaybeUpdate(log_.StableLastIndex())) MaybeCommit();
}

// ---------------------------------------------------------------- status

Status Raft::GetStatus() const {
  Status s;
  s.id = id_;
  s.role = role_;
  s.term = term_;
  s.vote = vote_;
  s.leader = leader_;
  s.commit = log_.committed();
  s.applied = log_.applied();
  s.first_index = log_.FirstIndex();
  s.last_index = log_.LastIndex();
  s.snapshot_index = s.first_index - 1;
  s.snapshot_term = s.snapshot_index == 0 ? 0 : log_.TermOrZero(s.snapshot_index);
  s.lead_transferee = lead_transferee_;
  s.conf_state = conf_state();
  s.rejected_messages = rejected_messages_;
  for (const auto& [id, pr] : progress_) {
    s.progress.push_back(PeerStatus{id, IsVoterId(id), pr.match(), pr.next(),
                                    pr.state(), pr.recent_active});
  }
  std::sort(s.progress.begin(), s.progress.end(),
            [](const PeerStatus& a, const PeerStatus& b) { return a.id < b.id; });
  return s;
}

absl::Status Raft::CheckInvariants() const {
  if (absl::Status s = log_.CheckInvariants(); !s.ok()) return s;
  if (role_ == Role::kLeader && leader_ != id_) {
    return absl::InternalError("a leader must know itself as leader");
  }
  if (role_ == Role::kCandidate && vote_ != id_) {
    return absl::InternalError("a candidate votes for itself");
  }
  if (role_ != Role::kLeader && !progress_.empty()) {
    return absl::InternalError("only leaders track progress");
  }
  for (const auto& [id, pr] : progress_) {
    if (pr.match() >= pr.next()) {
      return absl::InternalError(absl::StrCat("progress of ", id, ": ", pr.DebugString()));
    }
    if (pr.match() > log_.LastIndex()) {
      return absl::InternalError(absl::StrCat("match of ", id, " past the last index"));
    }
    if (!IsMember(conf_state(), id)) {
      return absl::InternalError(absl::StrCat("progress for non-member ", id));
    }
  }
  if (config_log_.LatestIndex() > log_.LastIndex()) {
    return absl::InternalError("configuration from an entry past the log");
  }
  if (lead_transferee_ != 0 && role_ != Role::kLeader) {
    return absl::InternalError("only a leader transfers leadership");
  }
  return absl::OkStatus();
}

}  // namespace raftkv::raft
