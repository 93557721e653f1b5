// Raft: the consensus core as a deterministic state machine.
//
// The core does no I/O: no threads, clocks, sockets or disk. Its driver (the
// server, or the simulator in tests) feeds it inputs — Tick(), Step() with a
// peer's message, Propose(), ReadIndex(), ProposeConfChange(),
// TransferLeadership() — and drains its output as a Ready.
//
// The driver loop contract (one thread owns the core; nothing else calls it):
//
//   while (true) {
//     feed inputs: Tick() on every timer tick, Step() each received message,
//                  Propose()/ReadIndex()/... for client requests;
//     if (!core.HasReady()) continue;
//     Ready rd = core.GetReady();
//     1. send rd.messages: these may go out before or while step 2 runs
//        (they are a leader's appends and heartbeats; dissertation §10.2.1
//        lets a leader write its log in parallel with replicating it);
//     2. persist, as one synced write: rd.snapshot (if any) first, then
//        rd.entries (replacing any stored suffix from rd.entries[0].index),
//        then rd.hard_state (if any; a hard state that differs from the
//        stored one only in its commit index may instead be written with a
//        later write: the commit index is volatile state, Figure 2);
//     3. send rd.persisted_messages (votes and acknowledgements that promise
//        what step 2 made durable) only after step 2 completes;
//     4. apply rd.committed_entries in order (after step 2: they may include
//        entries persisted by it), and answer rd.read_states once the state
//        machine has applied their index;
//     5. core.Advance(rd).
//   }
//
// No input may be fed between GetReady() and Advance(). A storage write that
// fails is fatal to the node: the driver must stop, never continue.
//
// Asynchronous writes (Config::async_storage_writes; what the server runs):
// the loop hands steps 2 and 3 to a writer and goes on at once, so that
// acknowledgements, proposals and reads are stepped while a write's fsync is
// in flight (a leader then commits on its followers' acks without waiting
// for its own flush):
//
//     Ready rd = core.GetReady();
//     1. send rd.messages;
//     2. queue {rd.entries, rd.hard_state, rd.persisted_messages} to the
//        writer. It performs queued writes in order (it may merge several
//        into one synced write); after a write is durable it sends that
//        Ready's persisted_messages, and then the loop feeds
//        core.Persisted(last entry's index, term) if the Ready had entries.
//        Persisted messages go out in queue order even for a Ready with
//        nothing to write (they promise what earlier writes hold);
//     3. apply rd.committed_entries: here they are all durable on this node
//        already, so the state machine never runs ahead of the local log;
//     4. core.Advance(rd): rd.entries count as in flight, not durable.
//
// A Ready with a snapshot must be handled synchronously, and any other Ready
// may be (the server does so for followers, whose acks wait for their own
// flush anyway): the driver waits for every queued write, then runs steps
// 2-5 of the synchronous loop and feeds Persisted() for the Ready's entries
// after Advance(). Persisted() is an input like Step(): never between
// GetReady() and Advance().
//
// Reading: the core reads the stable log through a LogReader (not owned; it
// must outlive the core and reflect every write made in step 2 by the time
// Advance is called).
#ifndef RAFTKV_RAFT_RAFT_H_
#define RAFTKV_RAFT_RAFT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "raft/log_reader.h"
#include "raft/membership.h"
#include "raft/progress.h"
#include "raft/raft_log.h"
#include "raft/read_index_queue.h"

