#include "server/node.h"

#include <pthread.h>

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "raft/membership.h"
#include "server/corruption_guard.h"
#include "server/flush_scope.h"
#include "server/storage_failure.h"

namespace raftkv::server {

absl::Status NodeOptions::Validate() const {
  if (id == 0) return absl::InvalidArgumentError("node id must not be 0");
  if (tick <= absl::ZeroDuration()) return absl::InvalidArgumentError("tick must be positive");
  if (max_proposals_per_round == 0) {
    return absl::InvalidArgumentError("max_proposals_per_round must be positive");
  }
  if (read_threads < 0) return absl::InvalidArgumentError("read_threads must not be negative");
  return absl::OkStatus();
}

// The core's view of the log: the store, except that GetSnapshot opens a
// point-in-time image of the data at the applied index (on the loop
// thread, where applying happens, so image and metadata agree) and keeps it
// for the node to stream.
class Node::LogView final : public raft::LogReader {
 public:
  explicit LogView(storage::LogStore* store) : store_(store) {}

  absl::StatusOr<raft::InitialState> GetInitialState() const override {
    return store_->GetInitialState();
  }
  absl::StatusOr<std::vector<raftpb::Entry>> Entries(uint64_t lo, uint64_t hi,
                                                     uint64_t max_bytes) const override {
    return store_->Entries(lo, hi, max_bytes);
  }
  absl::StatusOr<uint64_t> Term(uint64_t i) const override { return store_->Term(i); }
  uint64_t FirstIndex() const override { return store_->FirstIndex(); }
  uint64_t LastIndex() const override { return store_->LastIndex(); }

  absl::StatusOr<raftpb::Snapshot> GetSnapshot() const override {
    auto image = store_->OpenDataSnapshot();
    if (!image.ok()) return image.status();
    const uint64_t index = (*image)->applied_index();
    auto term = store_->Term(index);
    if (!term.ok()) return absl::UnavailableError(absl::StrCat("snapshot term: ", term.status().message()));
    raftpb::Snapshot snap;
    snap.mutable_metadata()->set_index(index);
    snap.mutable_metadata()->set_term(*term);
    if ((*image)->conf().has_value()) {
      *snap.mutable_metadata()->mutable_conf_state() = *(*image)->conf();
    } else {
      auto base = store_->GetSnapshot();
      if (!base.ok()) return base.status();
      *snap.mutable_metadata()->mutable_conf_state() = base->metadata().conf_state();
    }
    images_.clear();  // only the newest image is streamed
    images_[index] = std::shared_ptr<storage::DataSnapshot>(std::move(*image));
    return snap;
  }

  std::shared_ptr<storage::DataSnapshot> TakeImage(uint64_t index) {
    auto it = images_.find(index);
    return it == images_.end() ? nullptr : it->second;
  }

 private:
  storage::LogStore* const store_;
  mutable std::map<uint64_t, std::shared_ptr<storage::DataSnapshot>> images_;
};

absl::StatusOr<std::unique_ptr<Node>> Node::Create(const NodeOptions& options,
                                                   storage::LogStore* store,
                                                   KvStateMachine* sm,
                                                   MessageSender* transport,
                                                   SnapshotHooks hooks) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  raft::Config cfg;
  cfg.id = options.id;
  cfg.election_ticks = options.election_ticks;
  cfg.heartbeat_ticks = options.heartbeat_ticks;
  cfg.applied = store->applied_index();
  cfg.read_mode = options.lease_reads ? raft::ReadMode::kLeaseBased : raft::ReadMode::kSafe;
  cfg.async_storage_writes = options.async_log_writes;
  cfg.commit_notices = options.commit_notices;
  cfg.seed = absl::ToUnixNanos(absl::Now()) ^ options.id;
  auto view = std::make_unique<LogView>(store);
  auto core = raft::Raft::Create(cfg, view.get());
  if (!core.ok()) return core.status();
  std::unique_ptr<Node> node(
      new Node(options, store, sm, transport, std::move(hooks), std::move(view)));
  node->core_ = std::move(*core);
  node->PublishStatus();
  return node;
}

Node::Node(const NodeOptions& options, storage::LogStore* store, KvStateMachine* sm,
           MessageSender* transport, SnapshotHooks hooks, std::unique_ptr<LogView> view)
    : options_(options),
      store_(store),
      sm_(sm),
      transport_(transport),
      hooks_(std::move(hooks)),
      view_(std::move(view)),
      // Conf changes at or below the applied index are not known here;
      // compaction stays above it (see MaybeCompact).
      last_conf_index_(store->applied_index()),
      hard_state_(store->hard_state()),
      read_nonce_(absl::ToUnixNanos(absl::Now())) {
  if (options_.read_threads > 0) read_pool_ = std::make_unique<CallbackPool>(options_.read_threads);
  if (options_.write_answer_thread) write_answers_ = std::make_unique<CallbackPool>(1);
}

Node::~Node() { Stop(); }

