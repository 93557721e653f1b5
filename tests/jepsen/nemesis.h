// The nemesis of a fault-injection run: a seeded schedule of faults and the
// machinery that inflicts and heals them on a running Cluster.
//
// The schedule is a pure function of (seed, nodes, length, kinds): the same
// arguments give the same sequence of faults, waits, hold times and target
// picks. Targets that depend on the cluster at the time ("the leader") are
// resolved when the fault is applied, and the applied fault is described
// (with the node ids it hit) for the run's fault log.
//
// Faults, one at a time, each held for a while and then healed:
//   kill / kill-leader      SIGKILL, restart after the hold
//   pause / pause-leader    SIGSTOP for longer than an election timeout, SIGCONT
//   isolate-leader          the leader cut off from every other node
//   split                   a random minority | majority partition
//   bridge                  two halves that only one node sees both of
//   drop                    every peer message dropped with a probability
//   delay                   every peer message delayed (plus a little loss)
//   transfer-leader         leadership moved to another voter (no hold)
//   replace                 a follower removed from the membership and
//                           killed; a spare node (Cluster spares) joins in
//                           its place (--join, auto-promoted once caught up)
//   cut-snapshot            a snapshot transfer cut mid-way: a follower is
//                           cut off until the leader has compacted its log
//                           past it, then let back; once the follower is
//                           receiving the snapshot, the transfer is cut by
//                           SIGKILL of the follower or of the sender, or by
//                           cutting the link again (the seed picks). Needs
//                           a data set and a rate cap that make a transfer
//                           last long enough to be caught (runner.cc).
//   fill-disk               a ballast file fills one node's private tmpfs
//                           (disks.h) below its --min_free_bytes; the node
//                           must raise NOSPACE (or exit 74 if it truly ran
//                           out of space: then restarted once space is
//                           back); healed by removing the ballast, after
//                           which the alarm must clear
//   corrupt-block           a follower stopped (SIGTERM), bytes flipped in
//                           the middle of one of its data SST files, then
//                           restarted with the scrub at once: it must raise
//                           CORRUPT (or exit 1 if applying or a compaction
//                           met the damage first); healed by removing it
//                           from the membership and joining a spare in its
//                           place, as docs/INTEGRITY.md tells operators (a
//                           corrupt member is never restarted as healthy)
// fill-disk and corrupt-block are not among the default kinds: fill-disk
// needs root (a private mount namespace, disks.h), corrupt-block a spare.
// A fill that raises nothing, or damage never flagged, is a violation
// (disk_violations()), not a silent no-op.
// About one fault in four comes together with the next one (say a
// partition and a SIGKILL), both held and then healed together.
// Partitions use the servers' fault layer (Admin.SetFaults; the nodes must
// run with --enable_fault_injection), blocking both directions of every cut
// link, unless a LinkCutter is given: then they are cut outside the servers
// (netns.h: routes between network namespaces). Loss and delay always use
// the fault layer.
//
// Thread safety: one thread drives a Nemesis (the Cluster's start/stop
// methods are not thread-safe); counters may be read from any thread.
#ifndef RAFTKV_TESTS_JEPSEN_NEMESIS_H_
#define RAFTKV_TESTS_JEPSEN_NEMESIS_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/cluster_harness.h"

namespace raftkv::jepsen {

enum class FaultKind {
  kKill,
  kKillLeader,
  kPause,
  kPauseLeader,
  kIsolateLeader,
  kSplit,
  kBridge,
  kDrop,
  kDelay,
  kTransferLeader,
  kReplace,
  kCutSnapshot,
  kFillDisk,
  kCorruptBlock,
};
const char* FaultKindName(FaultKind k);
// Every kind, in declaration order.
std::vector<FaultKind> AllFaultKinds();
// Every kind but the disk faults (fill-disk, corrupt-block): a run's default.
std::vector<FaultKind> DefaultFaultKinds();
// "kill,split,..." -> kinds ("": the default ones); INVALID_ARGUMENT naming
// an unknown one.
absl::Status ParseFaultKinds(const std::string& list, std::vector<FaultKind>* out);

struct Fault {
  FaultKind kind = FaultKind::kKill;
  absl::Duration wait;  // quiet time before it
  absl::Duration hold;  // how long it lasts
  uint64_t pick = 0;    // random bits that choose the target nodes
  double drop = 0;      // drop, delay: loss probability
  int delay_ms = 0;     // delay
  bool with_next = false;  // the next fault starts at once and both are held
};
std::string FormatFault(const Fault& f);

// Faults until their waits and holds add up to `length`.
std::vector<Fault> MakeSchedule(uint64_t seed, int nodes, absl::Duration length,
                                const std::vector<FaultKind>& kinds);

// Cuts links between nodes outside the servers (netns.h).
class NodeDisk;

// What the disk faults did in a run.
struct DiskFaultStats {
  int fills = 0;             // fill-disk applied to a node
  int nospace_raised = 0;    // ... whose node was seen with NOSPACE
  int nospace_exits = 0;     // ... whose node exited 74 (restarted after the heal)
  int nospace_cleared = 0;   // ... whose node was seen again without NOSPACE
  int corruptions = 0;       // corrupt-block: a data SST of a stopped follower damaged
  int corrupt_alarms = 0;    // ... whose node was seen with CORRUPT
  int corrupt_exits = 0;     // ... whose node exited 1 (the damage met by apply/compaction)
  int corrupt_replaced = 0;  // corrupt nodes removed and replaced by a spare
  // Per damaged node: when it was restarted on the damage, and when it was
  // first seen flagged (CORRUPT raised, or its exit 1), MonotonicNanos.
  std::map<int, int64_t> damaged_ns, flagged_ns;
};

class LinkCutter {
 public:
  virtual ~LinkCutter() = default;
  virtual absl::Status Cut(int a, int b) = 0;  // both directions
  virtual absl::Status HealAll() = 0;
  virtual const char* name() const = 0;
};

class Nemesis {
 public:
  // `log` receives one line per event (applied, healed, errors). `links`
  // (not owned, may be null): cuts partitioned links instead of the
  // servers' fault layer.
  Nemesis(testing::Cluster* cluster, std::function<void(const std::string&)> log,
          LinkCutter* links = nullptr);