namespace raftkv::raft {

// The highest term a node may be in. A term never wraps: a message whose
// term is past it is refused (Step returns InvalidArgument), and a node in
// this term never campaigns, since its election would need the next term.
// Reached only through 2^64-2 elections or a forged message (which only the
// transport's peer authentication can keep out): a cluster in it keeps its
// leader but can elect no other.
inline constexpr uint64_t kMaxTerm = UINT64_MAX - 1;

enum class Role { kFollower, kPreCandidate, kCandidate, kLeader };
const char* RoleName(Role r);

enum class ReadMode {
  // ReadIndex confirmed by a heartbeat round (§6.4). Always safe.
  kSafe,
  // Lease reads (§6.4.1): a leader that heard from a majority within the
  // lease answers at once. Safe only if clocks drift less than the bound
  // below. REQUIRES check_quorum.
  kLeaseBased,
};

struct Config {
  uint64_t id = 0;  // this node; never 0
  // A follower that hears nothing for a random number of ticks in
  // [election_ticks, 2*election_ticks) campaigns (§5.2).
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  // Byte cap of the entries in one append message (at least one entry).
  uint64_t max_msg_bytes = 1 << 20;
  // Append messages in flight per follower in replicate state.
  size_t max_inflight_msgs = 256;
  // Byte cap of committed entries in one Ready.
  uint64_t max_committed_bytes_per_ready = 16 << 20;
  bool pre_vote = true;     // dissertation §9.6
  bool check_quorum = true; // a leader steps down without a recent majority
  ReadMode read_mode = ReadMode::kSafe;
  // Lease reads: the fraction by which two nodes' tick rates may differ.
  // The lease lasts (election_ticks - 1) * (1 - max_clock_drift) ticks from
  // the *sending* of the heartbeat round that a majority confirmed: a
  // follower that answered ignores votes for election_ticks of its own
  // ticks, at least election_ticks - 1 ticks of real time after the send.
  double max_clock_drift = 0.1;
  // The driver persists Readies asynchronously (see the contract above):
  // entries count as durable only once Persisted() reports them, and
  // committed entries are handed out for applying only once durable here.
  bool async_storage_writes = false;
  // Whether a leader tells caught-up followers of a new commit index at once
  // with an empty append (which they do not answer). Off: the commit index
  // rides only on appends that carry entries and on heartbeats (§5.3: any
  // AppendEntries may carry it), so a follower learns it at most
  // heartbeat_ticks later, and at once in a read's heartbeat round. Off
  // saves a message and a wake-up per follower per commit.
  bool commit_notices = true;
  // Index the state machine has already applied (on restart).
  uint64_t applied = 0;
  // Seed of the election-timeout randomization (deterministic simulation).
  uint64_t seed = 1;
  // TEST ONLY: a deliberately broken rule (commit entries of earlier terms
  // by counting replicas, violating §5.4.2) to show the simulator finds it.
  bool unsafe_commit_old_terms = false;

  absl::Status Validate() const;
};

// What changed in the node's volatile state (not persisted).
struct SoftState {
  uint64_t leader = 0;
  Role role = Role::kFollower;
  bool operator==(const SoftState& o) const {
    return leader == o.leader && role == o.role;
  }
};

// A linearizable read that may be served once the state machine has applied
// `index`. `context` is the id given to ReadIndex().
struct ReadState {
  uint64_t index = 0;
  std::string context;
};

struct Ready {
  std::optional<SoftState> soft_state;
  std::optional<raftpb::HardState> hard_state;
  std::optional<raftpb::Snapshot> snapshot;
  std::vector<raftpb::Entry> entries;
  std::vector<raftpb::Message> messages;            // may be sent at once
  std::vector<raftpb::Message> persisted_messages;  // only after persisting
  std::vector<raftpb::Entry> committed_entries;
  std::vector<ReadState> read_states;
  // Reads that cannot be served by this node any more (it lost leadership,
  // or the leader dropped them): the caller should retry elsewhere.
  std::vector<std::string> dropped_reads;
  // Set when entries, hard state or snapshot must be synced before step 3.
  bool MustSync() const {
    return hard_state.has_value() || snapshot.has_value() || !entries.empty();
  }
};

// Identifies an appended proposal; it was applied iff the committed entry
// at `index` has `term`.
struct EntryId {
  uint64_t index = 0;
  uint64_t term = 0;
};

struct PeerStatus {
  uint64_t id = 0;
  bool voter = false;
  uint64_t match = 0;
  uint64_t next = 0;
  ProgressState state = ProgressState::kProbe;
  bool recent_active = false;
};

struct Status {
  uint64_t id = 0;
  Role role = Role::kFollower;
  uint64_t term = 0;
  uint64_t vote = 0;
  uint64_t leader = 0;
  uint64_t commit = 0;
  uint64_t applied = 0;
  uint64_t first_index = 0;
  uint64_t last_index = 0;
  // The log prefix compacted into a snapshot ends here (0/0: none).
  uint64_t snapshot_index = 0;
  uint64_t snapshot_term = 0;
  uint64_t lead_transferee = 0;
  raftpb::ConfState conf_state;
  std::vector<PeerStatus> progress;  // leaders only
  // Peer messages Step() refused since start: malformed, misaddressed, or
  // contradicting this node's state (see Step).
  uint64_t rejected_messages = 0;
};

class Raft {
 public:
  // Restores the node from `log` (hard state, snapshot, entries).
  // REQUIRES: config.Validate().ok(); log outlives the core.
  static absl::StatusOr<std::unique_ptr<Raft>> Create(const Config& config,
                                                      const LogReader* log);
  ~Raft();
  Raft(const Raft&) = delete;
  Raft& operator=(const Raft&) = delete;

  // One logical clock tick: drives elections, heartbeats, CheckQuorum, leases
  // and transfer timeouts.
  void Tick();

