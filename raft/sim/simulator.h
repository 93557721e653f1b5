// Simulator: randomized, deterministic tests of the Raft core.
//
// Runs a cluster of Raft cores (3 or 5 voters; more nodes join through
// membership changes) driven exactly per the driver contract in raft.h, over
// a simulated network (network.h) that drops, duplicates, delays and
// reorders messages and can be partitioned. A run alternates
//  - chaos phases: random proposals, linearizable reads (ReadIndex with
//    unique contexts, on leaders and followers), membership changes (add a
//    learner, promote it, remove a voter or a learner, the leader included),
//    leadership transfers (to a chosen voter, or 0), log compaction (lagging
//    nodes then get MSG_SNAPSHOT), crashes (also between the driver's steps
//    of a Ready: before or after the durable write, before applying, before
//    Advance), restarts, partitions (isolated node or leader, minority,
//    bridge, one-way links), a slow clock skipping ticks, and an adversary
//    that cuts a leader off right after it wins an election or commits;
//  - calm phases: the network heals (no drops or duplicates), crashed nodes
//    restart, and a leader must commit a proposal within
//    Options::liveness_ticks ticks (liveness).
// After every event (a delivered message, a tick, a client call, a
// transport report) the SafetyChecker checks the properties of Figure 3 of
// the Raft paper and the linearizability of reads (safety_checker.h);
// Raft::CheckInvariants() runs on every live node after every step (and the
// core itself CHECKs it after every input in debug builds).
//
// The transport, as a real one would, reports to the sender's core a
// snapshot it delivered (ReportSnapshot(to, true)) or lost (false), and an
// append lost to a cut link or a node that is down (ReportUnreachable).
// Clients wait for acknowledgements: a leader with a backlog of more than
// kMaxBacklog uncommitted entries gets no new proposals.
//
// Model of a node's durable state: its MemoryLog (log, hard state, snapshot)
// and its state machine (KvStateMachine). The state machine is persisted
// atomically with its applied index at each apply, as when the state machine
// lives in the same database as the Raft log; a restarted core gets
// Config.applied = the state machine's applied index. Installing a received
// snapshot writes the MemoryLog first and replaces the state machine
// second; a crash in between is repaired on restart by loading the state
// machine from the log's snapshot (the state machine is behind the log's
// snapshot index). Compaction takes the image at the node's applied index.
//
// Nodes that join start with an empty log and, at random, either no
// membership (like TestCluster::AddEmptyNode) or the cluster's bootstrap
// membership (the ConfState at index 0 of the original members);
// Options::empty_joiners makes every joiner start with none. Before conf
// entries recorded the resulting membership (commit 23e1563), a joiner with
// none replayed the changes onto an empty membership, believed itself the
// only voter once promoted and elected itself; --empty_joiners showed it
// (seed 71: two leaders in term 3, on the core before that commit).
//
// Options::async_writes runs every core with Config::async_storage_writes,
// driven per the asynchronous contract in raft.h: a node queues each
// Ready's write (entries, hard state, persisted messages) and goes on
// stepping; a queued write completes a random number of steps later, in
// FIFO order (sometimes several merged), then its persisted messages go out
// and Persisted() is fed. A crash loses the queue (also between a write and
// its messages or its Persisted()). A Ready with a snapshot, and at random
// another one (as the server writes a follower's Ready inline), is written
// synchronously after the queue drains. Every applied entry must be in the
// node's durable MemoryLog.
//
// Everything is driven by one std::mt19937_64 seeded with Options::seed:
// the same options give the same run (Result::trace_hash fingerprints it).
#ifndef RAFTKV_RAFT_SIM_SIMULATOR_H_
#define RAFTKV_RAFT_SIM_SIMULATOR_H_

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

namespace raftkv::raft::sim {

struct Options {
  uint64_t seed = 1;
  int nodes = 3;          // initial voters (ids 1..nodes)
  int steps = 600;        // length of the run in steps (plus a final calm phase)
  int steps_per_tick = 3; // logical clock: one tick every this many steps

  // Network faults during chaos phases (no drops or duplicates when calm).
  double drop = 0.05;
  double duplicate = 0.03;
  double long_delay = 0.03;
  int max_delay = 3;  // steps