void Node::Start() {
  CHECK(!loop_.joinable()) << "started twice";
  if (options_.async_log_writes) {
    writer_ = std::make_unique<LogWriter>(
        store_, transport_,
        [this, traced = uint64_t{0}](uint64_t index, uint64_t term, int writes) mutable {
          // Runs on the writer thread only, which owns `traced`.
          if (options_.stage_trace != nullptr) {
            options_.stage_trace->RecordRange(Stage::kLeaderDurable, traced + 1, index);
            traced = index;
          }
          absl::MutexLock l(&mu_);
          inbox_.persisted.emplace_back(index, term);
          entry_writes_in_flight_ -= writes;
        });
  }
  loop_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "raft-loop");  // for top -H and perf
    Run();
  });
}

void Node::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (loop_.joinable()) {
    loop_.join();
  } else {
    FailEverything(absl::UnavailableError("node is shutting down"));
  }
  writer_.reset();  // finishes the writes the loop queued
  read_pool_.reset();  // runs what it holds
  write_answers_.reset();
}

template <typename Pending>
void Node::Enqueue(std::vector<Pending> Inbox::*box, Pending p) {
  {
    absl::MutexLock l(&mu_);
    if (!stopping_) {
      (inbox_.*box).push_back(std::move(p));
      return;
    }
  }
  p.done(absl::UnavailableError("node is shutting down"));
}

void Node::Propose(std::string command, absl::Time deadline, WriteCallback done) {
  const uint64_t arrived = options_.stage_trace != nullptr ? MonotonicNanos() : 0;
  Enqueue(&Inbox::writes, PendingWrite{std::move(command), deadline, std::move(done), arrived});
}

void Node::Read(absl::Time deadline, ReadCallback done) {
  Enqueue(&Inbox::reads, PendingRead{deadline, std::move(done)});
}

void Node::ProposeConfChange(raftpb::ConfChange cc, absl::Time deadline, ConfCallback done) {
  Enqueue(&Inbox::confs, PendingConf{std::move(cc), deadline, std::move(done)});
}

void Node::TransferLeadership(uint64_t target, absl::Time deadline, TransferCallback done) {
  Enqueue(&Inbox::transfers, PendingTransfer{target, deadline, std::move(done)});
}

void Node::Receive(raftpb::Message m) {
  if (options_.stage_trace != nullptr) TraceMessage(m, Stage::kReceived, Stage::kAckReceived);
  absl::MutexLock l(&mu_);
  inbox_.messages.push_back(std::move(m));
}

void Node::ReportUnreachable(uint64_t peer) {
  absl::MutexLock l(&mu_);
  inbox_.unreachable.push_back(peer);
}

void Node::ReportSnapshot(uint64_t peer, bool ok) {
  absl::MutexLock l(&mu_);
  inbox_.snapshot_reports.emplace_back(peer, ok);
}

raft::Status Node::FreshRaftStatus(absl::Duration max_wait) {
  uint64_t seen;
  {
    absl::MutexLock l(&status_mu_);
    seen = status_version_;
  }
  {
    absl::MutexLock l(&mu_);
    if (stopping_) return RaftStatus();
    status_wanted_ = true;
  }
  absl::MutexLock l(&status_mu_);
  auto published = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(status_mu_) {
    return status_version_ != seen;
  };
  status_mu_.AwaitWithTimeout(absl::Condition(&published), max_wait);
  return status_;
}

raft::Status Node::RaftStatus() const {
  absl::MutexLock l(&status_mu_);
  return status_;
}

void Node::Run() {
  absl::Time next_tick = absl::Now() + options_.tick;
  while (true) {
    Inbox in;
    bool publish = false;  // someone waits in FreshRaftStatus
    {
      absl::MutexLock l(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(this, &Node::HasWorkLocked), next_tick);
      if (stopping_) break;
      std::vector<PendingWrite> held;
      if (ProposalsHeldLocked()) std::swap(held, inbox_.writes);
      std::swap(in, inbox_);
      std::swap(held, inbox_.writes);
      publish = std::exchange(status_wanted_, false);
      // Leave the rest of a very large batch for the next round.
      if (in.writes.size() > options_.max_proposals_per_round) {
        inbox_.writes.assign(std::make_move_iterator(in.writes.begin() +
                                                     options_.max_proposals_per_round),
                             std::make_move_iterator(in.writes.end()));
        in.writes.resize(options_.max_proposals_per_round);
      }
    }
    const absl::Time now = absl::Now();
    bool ticked = false;
    // One Tick per elapsed period, even after a stall: the leader's lease is
    // counted in ticks and must not run slower than real time.
    while (now >= next_tick) {
      core_->Tick();
      ticked = true;
      next_tick += options_.tick;
    }
    for (auto [index, term] : in.persisted) core_->Persisted(index, term);
    for (const auto& m : in.messages) StepMessage(m);
    for (uint64_t peer : in.unreachable) core_->ReportUnreachable(peer);
    for (auto [peer, ok] : in.snapshot_reports) core_->ReportSnapshot(peer, ok);
    if (!in.writes.empty()) ProposeAll(std::move(in.writes));
    if (!in.reads.empty()) StartReads(std::move(in.reads));
    if (!in.confs.empty()) StartConfChanges(std::move(in.confs));
    if (!in.transfers.empty()) StartTransfers(std::move(in.transfers));
    if (ticked) MaybePromoteLearners();
    if (ticked) MaybeHandOffForSpace();
    if (ticked) MaybeStepAside();
    HandleReadies();
    if (!transfers_.empty()) CheckTransfers(now);
    if (ticked) ExpireDeadlines(now);
    if (ticked || publish) PublishStatus();
  }
  if (const auto& held = hard_state_.held(); held.has_value()) {
    // Not needed for safety (hard_state_buffer.h): a restart then begins at
    // the latest commit index.
    if (writer_ != nullptr) writer_->WaitIdle();
    if (absl::Status s = store_->Append({}, &*held); !s.ok()) {
      StoreFailed("persisting the raft log", s);
    }
  }
  FailEverything(absl::UnavailableError("node is shutting down"));
}