  // Inflicts `f` on the cluster; returns what it did (the nodes it hit).
  // Waits out nothing: the caller holds the fault, then calls Heal().
  std::string Apply(const Fault& f);

  // Sleeps `hold`, meanwhile watching nodes under disk faults (their
  // alarms, their exits).
  void Hold(absl::Duration hold);

  // fill-disk's disks (not owned; nodes without one are never filled) and
  // the --min_free_bytes the nodes run with. Call before the first Apply.
  void SetDisks(std::map<int, NodeDisk*> disks, uint64_t min_free_bytes) {
    disks_ = std::move(disks);
    min_free_bytes_ = min_free_bytes;
  }

  // Undoes every fault: SIGCONT paused nodes, restarts killed ones, clears
  // every node's fault table, removes ballast files (and restarts a node
  // that exited 74) and replaces a corrupt member by a spare. An error if some node did not take it
  // within `timeout`.
  absl::Status Heal(absl::Duration timeout = absl::Seconds(30));

  // The current leader by the nodes' own Status (the highest term's), 0 if
  // none answers as leader.
  int FindLeader();

  int faults() const { return faults_.load(); }
  // Snapshot transfers seen in progress (the follower receiving) at the
  // moment cut-snapshot cut them by SIGKILL of either end or by a real
  // link cut (a LinkCutter; the fault layer's block lets a stream run on
  // and only refuses the image at its end: not counted).
  int snapshot_cuts() const { return snapshot_cuts_.load(); }
  // The nodes that are members now (founders, less replaced ones, plus
  // spares that joined).
  const std::set<int>& members() const { return members_; }
  // For the driving thread, after the run.
  const DiskFaultStats& disk_stats() const { return disk_; }
  // Disk faults that did not do what they must (no NOSPACE, damage never
  // flagged, a node ending otherwise than by exit 74 / 1).
  const std::vector<std::string>& disk_violations() const { return disk_violations_; }

 private:
  void Log(const std::string& line) { log_(line); }
  // Blocks every link between a node of `a` and a node of `b`, both ways.
  std::string Partition(const std::vector<std::set<int>>& groups);
  // Adds to node's fault table (faults held together add up) and sends it.
  absl::Status SetFaults(int node, const std::map<int, std::pair<double, int>>& lossy,
                         const std::set<int>& blocked);
  // Heals every partition (not loss, delay, kills or pauses).
  void ClearPartitions();
  int PickNode(uint64_t pick, int avoid = 0) const;
  std::string Replace(const Fault& f);
  std::string CutSnapshot(const Fault& f);  // in snapshot_cut.cc
  // In disk_faults.cc.
  std::string FillDisk(const Fault& f);
  std::string CorruptBlock(const Fault& f);
  // Looks at the nodes under disk faults once: alarms raised, exits.
  void WatchDisks();
  // Heal, first part: ballast removed, nodes that exited 74 restarted.
  absl::Status FreeDisks();
  // Heal, last part: NOSPACE cleared on every node filled; a corrupt node
  // flagged, then removed and replaced by a spare.
  absl::Status SettleDisks(absl::Duration timeout);
  void DiskViolation(const std::string& what);
  // Node `id`'s role, log indexes, peers' progress and transfers, for logs.
  std::string Describe(int id);

  testing::Cluster* const cluster_;
  const std::function<void(const std::string&)> log_;
  LinkCutter* const links_;
  std::map<int, pid_t> pids_;  // learned from SetFaults answers
  // Retires the nodes of pending_removal_ that the leader no longer lists.
  void SettleRemovals();

  std::set<int> members_;
  // Nodes whose removal had an unknown outcome: settled at the next heal.
  std::set<int> pending_removal_;
  int next_spare_ = 0;  // id of the next spare to join
  std::set<int> paused_;
  std::map<int, std::map<int, std::pair<double, int>>> lossy_;  // node -> peer -> (drop, ms)
  std::map<int, std::set<int>> blocked_;                       // node -> peers
  std::set<int> killed_;
  std::atomic<int> faults_{0};
  std::atomic<int> snapshot_cuts_{0};

  std::map<int, NodeDisk*> disks_;
  uint64_t min_free_bytes_ = 0;
  struct Full {
    bool raised = false;  // NOSPACE seen
    bool exited = false;  // exit 74 seen
  };
  std::map<int, Full> full_;  // nodes whose disk is filled now
  int corrupt_ = 0;           // the damaged node not yet replaced, 0 if none
  DiskFaultStats disk_;
  std::vector<std::string> disk_violations_;
};

}  // namespace raftkv::jepsen

#endif  // RAFTKV_TESTS_JEPSEN_NEMESIS_H_