  // A message from a peer. No message stops or crashes the node: one that
  // Step refuses changes nothing, is logged (rate-limited) and counted in
  // Status::rejected_messages. Errors:
  //  - InvalidArgument: malformed or misaddressed whatever the node's state
  //    (a term past kMaxTerm, entries out of sequence or of term 0, a
  //    snapshot or previous entry of a term past the message's, ...);
  //  - FailedPrecondition: it contradicts this node's state, which no
  //    leader of a term >= ours can send (Figure 3's properties): a
  //    heartbeat committing past our log (its commit is at most what we
  //    acknowledged), an append or snapshot disagreeing with our committed
  //    entries (Leader Completeness), an append, heartbeat or snapshot of the
  //    term we lead (Election Safety), an acknowledgement past our log or a
  //    heartbeat answer for a round we never sent. Such a message is forged,
  //    or this node lost state it had acknowledged.
  // The core does not detect a wiped or rolled-back disk: a node that lost
  // its state must be recognised by the node (durable identity and
  // incarnation), not by the core from a leader's message.
  absl::Status Step(const raftpb::Message& m);

  // Appends commands to the leader's log, in one batch. Errors:
  // FailedPrecondition("not the leader") on non-leaders (see leader()),
  // Unavailable while a leadership transfer is in progress.
  absl::StatusOr<std::vector<EntryId>> Propose(const std::vector<std::string>& data);
  absl::StatusOr<EntryId> Propose(std::string data);

  // A membership change (see membership.h). Errors as Propose, plus
  // FailedPrecondition while another change is pending or before the leader
  // has committed an entry of its term, and the ApplyConfChange errors.
  absl::StatusOr<EntryId> ProposeConfChange(const raftpb::ConfChange& cc);

  // Requests a linearizable read; a ReadState with `context` appears in a
  // later Ready (or the context in dropped_reads). `context` must be unique
  // among this node's outstanding reads. Followers forward to the leader.
  // Errors: Unavailable when no leader is known.
  absl::Status ReadIndex(std::string context);

  // Leadership transfer (§3.10) to `target` (a voter). 0 picks the most
  // up-to-date voter. Errors on non-leaders and for invalid targets.
  absl::Status TransferLeadership(uint64_t target);

  // Starts an election now (if this node is a voter).
  void Campaign();

  // The transport could not deliver to `id` / finished sending a snapshot.
  void ReportUnreachable(uint64_t id);
  void ReportSnapshot(uint64_t id, bool ok);

  bool HasReady() const;
  Ready GetReady();
  // REQUIRES: rd is the latest Ready from GetReady(), fully processed (with
  // asynchronous writes: its write queued, not necessarily done).
  void Advance(const Ready& rd);

  // Asynchronous writes: the entries through `index`, whose entry there has
  // `term`, are durable on this node. Reports of writes since superseded
  // (a new leader replaced the entry) are ignored; reports may come late
  // but in the order the writes were queued.
  // REQUIRES: config.async_storage_writes.
  void Persisted(uint64_t index, uint64_t term);

  // Checks the invariants of this node's state (debug builds run it after
  // every input). Returns the first violation.
  absl::Status CheckInvariants() const;

  uint64_t id() const { return id_; }
  uint64_t term() const { return term_; }
  uint64_t leader() const { return leader_; }
  Role role() const { return role_; }
  const raftpb::ConfState& conf_state() const { return config_log_.Latest(); }
  // The latest configuration known to be committed.
  const raftpb::ConfState& committed_conf_state() const { return config_log_.base(); }
  Status GetStatus() const;
  const RaftLog& log() const { return log_; }

 private:
  Raft(const Config& config, const LogReader* log);
  absl::Status Restore();

  // Roles (raft.cc).
  void BecomeFollower(uint64_t term, uint64_t leader);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void ResetTerm(uint64_t term);
  void ResetRandomizedTimeout();
  bool Promotable() const;
  bool InLease() const;
  void StartElection(bool pre_vote, bool transfer);
  // Entries through (index, term) are durable here (Advance or Persisted).
  void OnStable(uint64_t index, uint64_t term);
  void TickElection();
  void TickHeartbeat();
  void HandleVoteRequest(const raftpb::Message& m);
  void HandleVoteResponse(const raftpb::Message& m);
  absl::Status StepByTerm(const raftpb::Message& m, bool* handled);
  // Step's refusals: InvalidArgument (malformed whatever our state) and
  // FailedPrecondition (contradicts our state); see Step.
  absl::Status CheckMessage(const raftpb::Message& m) const;
  absl::Status CheckAgainstState(const raftpb::Message& m) const;
  void NoteRejected(const raftpb::Message& m, const absl::Status& s);
  void Send(raftpb::Message m);
  bool IsVoterId(uint64_t id) const { return IsVoter(conf_state(), id); }