// A leader drops the messages of a node in neither its latest nor its
// committed configuration: its log holds every committed entry (Leader
// Completeness), so that node is in no configuration that can take effect
// while it leads -- a removed member still running (its votes, answers and
// higher term must change nothing) or a stranger. Until the removal
// commits, the removed node still counts (it may campaign, §4.2.2). Other
// roles take every message: their log may lag the cluster's, and a node
// they do not know yet may be a member added since (a learner being caught
// up, a new voter campaigning or leading) that they must hear to catch up.
// A node still joining is a follower without a configuration, so it hears
// the leader; a learner's answers reach a leader that appended its addition.
bool Node::TakesFrom(uint64_t from) const {
  return core_->role() != raft::Role::kLeader || raft::IsMember(core_->conf_state(), from) ||
         raft::IsMember(core_->committed_conf_state(), from);
}

void Node::StepMessage(const raftpb::Message& m) {
  if (!TakesFrom(m.from())) {
    // A snapshot was staged for it; no one else will release it.
    if (m.type() == raftpb::MSG_SNAPSHOT && hooks_.receiver != nullptr) {
      hooks_.receiver->Release();
    }
    if (options_.on_non_member) options_.on_non_member(m);
    return;
  }
  if (options_.stage_trace != nullptr) TraceMessage(m, Stage::kStepped, Stage::kAckStepped);
  if (m.from() != 0 && m.from() != options_.id) {
    peer_flags_[m.from()] = PeerFlags{m.no_space(), m.data_corrupt()};
  }
  if (DropForSpace(m)) return;
  // A refused message changes nothing and never stops the node: the core
  // logs it (rate-limited) and counts it (Admin.Status rejected_peer_messages).
  (void)core_->Step(m);
  if (m.type() == raftpb::MSG_SNAPSHOT && hooks_.receiver != nullptr) {
    const auto& pending = core_->log().unstable_snapshot();
    if (!pending || pending->metadata().index() != m.snapshot().metadata().index()) {
      // The core did not take it (we had caught up meanwhile): drop the
      // staged image so the next transfer can proceed.
      hooks_.receiver->Release();
    }
  }
}

void Node::SendSnapshots(std::vector<raftpb::Message>* msgs) {
  auto is_snap = [](const raftpb::Message& m) { return m.type() == raftpb::MSG_SNAPSHOT; };
  auto first = std::stable_partition(msgs->begin(), msgs->end(),
                                     [&](const raftpb::Message& m) { return !is_snap(m); });
  for (auto it = first; it != msgs->end(); ++it) {
    const uint64_t peer = it->to();
    const uint64_t index = it->snapshot().metadata().index();
    std::shared_ptr<storage::DataSnapshot> image = view_->TakeImage(index);
    const std::string address = hooks_.address_of ? hooks_.address_of(peer) : "";
    if (hooks_.sender == nullptr || image == nullptr || address.empty() ||
        !hooks_.sender->Start(peer, address, std::move(*it), std::move(image))) {
      // Busy or unable: the core falls back to probing and retries later.
      core_->ReportSnapshot(peer, false);
    }
  }
  msgs->erase(first, msgs->end());
}

void Node::InstallSnapshot(const raftpb::Snapshot& snapshot) {
  const auto& meta = snapshot.metadata();
  const std::optional<uint64_t> staged =
      hooks_.receiver ? hooks_.receiver->staged_index() : std::nullopt;
  if (staged != meta.index()) {
    LOG(FATAL) << "raft asks to install the snapshot at " << meta.index()
               << " but the staged image is " << (staged ? absl::StrCat(*staged) : "none");
  }
  if (absl::Status s = store_->InstallStaged(meta); !s.ok()) {
    StoreFailed(absl::StrCat("installing the snapshot at ", meta.index()), s);
  }
  if (absl::Status s = sm_->Reload(); !s.ok()) {
    LOG(FATAL) << "reloading the state machine after the snapshot: " << s;
  }
  hooks_.receiver->Release();
  last_conf_index_ = meta.index();
  if (options_.on_snapshot_installed) options_.on_snapshot_installed();
  LOG(INFO) << "installed the snapshot at " << meta.index() << " (term " << meta.term() << ")";
}