  // Chances per step (chaos phases).
  double partition = 0.02;  // start a partition when none is active
  double heal = 0.03;       // end the partition
  double crash = 0.008;     // crash a live node
  double restart = 0.05;    // restart a crashed node
  double tick_skip = 0.03;  // per node and tick: a slow clock skips it
  // Chance that a node crashes while processing a Ready (per Ready).
  double crash_in_ready = 0.002;
  // Chance, when a leader is elected or advances its commit index, that it
  // is isolated at once.
  double isolate_leader_on_event = 0.02;

  // Client traffic per step (chaos and calm phases).
  double propose = 0.25;
  double read = 0.12;
  double conf_change = 0.02;  // chaos only
  double transfer = 0.008;    // chaos only
  double compact = 0.02;

  // Phases.
  int chaos_min = 120, chaos_max = 360;  // steps
  int calm_extra = 30;        // steps of calm after liveness was shown
  int liveness_ticks = 120;   // a calm cluster commits within this many ticks

  // Vary the core's Config per seed (message size caps, inflight window,
  // pre-vote, check-quorum, lease reads, election timeout).
  bool vary_config = true;

  // Config::max_msg_bytes for every node (0: chosen per seed). 1 sends one
  // entry per append, which the planted bug needs to bite.
  uint64_t max_msg_bytes = 0;

  // The planted bug (Config::unsafe_commit_old_terms) on every node.
  bool unsafe_commit_old_terms = false;
  // Every joining node starts with an empty ConfState (else half of them).
  bool empty_joiners = false;

  // Config::async_storage_writes on every node (see above).
  bool async_writes = false;
  int max_write_delay = 5;       // steps a queued write takes, at most
  double crash_in_write = 0.01;  // per completed write: crash before its acks
                                 // or its Persisted() (chaos phases)

  // Chance per step (chaos phases) that a live node is stepped a message
  // from a hostile peer (hostile_peer.h): one it must refuse without any
  // change, or one it may take without harm.
  double hostile = 0;

  bool verbose = false;  // print every event to stdout
};

struct Result {
  bool ok = true;
  std::string violation;     // the first violation, empty if ok
  uint64_t violation_step = 0;
  uint64_t trace_hash = 0;   // fingerprint of the run (determinism)

  // Statistics.
  uint64_t steps = 0, ticks = 0, events = 0;
  uint64_t messages = 0, dropped = 0, duplicated = 0, cut = 0;
  uint64_t leaders = 0;       // terms with a leader
  uint64_t applied = 0;       // highest index applied
  uint64_t proposals = 0, reads_requested = 0, reads_served = 0;
  uint64_t conf_changes = 0;  // conf changes proposed successfully
  uint64_t transfers = 0, compactions = 0, snapshots_installed = 0;
  uint64_t crashes = 0, crashes_in_ready = 0, restarts = 0, partitions = 0;
  uint64_t calm_phases = 0;
  // Asynchronous writes: writes completed, the longest queue of a node,
  // crashes between a write and its acknowledgements or Persisted().
  uint64_t writes = 0, max_queued_writes = 0, crashes_in_write = 0;
  uint64_t old_term_commits = 0;  // see SafetyChecker::old_term_commits
  uint64_t hostile = 0, hostile_refused = 0;  // hostile messages, those refused
  int max_liveness_ticks = 0;  // worst time to commit after healing
  std::string config;          // the core Config chosen for this seed
};

Result RunSimulation(const Options& options);

// The command that replays a run with these options (the fault knobs below,
// --max_msg_bytes, --max_write_delay and the boolean options; other fields
// at their defaults).
std::string ReplayCommand(const Options& options);

// The fault probabilities simulate accepts as flags: (name, value in `o`,
// value in `d`).
std::vector<std::tuple<const char*, double, double>> FaultKnobs(const Options& o,
                                                                const Options& d);

// One line of statistics.
std::string Summary(const Result& r);

}  // namespace raftkv::raft::sim

#endif  // RAFTKV_RAFT_SIM_SIMULATOR_H_