  // Replication (replication.cc).
  void AppendEntries(std::vector<raftpb::Entry> entries);
  void BroadcastAppend();
  bool SendAppend(uint64_t to, bool send_if_empty);
  void SendHeartbeat(uint64_t to);
  void BroadcastHeartbeat();
  void HandleAppend(const raftpb::Message& m);
  void HandleAppendResponse(const raftpb::Message& m);
  void HandleHeartbeat(const raftpb::Message& m);
  void HandleHeartbeatResponse(const raftpb::Message& m);
  void HandleSnapshot(const raftpb::Message& m);
  void MaybeCommit();
  // Tells followers the leader's new commit index, once per Ready (see
  // commit_broadcast_pending_).
  void FlushCommitBroadcast();
  void OnCommitAdvanced();
  void ApplyConfigFromLog(const std::vector<raftpb::Entry>& entries);
  void OnConfigChanged();
  void MaybeSendTimeoutNow(uint64_t to);
  void AbortTransfer();

  // Reads (read_index.cc).
  void HandleReadIndexRequest(const raftpb::Message& m);
  void HandleReadIndexResponse(const raftpb::Message& m);
  void StartReadRound();
  void ReleaseConfirmedReads();
  void DropPendingReads();
  void ExpireForwardedReads();
  void RespondToRead(const ReadRequest& r);
  bool LeaseValid() const;

  void DebugCheck() const;

  // At most one log line per period of ticks; the lines suppressed in
  // between are counted and reported with the next one. Deterministic (the
  // core has no clock).
  class LogLimiter {
   public:
    // True if a line may be logged at `tick`; *suppressed is then the
    // number of lines dropped since the last one.
    bool Allow(uint64_t tick, uint64_t period, uint64_t* suppressed);

   private:
    bool logged_ = false;
    uint64_t last_tick_ = 0;
    uint64_t suppressed_ = 0;
  };

  const Config config_;
  const uint64_t id_;
  const LogReader* stable_;
  RaftLog log_;
  ConfigLog config_log_;

  uint64_t term_ = 0;
  uint64_t vote_ = 0;
  uint64_t leader_ = 0;
  Role role_ = Role::kFollower;

  // Ordered containers where iteration order reaches the output: the core
  // must be deterministic (absl's hash iteration order is not).
  std::map<uint64_t, Progress> progress_;  // leaders only
  absl::flat_hash_map<uint64_t, bool> votes_;
  uint64_t term_start_index_ = 0;  // index of the leader's no-op

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  std::mt19937_64 rng_;

  uint64_t lead_transferee_ = 0;
  int transfer_elapsed_ = 0;
  // Set once this leader sent a TimeoutNow in its term: the target may win
  // with votes that override leases at any later time, so no more lease
  // reads this term (even if the transfer was aborted).
  bool timeout_now_sent_ = false;

  // Reads (§6.4). Leader: rounds numbered from 1 per term; round_ is the
  // latest broadcast; round_sent_tick_ remembers when each unconfirmed round
  // went out (for the lease).
  ReadIndexQueue reads_;
  uint64_t round_ = 0;
  uint64_t confirmed_round_ = 0;
  bool round_wanted_ = false;  // reads wait for a round not yet broadcast
  absl::flat_hash_map<uint64_t, uint64_t> round_sent_tick_;
  uint64_t ticks_ = 0;         // monotonic tick count
  uint64_t lease_until_tick_ = 0;
  // Follower: contexts forwarded to the leader, with the tick they were
  // sent at; unanswered ones are dropped after an election timeout.
  std::map<std::string, uint64_t> forwarded_reads_;

  // Output not yet handed out.
  std::vector<raftpb::Message> msgs_;
  // The commit index advanced since the last Ready: followers must learn it.
  // Done when the Ready is taken rather than at once, so that the appends a
  // round already carries (new proposals) take it along instead of one extra
  // empty append per follower for every acknowledgement that moved it.
  bool commit_broadcast_pending_ = false;
  std::vector<raftpb::Message> msgs_after_persist_;
  std::vector<ReadState> read_states_;
  std::vector<std::string> dropped_reads_;
  uint64_t rejected_messages_ = 0;  // see Status::rejected_messages
  LogLimiter reject_log_;
  LogLimiter max_term_log_;  // "not campaigning: the term is kMaxTerm"
  SoftState prev_soft_;
  raftpb::HardState prev_hard_;
};

}  // namespace raftkv::raft

#endif  // RAFTKV_RAFT_RAFT_H_