void Node::MaybeCompact() {
  if (options_.snapshot_entries == 0) return;
  const uint64_t applied = sm_->applied_index();
  const uint64_t snap_index = store_->FirstIndex() - 1;
  if (applied - snap_index <= options_.snapshot_entries) return;
  // The membership recorded with the applied index holds for every index
  // from the last applied conf change on: compact no lower than that.
  uint64_t index = applied > options_.snapshot_keep_entries
                       ? applied - options_.snapshot_keep_entries
                       : 0;
  index = std::max(index, last_conf_index_);
  if (index <= snap_index) return;
  auto term = store_->Term(index);
  if (!term.ok()) return;
  raftpb::ConfState conf;
  if (auto c = store_->applied_conf(); c.has_value()) {
    conf = *c;
  } else {
    conf = store_->GetSnapshot()->metadata().conf_state();
  }
  // Entries about to be dropped were applied with unsynced writes.
  if (absl::Status s = store_->SyncWal(); !s.ok()) StoreFailed("syncing the WAL", s);
  if (absl::Status s = store_->Compact(index, *term, conf); !s.ok()) {
    StoreFailed(absl::StrCat("compacting the log to ", index), s);
  }
  VLOG(1) << "compacted the log through " << index;
}

absl::Status Node::NotLeaderError() const {
  return absl::FailedPreconditionError(
      absl::StrCat("not leader; leader is ", core_->leader()));
}

absl::Status Node::ProposalRefusal() const {
  if (Corrupt()) return CorruptRefusal();
  if (LowOnSpace()) {
    if (const uint64_t target = HandOffTarget(); target != 0) {
      // Retriable: the client finds the next leader.
      return absl::UnavailableError(absl::StrCat(
          "node ", options_.id, " (the leader) is below its free-space reserve and hands "
          "leadership to node ", target, "; retry"));
    }
    absl::Status own = options_.disk_space->WriteRefusal();
    return absl::Status(own.code(), absl::StrCat("node ", options_.id, " (the leader): ",
                                                 own.message()));
  }
  const auto& voters = core_->conf_state().voters();
  std::vector<uint64_t> low;
  for (uint64_t v : voters) {
    auto it = peer_flags_.find(v);
    if (v != options_.id && it != peer_flags_.end() && it->second.low_on_space) low.push_back(v);
  }
  const size_t quorum = voters.size() / 2 + 1;
  if (voters.size() - low.size() >= quorum) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "writes refused: voters ", absl::StrJoin(low, ", "), " of ", absl::StrJoin(voters, ", "),
      " are below their free-space reserve (--min_free_bytes) and store no new entries, so no "
      "write can commit; free space on them (their `kvctl status` shows NOSPACE)"));
}

absl::Status Node::CorruptRefusal() const {
  if (const uint64_t target = HandOffTarget(); target != 0) {
    // Retriable: the client finds the next leader.
    return absl::UnavailableError(absl::StrCat(
        "node ", options_.id, " (the leader) has alarm CORRUPT (its data differ or are "
        "damaged) and takes no writes: it hands leadership to node ", target, "; retry"));
  }
  std::vector<uint64_t> others;  // the other voters, and those known corrupt
  std::vector<uint64_t> corrupt;
  for (uint64_t v : core_->conf_state().voters()) {
    if (v == options_.id) continue;
    others.push_back(v);
    auto it = peer_flags_.find(v);
    if (it != peer_flags_.end() && it->second.corrupt) corrupt.push_back(v);
  }
  if (corrupt.size() < others.size()) {
    // A voter not known corrupt may take over once it is heard from.
    return absl::UnavailableError(absl::StrCat(
        "node ", options_.id, " (the leader) has alarm CORRUPT (its data differ or are "
        "damaged) and takes no writes; no voter without CORRUPT is reachable to hand "
        "leadership to yet; retry"));
  }
  // Not retriable: nothing changes until an operator acts. DATA_LOSS, as
  // etcd's "corrupt cluster".
  return absl::DataLossError(absl::StrCat(
      "writes refused, the write was not applied: node ", options_.id, " (the leader) has "
      "alarm CORRUPT",
      others.empty() ? " and is the only voter"
                     : absl::StrCat(", and so has every other voter (", absl::StrJoin(others, ", "),
                                    ")"),
      ": no member's data can be trusted, so no write is taken until an operator acts "
      "(`kvctl status` shows each alarm; docs/INTEGRITY.md)"));
}

void Node::MarkCorrupt(std::vector<raftpb::Message>* msgs) const {
  if (!Corrupt()) return;
  for (raftpb::Message& m : *msgs) m.set_data_corrupt(true);
}

void Node::MarkSpace(std::vector<raftpb::Message>* msgs) const {
  if (!LowOnSpace()) return;
  for (raftpb::Message& m : *msgs) m.set_no_space(true);
}

