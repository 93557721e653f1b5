// simulate: runs the Raft simulator over many seeds and prints a summary.
//
//   bazel run //raft/sim:simulate -- --seeds=1000 --nodes=5
//   bazel run //raft/sim:simulate -- --seed=1234 --nodes=5 --steps=600 --verbose
//   bazel run //raft/sim:simulate -- --seeds=500 --async_writes
//
// With --seed, runs that one seed (add --verbose for a trace of every event);
// otherwise runs seeds --first_seed .. --first_seed+--seeds-1. Exits 1 if any
// seed finds a violation, printing the command that replays it.
#include <chrono>
#include <iostream>

#include "gflags/gflags.h"
#include "glog/logging.h"
#include "raft/sim/simulator.h"

DEFINE_uint64(seed, 0, "run this one seed (0: run --seeds seeds)");
DEFINE_uint64(seeds, 100, "number of seeds to run");
DEFINE_uint64(first_seed, 1, "first seed when running --seeds");
DEFINE_int32(nodes, 3, "initial voters (3 or 5)");
DEFINE_int32(steps, 600, "steps per run");
DEFINE_bool(verbose, false, "print every event (and the core's log)");
DEFINE_bool(unsafe_commit_old_terms, false, "plant the Figure 8 bug in the core");
DEFINE_bool(empty_joiners, false, "joining nodes start with an empty membership");
DEFINE_bool(vary_config, true, "vary the core's Config per seed");
DEFINE_bool(async_writes, false,
            "Config::async_storage_writes: nodes queue their writes, which complete later");
DEFINE_int32(max_write_delay, raftkv::raft::sim::Options().max_write_delay,
             "with --async_writes: steps a queued write takes, at most");
// Fault probabilities (see Options in simulator.h).
DEFINE_double(drop, raftkv::raft::sim::Options().drop, "message drop chance");
DEFINE_double(duplicate, raftkv::raft::sim::Options().duplicate, "message duplication chance");
DEFINE_double(partition, raftkv::raft::sim::Options().partition, "partition chance per step");
DEFINE_double(crash, raftkv::raft::sim::Options().crash, "crash chance per step");
DEFINE_double(crash_in_ready, raftkv::raft::sim::Options().crash_in_ready,
              "chance of a crash while a node processes a Ready");
DEFINE_double(crash_in_write, raftkv::raft::sim::Options().crash_in_write,
              "with --async_writes: chance of a crash after a write, before its "
              "acknowledgements or Persisted()");
DEFINE_double(isolate_leader_on_event, raftkv::raft::sim::Options().isolate_leader_on_event,
              "chance to isolate a leader right after it is elected or commits");
DEFINE_double(conf_change, raftkv::raft::sim::Options().conf_change,
              "membership change chance per step");
DEFINE_double(transfer, raftkv::raft::sim::Options().transfer,
              "leadership transfer chance per step");
DEFINE_double(compact, raftkv::raft::sim::Options().compact, "compaction chance per step");
DEFINE_double(hostile, raftkv::raft::sim::Options().hostile,
              "chance per step of a hostile peer's message (hostile_peer.h)");
DEFINE_uint64(max_msg_bytes, 0, "Config::max_msg_bytes (0: chosen per seed)");
DEFINE_bool(hashes, false, "print every seed's trace hash (to compare runs)");
DEFINE_bool(stop_at_first, false, "stop at the first violating seed");

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  if (!FLAGS_verbose) FLAGS_minloglevel = 2;  // the core's INFO/WARNING logs
  google::InitGoogleLogging(argv[0]);

  raftkv::raft::sim::Options o;
  o.nodes = FLAGS_nodes;
  o.steps = FLAGS_steps;
  o.verbose = FLAGS_verbose;
  o.unsafe_commit_old_terms = FLAGS_unsafe_commit_old_terms;
  o.empty_joiners = FLAGS_empty_joiners;
  o.vary_config = FLAGS_vary_config;
  o.async_writes = FLAGS_async_writes;
  o.max_write_delay = FLAGS_max_write_delay;
  o.max_msg_bytes = FLAGS_max_msg_bytes;
  o.drop = FLAGS_drop;
  o.duplicate = FLAGS_duplicate;
  o.partition = FLAGS_partition;
  o.crash = FLAGS_crash;
  o.crash_in_ready = FLAGS_crash_in_ready;
  o.crash_in_write = FLAGS_crash_in_write;
  o.isolate_leader_on_event = FLAGS_isolate_leader_on_event;
  o.conf_change = FLAGS_conf_change;
  o.transfer = FLAGS_transfer;
  o.compact = FLAGS_compact;
  o.hostile = FLAGS_hostile;

  const uint64_t first = FLAGS_seed != 0 ? FLAGS_seed : FLAGS_first_seed;
  const uint64_t count = FLAGS_seed != 0 ? 1 : FLAGS_seeds;
  uint64_t failed = 0, steps = 0, events = 0, applied = 0;
  int worst_liveness = 0;
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t s = first; s < first + count; ++s) {
    o.seed = s;
    const raftkv::raft::sim::Result r = raftkv::raft::sim::RunSimulation(o);
    steps += r.steps;
    events += r.events;
    applied += r.applied;
    worst_liveness = std::max(worst_liveness, r.max_liveness_ticks);
    if (FLAGS_hashes) std::cout << "seed " << s << " trace " << std::hex << r.trace_hash << std::dec << "\n";
    if (count == 1 || !r.ok) {
      std::cout << "seed " << s << ": " << raftkv::raft::sim::Summary(r) << "\n"
                << "  config: " << r.config << "\n"
                << "  trace hash: " << std::hex << r.trace_hash << std::dec << "\n";
    }
    if (!r.ok) {
      ++failed;
      std::cout << "  violation at step " << r.violation_step << ": " << r.violation
                << "\n  replay: " << raftkv::raft::sim::ReplayCommand(o) << "\n";
      if (FLAGS_stop_at_first) break;
    }
  }
  const double secs = std::chrono::duration<double>(
                          std::chrono::steady_clock::now() - start).count();
  std::cout << count << " seed(s), " << FLAGS_nodes << " nodes: " << failed
            << " with violations; " << steps << " steps, " << events << " events, "
            << applied << " entries applied, worst liveness " << worst_liveness
            << " ticks; " << secs << " s\n";
  return failed == 0 ? 0 : 1;
}
