// Node: the loop that drives one Raft core (raft/raft.h) against the
// RocksDB store, the state machine and the peer transport.
//
// One loop thread owns the core. gRPC threads hand it work through an
// inbox (proposals, reads, peer messages); the loop wakes on new work or on
// the next tick, feeds everything in, then drains the core's output per the
// driver contract in raft.h: send the leader's messages, persist entries and
// hard state in one synced write (all proposals of a round share that
// fsync: group commit), send the acknowledgements, apply committed entries,
// answer clients whose entries applied and reads whose index is applied.
// With async_log_writes (the default) a leader's persisting goes to a
// LogWriter thread and its loop goes on at once: it steps acks, commits and
// applies while its own flush is in flight. Followers persist in the loop.
//
// Callbacks given to Propose/Read run on the loop thread: they must not
// block (finish a gRPC reactor, copy a value).
//
// A storage write failure is fatal: the process exits with one line rather
// than run on with a state it cannot trust: exit status 74 for an I/O error
// (server/storage_failure.h), 1 for corrupt data met while applying (the
// entries cannot be applied as every other member does) or a write RocksDB
// refuses because a compaction met a damaged block (ExitIfCorrupt).
//
// Free-space reserve (options.disk_space, server/disk_space.h): while this
// node's disk is below it, the node stores no new entries. As leader it
// refuses proposals (RESOURCE_EXHAUSTED); as follower it drops appends that
// carry entries and snapshots (heartbeats still go on, so it keeps a leader
// and serves reads of what it has), and it fails at once a linearizable read
// that would need entries it does not store. Every message it sends says so
// (Message.no_space); a leader refuses proposals too while a majority of
// voters, itself included, is low, because then no entry can commit. A
// leader that is low hands leadership to a caught-up voter that is not, so
// one low node never stops writes the others could take.
//
// Corrupt data (options.data_corrupt): a leader whose data is corrupt takes
// no writes and hands leadership to a voter that is not; when every voter
// is corrupt (e.g. the hash check found no majority), the leader keeps
// office and refuses every write with DATA_LOSS until an operator acts.
#ifndef RAFTKV_SERVER_NODE_H_
#define RAFTKV_SERVER_NODE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/kv.pb.h"
#include "raft/raft.h"
#include "server/callback_pool.h"
#include "server/disk_space.h"
#include "server/hard_state_buffer.h"
#include "server/log_writer.h"
#include "server/stage_trace.h"
#include "server/state_machine.h"
#include "server/transport.h"
#include "storage/log_store.h"

namespace raftkv::server {

struct NodeOptions {
  uint64_t id = 0;
  // Compaction: once the log holds more than snapshot_entries entries
  // (0: never compact), drop its prefix, keeping the last
  // snapshot_keep_entries so briefly slow followers catch up from the log.
  uint64_t snapshot_entries = 10000;
  uint64_t snapshot_keep_entries = 1000;
  absl::Duration tick = absl::Milliseconds(100);
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  bool lease_reads = false;
  // A leader persists on a writer thread while its loop goes on (raft.h,
  // asynchronous writes); false: the loop persists every Ready itself.
  bool async_log_writes = true;
  // raft::Config::commit_notices. Off (the default): followers learn a new
  // commit index from the next append or heartbeat, not from a message of
  // its own (put-1 p50 -10%, CPU per put -15%, docs/BENCHMARKS.md); an
  // idle leader's followers then apply up to one heartbeat later.
  bool commit_notices = false;
  // Proposals taken from the inbox per round (one log append).
  size_t max_proposals_per_round = 4096;
  // Threads that answer linearizable reads once they are safe (the read and
  // the reply), so the loop goes on to the next round meanwhile. 0: the
  // loop thread answers them itself.
  int read_threads = 1;
  // Answer applied writes (the callbacks: the reply's serialization and
  // send) on a thread of their own, in apply order, so the loop goes on to
  // the next round meanwhile. False: the loop thread answers them itself.
  bool write_answer_thread = true;
  // The leader promotes a learner to voter once its match index is within
  // this many entries of the leader's last index (checked every tick).
  // 0: never automatically (PromoteMember only).
  uint64_t auto_promote_gap = 50;
  // Leadership transfers not done by then fail (the core aborts its own
  // after an election timeout).
  absl::Duration transfer_timeout = absl::Seconds(5);
  // Not owned; must outlive the node. Null (the default): no stage trace.
  StageTrace* stage_trace = nullptr;
  // Called on the loop thread for every conf-change entry this node
  // appends to its log (applied=false; before the round's messages go out)
  // and again when it is applied (applied=true). Must not block.
  std::function<void(const raftpb::ConfChange&, bool applied)> on_conf_change;
  // Called on the loop thread after a snapshot replaced the data.
  std::function<void()> on_snapshot_installed;
  // Called on the loop thread for each peer message dropped because this
  // node leads and the sender is in none of its configurations (see
  // Node::TakesFrom). Must not block.
  std::function<void(const raftpb::Message&)> on_non_member;
  // The data dir's free-space reserve (see above). Not owned; must outlive
  // the node. Null: no reserve.
  const DiskSpace* disk_space = nullptr;
  // True while this node's data is known to be corrupt (CORRUPT raised): as
  // leader it refuses every proposal (its answers, CAS outcomes and
  // versions, would come from data it cannot vouch for) and hands leadership
  // to the most up-to-date voter not known corrupt (checked every tick);
  // with none, it stays leader, refusing. Every message it sends says so
  // (Message.data_corrupt). Membership changes and leadership transfers are
  // still taken, so an operator can replace members. Its log is checksummed
  // apart from the data, so it stays a voting member and keeps appending and
  // applying. Any thread; must not block. Empty: never.
  std::function<bool()> data_corrupt;