bool Node::DropForSpace(const raftpb::Message& m) {
  const bool stores = (m.type() == raftpb::MSG_APPEND && m.entries_size() > 0) ||
                      m.type() == raftpb::MSG_SNAPSHOT;
  if (!stores || !LowOnSpace()) return false;
  ++dropped_for_space_;
  LOG_EVERY_N(WARNING, 100) << "node " << options_.id << " is below its free-space reserve: "
                            << "dropping " << raftpb::MessageType_Name(m.type()) << " from "
                            << m.from() << " (" << dropped_for_space_ << " dropped so far)";
  // A snapshot's image was staged before its message came: let the next
  // transfer (once space is back) stage again.
  if (m.type() == raftpb::MSG_SNAPSHOT && hooks_.receiver != nullptr) hooks_.receiver->Release();
  return true;
}

void Node::ProposeAll(std::vector<PendingWrite> writes) {
  if (core_->role() == raft::Role::kLeader) {
    if (absl::Status refusal = ProposalRefusal(); !refusal.ok()) {
      for (auto& w : writes) w.done(refusal);
      return;
    }
  }
  std::vector<std::string> data;
  data.reserve(writes.size());
  for (auto& w : writes) data.push_back(std::move(w.command));
  auto ids = core_->Propose(data);
  if (!ids.ok()) {
    absl::Status why = ids.status().code() == absl::StatusCode::kFailedPrecondition
                           ? NotLeaderError()
                           : ids.status();
    for (auto& w : writes) w.done(why);
    return;
  }
  for (size_t k = 0; k < writes.size(); ++k) {
    Waiter& w = waiters_[(*ids)[k].index];
    if (w.done) {
      // An entry of an earlier term at this index was overwritten.
      w.done(absl::UnavailableError("the write was superseded by a new leader; retry"));
    }
    w = Waiter{(*ids)[k].term, writes[k].deadline, std::move(writes[k].done)};
    if (options_.stage_trace != nullptr) {
      options_.stage_trace->Record(Stage::kArrived, (*ids)[k].index, writes[k].arrived_ns);
      options_.stage_trace->Record(Stage::kProposed, (*ids)[k].index);
    }
  }
}

void Node::StartReads(std::vector<PendingRead> reads) {
  for (auto& r : reads) {
    // Unique across restarts too: a reply to an earlier incarnation's read
    // must not answer a new one.
    std::string ctx = absl::StrCat(options_.id, "/", read_nonce_, "/", ++next_read_id_);
    absl::Status s = core_->ReadIndex(ctx);
    if (!s.ok()) {
      r.done(absl::UnavailableError(absl::StrCat("no leader to confirm the read: ", s.message())));
      continue;
    }
    reads_by_context_.emplace(std::move(ctx), std::move(r));
  }
}

void Node::StartConfChanges(std::vector<PendingConf> confs) {
  for (auto& c : confs) {
    auto id = core_->ProposeConfChange(c.cc);
    if (!id.ok()) {
      const bool not_leader = id.status().code() == absl::StatusCode::kFailedPrecondition &&
                              core_->role() != raft::Role::kLeader;
      c.done(not_leader ? NotLeaderError() : id.status());
      continue;
    }
    LOG(INFO) << "node " << options_.id << " proposed membership change "
              << raftpb::ConfChangeType_Name(c.cc.type()) << " " << c.cc.node_id() << " at "
              << id->index;
    ConfWaiter& w = conf_waiters_[id->index];
    if (w.done) w.done(absl::UnavailableError("the change was superseded by a new leader; retry"));
    w = ConfWaiter{id->term, c.deadline, std::move(c.done)};
  }
}

void Node::StartTransfers(std::vector<PendingTransfer> transfers) {
  for (auto& t : transfers) {
    if (core_->role() != raft::Role::kLeader) {
      t.done(NotLeaderError());
      continue;
    }
    if (t.target == options_.id) {
      t.done(options_.id);
      continue;
    }
    absl::Status s = core_->TransferLeadership(t.target);
    if (!s.ok()) {
      t.done(s);
      continue;
    }
    const uint64_t target = core_->GetStatus().lead_transferee;
    LOG(INFO) << "node " << options_.id << " transferring leadership to " << target;
    t.deadline = std::min(t.deadline, absl::Now() + options_.transfer_timeout);
    transfers_.push_back(std::move(t));
  }
}

void Node::CheckTransfers(absl::Time now) {
  const uint64_t leader = core_->leader();
  const bool leading = core_->role() == raft::Role::kLeader;
  const bool transferring = leading && core_->GetStatus().lead_transferee != 0;
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    if (leader != 0 && leader != options_.id) {
      it->done(leader);
    } else if (leading && !transferring) {
      it->done(absl::AbortedError("leadership transfer aborted (the target did not take over "
                                  "in time); this node is still the leader"));
    } else if (it->deadline < now) {
      it->done(absl::DeadlineExceededError("leadership transfer did not finish in time"));
    } else {
      ++it;
      continue;
    }
    it = transfers_.erase(it);
  }
}

void Node::MaybePromoteLearners() {
  if (options_.auto_promote_gap == 0 || core_->role() != raft::Role::kLeader) return;
  const raftpb::ConfState& cs = core_->conf_state();
  if (cs.learners_size() == 0) return;
  const raft::Status st = core_->GetStatus();
  if (st.lead_transferee != 0) return;
  for (const raft::PeerStatus& p : st.progress) {
    if (p.voter || !raft::IsLearner(cs, p.id) || !p.recent_active) continue;
    if (p.match == 0 || p.match + options_.auto_promote_gap < st.last_index) continue;
    raftpb::ConfChange cc;
    cc.set_type(raftpb::CONF_ADD_VOTER);
    cc.set_node_id(p.id);
    auto id = core_->ProposeConfChange(cc);
    if (id.ok()) {
      LOG(INFO) << "node " << options_.id << " promoting caught-up learner " << p.id
                << " (match " << p.match << ", last " << st.last_index << ") at " << id->index;
    } else {
      VLOG(1) << "not promoting learner " << p.id << " yet: " << id.status();
    }
    return;  // one change at a time
  }
}

uint64_t Node::HandOffTarget() const {
  const raft::Status st = core_->GetStatus();
  if (st.lead_transferee != 0) return st.lead_transferee;
  uint64_t target = 0, match = 0;
  for (const raft::PeerStatus& p : st.progress) {
    if (p.id == options_.id || !p.voter || !p.recent_active) continue;
    auto flags = peer_flags_.find(p.id);
    if (flags == peer_flags_.end()) continue;  // not heard from yet
    if (flags->second.low_on_space || flags->second.corrupt) continue;
    if (target == 0 || p.match > match) target = p.id, match = p.match;
  }
  return target;
}

void Node::MaybeHandOffForSpace() {
  if (!LowOnSpace() || core_->role() != raft::Role::kLeader) return;
  if (core_->GetStatus().lead_transferee != 0) return;
  const uint64_t target = HandOffTarget();
  if (target == 0) return;
  if (absl::Status s = core_->TransferLeadership(target); !s.ok()) {
    LOG_EVERY_N(WARNING, 100) << "node " << options_.id << " is below its free-space reserve but "
                              << "cannot hand leadership to node " << target << ": " << s;
    return;
  }
  LOG(WARNING) << "node " << options_.id << " is below its free-space reserve: handing "
               << "leadership to node " << target << ", which is not";
}

void Node::MaybeStepAside() {
  if (!Corrupt() || core_->role() != raft::Role::kLeader) return;
  if (core_->GetStatus().lead_transferee != 0) return;
  // Only to a voter known not corrupt: among corrupt members leadership
  // would move round for nothing. None: it stays and refuses writes.
  const uint64_t target = HandOffTarget();
  if (target == 0) {
    LOG_EVERY_N(WARNING, 1000) << "node " << options_.id << " has corrupt data and refuses "
                               << "writes; no voter without CORRUPT to hand leadership to";
    return;
  }
  absl::Status s = core_->TransferLeadership(target);
  if (s.ok()) {
    LOG(WARNING) << "node " << options_.id << " has corrupt data: handing leadership to node "
                 << target;
  } else {
    LOG_EVERY_N(WARNING, 100) << "node " << options_.id
                              << " has corrupt data but cannot hand leadership over: " << s;
  }
}

void Node::StoreFailed(absl::string_view what, const absl::Status& s) {
  ExitIfCorrupt(options_.id, what, s);  // damaged data: exit status 1
  StoreWriteFailed(*store_, what, s);
}