  absl::Status Validate() const;
};

// Snapshot transfer for a Node (all optional; without them no snapshot is
// sent or installed). Not owned; must outlive the node.
struct SnapshotHooks {
  SnapshotSender* sender = nullptr;
  SnapshotReceiver* receiver = nullptr;
  std::function<std::string(uint64_t)> address_of;  // a peer's address
};

class Node {
 public:
  using WriteCallback = std::function<void(absl::StatusOr<kvpb::WriteResult>)>;
  // OK once the state machine has applied everything committed before the
  // read arrived: reading it now is linearizable.
  using ReadCallback = std::function<void(absl::Status)>;
  // The membership after the change, once its entry is applied here.
  using ConfCallback = std::function<void(absl::StatusOr<raftpb::ConfState>)>;
  // The new leader, once this node has seen another node take over.
  using TransferCallback = std::function<void(absl::StatusOr<uint64_t>)>;

  // The store, state machine and transport are not owned; they must outlive
  // the node. REQUIRES: the store is bootstrapped.
  static absl::StatusOr<std::unique_ptr<Node>> Create(const NodeOptions& options,
                                                      storage::LogStore* store,
                                                      KvStateMachine* sm,
                                                      MessageSender* transport,
                                                      SnapshotHooks hooks = SnapshotHooks());
  ~Node();  // Stop()s

  void Start();
  // Stops the loop; pending callbacks get UNAVAILABLE, and so do requests
  // made once Stop() has begun. Any thread, concurrently with requests.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Thread-safe entry points.
  void Propose(std::string command, absl::Time deadline, WriteCallback done)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Read(absl::Time deadline, ReadCallback done) ABSL_LOCKS_EXCLUDED(mu_);
  // Membership change (leader only): errors as FAILED_PRECONDITION ("not
  // leader; ...", "another change in progress", ...) or UNAVAILABLE.
  void ProposeConfChange(raftpb::ConfChange cc, absl::Time deadline, ConfCallback done)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Leadership transfer to `target` (0: the most up-to-date voter).
  void TransferLeadership(uint64_t target, absl::Time deadline, TransferCallback done)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Receive(raftpb::Message m) ABSL_LOCKS_EXCLUDED(mu_);
  void ReportUnreachable(uint64_t peer) ABSL_LOCKS_EXCLUDED(mu_);
  // A snapshot transfer to `peer` ended (from the sender's thread).
  void ReportSnapshot(uint64_t peer, bool ok) ABSL_LOCKS_EXCLUDED(mu_);

  // The leader as last seen by the loop (0: unknown) and the current term.
  uint64_t leader() const { return leader_.load(); }
  uint64_t term() const { return term_.load(); }
  bool is_leader() const { return leader_.load() == options_.id; }
  // A copy of the core's status, refreshed every tick and on a change of
  // role or leader.
  raft::Status RaftStatus() const ABSL_LOCKS_EXCLUDED(status_mu_);
  // A copy taken now: asks the loop for one and waits for it up to
  // `max_wait` (then, or once stopping, returns RaftStatus()). For callers
  // that show the indexes to a user: RaftStatus() may be a tick behind.
  // Blocks; not on the loop thread.
  raft::Status FreshRaftStatus(absl::Duration max_wait) ABSL_LOCKS_EXCLUDED(mu_, status_mu_);