void Node::HandleReadies() {
  while (core_->HasReady()) {
    raft::Ready rd = core_->GetReady();
    // New members' addresses must be known before messages go to them.
    if (options_.on_conf_change) {
      for (const auto& e : rd.entries) {
        if (e.type() != raftpb::ENTRY_CONF_CHANGE) continue;
        raftpb::ConfChange cc;
        if (cc.ParseFromString(e.data())) options_.on_conf_change(cc, false);
      }
    }
    // 1. The leader's appends go out while its own write proceeds (§10.2.1);
    // snapshots go to the snapshot sender.
    SendSnapshots(&rd.messages);
    MarkSpace(&rd.messages);
    MarkCorrupt(&rd.messages);
    transport_->Send(std::move(rd.messages));
    if (options_.stage_trace != nullptr && !rd.entries.empty() &&
        core_->role() == raft::Role::kLeader) {
      options_.stage_trace->RecordRange(Stage::kAppendsSent, rd.entries.front().index(),
                                        rd.entries.back().index());
    }
    // 2, 3. Persist; acknowledgements promise what is then durable.
    // Only a leader gains from writing in the background (it commits on its
    // followers' acks meanwhile); a follower's ack must wait for its own
    // flush anyway, so it writes here and saves the hand-off.
    const bool written_here = writer_ == nullptr || rd.snapshot.has_value() ||
                              core_->role() != raft::Role::kLeader;
    Persist(&rd, written_here);
    // 4. Apply, then answer.
    if (!rd.committed_entries.empty()) {
      {
        // The answers of the round's applied writes leave together when the
        // scope ends: one write per client stream, not one per answer.
        FlushScope answers;
        Apply(rd.committed_entries);
        TraceEntries(Stage::kApplied, rd.committed_entries);
      }
      TraceEntries(Stage::kAnswered, rd.committed_entries);
      MaybeCompact();
    }
    for (auto& rs : rd.read_states) {
      auto it = reads_by_context_.find(rs.context);
      if (it == reads_by_context_.end()) continue;
      if (rs.index > store_->LastIndex() && LowOnSpace()) {
        // The entries it needs will not come while this node stores none.
        it->second.done(absl::UnavailableError(absl::StrCat(
            "node ", options_.id, " is below its free-space reserve and stores no new entries, "
            "so it cannot catch up to read index ", rs.index, " (its log ends at ",
            store_->LastIndex(), "); read from another node")));
        reads_by_context_.erase(it);
        continue;
      }
      reads_by_index_.emplace(rs.index, std::move(it->second));
      reads_by_context_.erase(it);
    }
    for (const auto& ctx : rd.dropped_reads) {
      auto it = reads_by_context_.find(ctx);
      if (it == reads_by_context_.end()) continue;
      it->second.done(absl::UnavailableError("leadership changed during the read; retry"));
      reads_by_context_.erase(it);
    }
    if (rd.soft_state) {
      leader_.store(rd.soft_state->leader);
      if (rd.soft_state->role == raft::Role::kLeader) {
        LOG(INFO) << "node " << options_.id << " is the leader of term " << core_->term();
      } else {
        // Our entries may still commit under the next leader, but this node
        // may never apply them (it may have been removed or cut off): let
        // the clients retry now; a retry with the same client id and
        // sequence is applied at most once (§6.3).
        FailWrites(absl::UnavailableError(
            "leadership was lost before the write was applied; its outcome is unknown, "
            "retry with the same client id and sequence"));
      }
    }
    term_.store(core_->term());
    core_->Advance(rd);
    if (writer_ != nullptr && written_here && !rd.entries.empty()) {
      core_->Persisted(rd.entries.back().index(), rd.entries.back().term());
    }
    {
      FlushScope answers;  // reads answered on this thread (read_threads=0)
      ServeReads();
    }
    if (rd.soft_state) PublishStatus();
  }
}

void Node::Persist(raft::Ready* rd, bool here) {
  const std::optional<raftpb::HardState> hs =
      hard_state_.ToWrite(rd->hard_state, !rd->entries.empty() || rd->snapshot.has_value());
  if (!here) {
    if (!rd->entries.empty()) {
      absl::MutexLock l(&mu_);
      ++entry_writes_in_flight_;
    }
    MarkCorrupt(&rd->persisted_messages);
    // A copy: Advance() reads the Ready's entries.
    writer_->Queue(rd->entries, hs, std::move(rd->persisted_messages));
    return;
  }
  // After every queued write (raft.h). A snapshot is installed first, in
  // its own write: the image replaces the data the writes' entries precede.
  if (writer_ != nullptr) writer_->WaitIdle();
  if (rd->snapshot) InstallSnapshot(*rd->snapshot);
  if (!rd->entries.empty() || hs) {
    absl::Status s = store_->Append(rd->entries, hs ? &*hs : nullptr);
    if (!s.ok()) StoreFailed("persisting the raft log", s);
    TraceEntries(Stage::kSynced, rd->entries);
  }
  MarkSpace(&rd->persisted_messages);
  MarkCorrupt(&rd->persisted_messages);
  transport_->Send(std::move(rd->persisted_messages));
  TraceEntries(Stage::kAcked, rd->entries);
}

void Node::TraceEntries(Stage stage, const std::vector<raftpb::Entry>& entries) {
  if (options_.stage_trace == nullptr || entries.empty()) return;
  options_.stage_trace->RecordRange(stage, entries.front().index(), entries.back().index());
}

void Node::TraceMessage(const raftpb::Message& m, Stage append, Stage ack) {
  if (m.type() == raftpb::MSG_APPEND && m.entries_size() > 0) {
    options_.stage_trace->RecordRange(append, m.entries(0).index(),
                                      m.entries(m.entries_size() - 1).index());
  } else if (m.type() == raftpb::MSG_APPEND_RESP && !m.reject()) {
    // An ack covers every index up to m.index(): record those no earlier
    // ack (from any follower) covered.
    std::atomic<uint64_t>& traced =
        ack == Stage::kAckReceived ? acks_received_traced_ : acks_stepped_traced_;
    uint64_t prev = traced.load();
    while (prev < m.index() && !traced.compare_exchange_weak(prev, m.index())) {
    }
    if (prev < m.index()) options_.stage_trace->RecordRange(ack, prev + 1, m.index());
  }
}