 private:
  class LogView;
  Node(const NodeOptions& options, storage::LogStore* store, KvStateMachine* sm,
       MessageSender* transport, SnapshotHooks hooks, std::unique_ptr<LogView> view);

  struct PendingWrite {
    std::string command;
    absl::Time deadline;
    WriteCallback done;
    uint64_t arrived_ns = 0;  // only with a stage trace
  };
  struct PendingRead {
    absl::Time deadline;
    ReadCallback done;
  };
  struct Waiter {
    uint64_t term = 0;
    absl::Time deadline;
    WriteCallback done;
  };
  struct PendingConf {
    raftpb::ConfChange cc;
    absl::Time deadline;
    ConfCallback done;
  };
  struct PendingTransfer {
    uint64_t target = 0;
    absl::Time deadline;
    TransferCallback done;
  };
  struct ConfWaiter {
    uint64_t term = 0;
    absl::Time deadline;
    ConfCallback done;
  };
  struct Inbox {
    std::vector<PendingConf> confs;
    std::vector<PendingTransfer> transfers;
    std::vector<PendingWrite> writes;
    std::vector<PendingRead> reads;
    std::vector<raftpb::Message> messages;
    std::vector<uint64_t> unreachable;
    std::vector<std::pair<uint64_t, bool>> snapshot_reports;
    std::vector<std::pair<uint64_t, uint64_t>> persisted;  // (index, term), in order
    bool empty() const { return writes.empty() && EmptyButWrites(); }
    bool EmptyButWrites() const {
      return confs.empty() && transfers.empty() && reads.empty() && messages.empty() &&
             unreachable.empty() && snapshot_reports.empty() && persisted.empty();
    }
  };

  // Queues a request for the loop; once stopping (the loop no longer drains
  // the inbox, and an unanswered call would hold the gRPC server's
  // shutdown) answers it UNAVAILABLE at once instead.
  template <typename Pending>
  void Enqueue(std::vector<Pending> Inbox::*box, Pending p) ABSL_LOCKS_EXCLUDED(mu_);