void Node::Apply(const std::vector<raftpb::Entry>& entries) {
  for (const auto& e : entries) {
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) last_conf_index_ = e.index();
  }
  auto results = sm_->Apply(entries);
  if (!results.ok()) StoreFailed("applying committed entries", results.status());
  for (const auto& e : entries) {
    if (e.type() != raftpb::ENTRY_CONF_CHANGE) continue;
    raftpb::ConfChange cc;
    const bool parsed = cc.ParseFromString(e.data());
    if (parsed && options_.on_conf_change) options_.on_conf_change(cc, true);
    auto w = conf_waiters_.find(e.index());
    if (w == conf_waiters_.end()) continue;
    if (w->second.term == e.term() && parsed) {
      w->second.done(cc.result());
    } else {
      w->second.done(absl::UnavailableError("the change was superseded by a new leader; retry"));
    }
    conf_waiters_.erase(w);
  }
  // Conf waiters at indices a new leader overwrote with normal entries.
  const uint64_t last_applied = entries.back().index();
  for (auto it = conf_waiters_.begin(); it != conf_waiters_.end() && it->first <= last_applied;) {
    it->second.done(absl::UnavailableError("the change was superseded by a new leader; retry"));
    it = conf_waiters_.erase(it);
  }
  std::map<uint64_t, ApplyResult*> by_index;
  for (auto& r : *results) by_index[r.index] = &r;
  const uint64_t last = entries.back().index();
  using Answer = std::pair<WriteCallback, absl::StatusOr<kvpb::WriteResult>>;
  auto answers = std::make_shared<std::vector<Answer>>();
  for (auto it = waiters_.begin(); it != waiters_.end() && it->first <= last;) {
    Waiter& w = it->second;
    auto r = by_index.find(it->first);
    if (r != by_index.end() && r->second->term == w.term) {
      answers->emplace_back(std::move(w.done), std::move(r->second->result));
    } else {
      // Another leader's entry took this index: ours was never committed.
      answers->emplace_back(std::move(w.done),
                            absl::UnavailableError("the write was superseded by a new leader; retry"));
    }
    it = waiters_.erase(it);
  }
  if (answers->empty()) return;
  auto answer_all = [answers] {
    FlushScope batch;  // one write per client stream, not one per answer
    for (auto& [done, result] : *answers) done(std::move(result));
  };
  if (write_answers_ != nullptr) {
    write_answers_->Post(std::move(answer_all));
  } else {
    answer_all();
  }
}

void Node::ServeReads() {
  const uint64_t applied = sm_->applied_index();
  std::vector<ReadCallback> ready;
  while (!reads_by_index_.empty() && reads_by_index_.begin()->first <= applied) {
    ready.push_back(std::move(reads_by_index_.begin()->second.done));
    reads_by_index_.erase(reads_by_index_.begin());
  }
  if (ready.empty()) return;
  // The state machine only moves forward, so a read answered later still
  // sees at least the applied index its ReadIndex asked for.
  if (read_pool_ == nullptr) {
    for (auto& done : ready) done(absl::OkStatus());
    return;
  }
  // One task per pool thread: few handoffs, and every thread gets a share.
  const size_t parts = std::min<size_t>(ready.size(), read_pool_->threads());
  const size_t per = (ready.size() + parts - 1) / parts;
  for (size_t begin = 0; begin < ready.size(); begin += per) {
    auto part = std::make_shared<std::vector<ReadCallback>>(
        std::make_move_iterator(ready.begin() + begin),
        std::make_move_iterator(ready.begin() + std::min(begin + per, ready.size())));
    read_pool_->Post([part] {
      FlushScope answers;
      for (auto& done : *part) done(absl::OkStatus());
    });
  }
}

namespace {

// Fails and removes the entries of `pending` whose deadline has passed.
template <typename Map>
void Expire(Map& pending, absl::Time now, const absl::Status& why) {
  for (auto it = pending.begin(); it != pending.end();) {
    if (it->second.deadline < now) {
      it->second.done(why);
      it = pending.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace

void Node::ExpireDeadlines(absl::Time now) {
  Expire(waiters_, now, absl::DeadlineExceededError("deadline exceeded; outcome unknown"));
  Expire(conf_waiters_, now,
         absl::DeadlineExceededError("membership change not applied in time; outcome unknown"));
  Expire(reads_by_context_, now, absl::DeadlineExceededError("read not confirmed in time"));
  Expire(reads_by_index_, now, absl::DeadlineExceededError("read not applied in time"));
}

void Node::PublishStatus() {
  raft::Status s = core_->GetStatus();
  leader_.store(s.leader);
  term_.store(s.term);
  absl::MutexLock l(&status_mu_);
  status_ = std::move(s);
  ++status_version_;
}

void Node::FailWrites(const absl::Status& why) {
  for (auto& [index, w] : waiters_) w.done(why);
  waiters_.clear();
}

void Node::FailEverything(const absl::Status& why) {
  FailWrites(why);
  for (auto& [index, w] : conf_waiters_) w.done(why);
  conf_waiters_.clear();
  for (auto& t : transfers_) t.done(why);
  transfers_.clear();
  for (auto& [ctx, r] : reads_by_context_) r.done(why);
  reads_by_context_.clear();
  for (auto& [index, r] : reads_by_index_) r.done(why);
  reads_by_index_.clear();
  Inbox in;
  {
    absl::MutexLock l(&mu_);
    std::swap(in, inbox_);
  }
  // Outside the lock: a callback may call Propose or Read.
  for (auto& w : in.writes) w.done(why);
  for (auto& r : in.reads) r.done(why);
  for (auto& c : in.confs) c.done(why);
  for (auto& t : in.transfers) t.done(why);
}

}  // namespace raftkv::server