  void Run();
  bool HasWorkLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return stopping_ || status_wanted_ || !inbox_.EmptyButWrites() ||
           (!inbox_.writes.empty() && !ProposalsHeldLocked());
  }
  // A leader proposes once per write of its log: proposals that arrive while
  // its write is in flight wait for it, and go out together in the next
  // round (one fsync and one append per follower for all of them) instead
  // of a round each. Acknowledgements are stepped meanwhile.
  bool ProposalsHeldLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return entry_writes_in_flight_ > 0;
  }
  void ProposeAll(std::vector<PendingWrite> writes);
  void StartReads(std::vector<PendingRead> reads);
  void StartConfChanges(std::vector<PendingConf> confs);
  void StartTransfers(std::vector<PendingTransfer> transfers);
  void CheckTransfers(absl::Time now);
  void MaybePromoteLearners();
  // A leader below its free-space reserve transfers leadership to the most
  // up-to-date active voter that is not (none: it stays, refusing writes).
  void MaybeHandOffForSpace();
  // The voter MaybeHandOffForSpace and MaybeStepAside would pick (heard
  // from, recently active, not low on space, not corrupt), the one it is
  // transferring to, or 0.
  uint64_t HandOffTarget() const;
  // A leader whose data is corrupt hands leadership to HandOffTarget()
  // (data_corrupt).
  void MaybeStepAside();
  // A store write or apply `what` failed with `s`: exits (see above).
  [[noreturn]] void StoreFailed(absl::string_view what, const absl::Status& s);
  void HandleReadies();
  // Step 2 of the driver contract: queued to the writer, or done here.
  void Persist(raft::Ready* rd, bool here);
  void StepMessage(const raftpb::Message& m);
  // Whether the core may see a peer message from `from` (see node.cc).
  bool TakesFrom(uint64_t from) const;
  // Stage trace records (options_.stage_trace); any thread.
  void TraceEntries(Stage stage, const std::vector<raftpb::Entry>& entries);
  // REQUIRES: options_.stage_trace != nullptr.
  void TraceMessage(const raftpb::Message& m, Stage append, Stage ack);
  void SendSnapshots(std::vector<raftpb::Message>* msgs);
  void InstallSnapshot(const raftpb::Snapshot& snapshot);
  void MaybeCompact();
  void Apply(const std::vector<raftpb::Entry>& entries);
  void ServeReads();
  void ExpireDeadlines(absl::Time now);
  void PublishStatus() ABSL_LOCKS_EXCLUDED(status_mu_);
  // Answers every write awaiting apply with `why`.
  void FailWrites(const absl::Status& why);
  void FailEverything(const absl::Status& why);
  absl::Status NotLeaderError() const;
  // Free-space reserve (see the header comment).
  bool LowOnSpace() const { return options_.disk_space != nullptr && options_.disk_space->low(); }
  // OK, or why a leader refuses proposals now: its data is corrupt
  // (CorruptRefusal), or this node, or a majority of voters, is below its
  // reserve.
  absl::Status ProposalRefusal() const;
  // Sets Message.no_space on `msgs` while LowOnSpace().
  void MarkSpace(std::vector<raftpb::Message>* msgs) const;
  // options_.data_corrupt(), false if unset.
  bool Corrupt() const { return options_.data_corrupt && options_.data_corrupt(); }
  // Why a corrupt leader refuses proposals: UNAVAILABLE (retriable) while it
  // hands leadership over or may once a healthy voter is heard from;
  // DATA_LOSS (final until an operator acts) when every voter, itself
  // included, is known corrupt.
  absl::Status CorruptRefusal() const;
  // Sets Message.data_corrupt on `msgs` while Corrupt().
  void MarkCorrupt(std::vector<raftpb::Message>* msgs) const;
  // True if `m` must not be stepped: it would make this node store entries
  // or a snapshot while it is low on space.
  bool DropForSpace(const raftpb::Message& m);

  const NodeOptions options_;
  storage::LogStore* const store_;
  KvStateMachine* const sm_;
  MessageSender* const transport_;
  const SnapshotHooks hooks_;
  std::unique_ptr<LogView> view_;     // what the core reads the log through
  std::unique_ptr<raft::Raft> core_;  // loop thread only
  uint64_t last_conf_index_ = 0;      // index of the last applied conf change
  // Which hard state each write carries (a commit index alone waits for
  // the next write); loop thread.
  HardStateBuffer hard_state_;

  absl::Mutex mu_;
  Inbox inbox_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool status_wanted_ ABSL_GUARDED_BY(mu_) = false;  // FreshRaftStatus waits
  // Writes with entries queued to writer_ and not finished yet.
  int entry_writes_in_flight_ ABSL_GUARDED_BY(mu_) = 0;

  // Loop-thread state.
  // What each peer's last message said of it (Message.no_space,
  // Message.data_corrupt); a peer not heard from yet has no entry.
  struct PeerFlags {
    bool low_on_space = false;
    bool corrupt = false;
  };
  std::map<uint64_t, PeerFlags> peer_flags_;
  uint64_t dropped_for_space_ = 0;  // appends and snapshots dropped
  std::map<uint64_t, Waiter> waiters_;                  // by log index
  std::map<uint64_t, ConfWaiter> conf_waiters_;         // by log index
  std::vector<PendingTransfer> transfers_;              // awaiting a new leader
  std::map<std::string, PendingRead> reads_by_context_;  // awaiting a read index
  std::multimap<uint64_t, PendingRead> reads_by_index_;  // awaiting apply
  const int64_t read_nonce_;  // this incarnation's, part of read contexts
  uint64_t next_read_id_ = 0;

  // The highest acked index the stage trace recorded (TraceMessage).
  std::atomic<uint64_t> acks_received_traced_{0};
  std::atomic<uint64_t> acks_stepped_traced_{0};

  std::atomic<uint64_t> leader_{0};
  std::atomic<uint64_t> term_{0};
  mutable absl::Mutex status_mu_;
  raft::Status status_ ABSL_GUARDED_BY(status_mu_);
  uint64_t status_version_ ABSL_GUARDED_BY(status_mu_) = 0;  // +1 per PublishStatus

  std::thread loop_;
  // Asynchronous writes (options_.async_log_writes): made in Start(),
  // destroyed once the loop stopped, after finishing what it holds.
  std::unique_ptr<LogWriter> writer_;
  // Answers safe reads (options_.read_threads > 0); destroyed after the loop
  // stops, running every read already handed to it.
  std::unique_ptr<CallbackPool> read_pool_;
  // Answers applied writes (options_.write_answer_thread; one thread, so in
  // apply order); destroyed like read_pool_.
  std::unique_ptr<CallbackPool> write_answers_;
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_NODE_H_
