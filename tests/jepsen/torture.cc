// torture: fault-injection soak runs (runner.h), one seeded run after
// another, until --minutes or --runs is used up. Prints each fault and each
// run's result, then a summary; exits 1 if any run found a violation or a
// failed check. Usually started through tools/torture.
//
//   torture --minutes=30 --nodes=5 --seed=100       runs seeds 100, 101, ...
//   torture --nodes=3 --seed=7 --runs=1 --run_seconds=15   replays one run
//   torture --check_history=DIR/history.txt          re-checks a saved history
//   torture --netns --minutes=10                     partitions by routes between
//                                                    network namespaces (root)
//   torture --api=etcd                               clients speak etcd's KV service
//   torture --tls_dir=DIR                            client and peer mutual TLS with
//                                                    `tools/make_certs DIR node client`
//                                                    (tools/torture --tls makes them)
#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gflags/gflags.h"
#include "tests/jepsen/checker.h"
#include "tests/jepsen/disks.h"
#include "tests/jepsen/history.h"
#include "tests/jepsen/netns.h"
#include "tests/jepsen/runner.h"

DEFINE_double(minutes, 5, "Stop starting new runs after this many minutes.");
DEFINE_int32(nodes, 3, "Cluster size: 3 or 5.");
DEFINE_uint64(seed, 1, "Seed of the first run; run i uses seed + i.");
DEFINE_int32(runs, 0, "Number of runs (0: as many as fit in --minutes).");
DEFINE_int32(run_seconds, 60, "Length of each run's load and faults, in seconds.");
DEFINE_int32(clients, 5, "Concurrent clients.");
DEFINE_int32(keys, 4, "Keys the clients contend on.");
DEFINE_string(faults, "", "Fault kinds, comma-separated (default: all): kill, kill-leader, "
              "pause, pause-leader, isolate-leader, split, bridge, drop, delay, transfer-leader, "
              "replace, cut-snapshot; and, never by default: fill-disk (root: a tmpfs per "
              "node), corrupt-block.");
DEFINE_bool(netns, false,
            "Partitions by blackhole routes between network namespaces (one per node) instead "
            "of the servers' fault layer. Needs root and iproute2's `ip`; the host's own "
            "namespaces are not touched.");
DEFINE_string(tls_dir, "",
              "Client and peer mutual TLS on every node and client, with the certificates "
              "`tools/make_certs DIR node client` made in this directory (tools/torture --tls "
              "makes a fresh set).");
DEFINE_string(api, "native",
              "What the clients speak: native (raftkv's client library) or etcd (etcd's KV "
              "service: Put, Range, DeleteRange, Txn; runner.h).");
DEFINE_string(out_dir, "/tmp/raftkv-torture", "Where failing runs keep their artifacts.");
DEFINE_bool(keep_artifacts, false, "Keep artifacts of passing runs too.");
DEFINE_bool(planted_stale_reads, false,
            "Planted bug: reads go to any node as serializable reads but are recorded as "
            "linearizable (such runs must FAIL).");
DEFINE_string(server_flags, "",
              "Extra flags for every server, space-separated (e.g. --lease_reads).");
DEFINE_string(check_history, "", "Only check this saved history file and exit.");

int main(int argc, char** argv) {
  gflags::SetUsageMessage("fault-injection soak runs checked for linearizability");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  using namespace raftkv::jepsen;
  if (!FLAGS_check_history.empty()) {
    std::ifstream in(FLAGS_check_history);
    std::stringstream ss;
    ss << in.rdbuf();
    auto h = ParseHistory(ss.str());
    if (!h.ok()) {
      std::cerr << FLAGS_check_history << ": " << h.status() << "\n";
      return 2;
    }
    CheckResult r = CheckHistory(*h);
    std::cout << r.Report() << std::endl;
    return r.ok() ? 0 : 1;
  }
  std::vector<FaultKind> kinds;
  if (absl::Status s = ParseFaultKinds(FLAGS_faults, &kinds); !s.ok()) {
    std::cerr << "--faults: " << s << "\n";
    return 2;
  }
  if (std::find(kinds.begin(), kinds.end(), FaultKind::kFillDisk) != kinds.end()) {
    // Before any thread exists (disks.h).
    if (absl::Status s = EnterPrivateMountNamespace(); !s.ok()) {
      std::cerr << "--faults=fill-disk: " << s.message() << "\n";
      return 2;
    }
  }
  if (FLAGS_netns) {
    // Before any thread exists (netns.h).
    if (absl::Status s = EnterPrivateNetns(); !s.ok()) {
      std::cerr << "--netns: " << s.message() << "\n";
      return 2;
    }
  }
  if (FLAGS_nodes != 3 && FLAGS_nodes != 5) {
    std::cerr << "--nodes must be 3 or 5\n";
    return 2;
  }
  RunOptions base;
  if (FLAGS_api == "etcd") {
    base.api = RunOptions::Api::kEtcd;
  } else if (FLAGS_api != "native") {
    std::cerr << "--api must be native or etcd, not \"" << FLAGS_api << "\"\n";
    return 2;
  }
  base.nodes = FLAGS_nodes;
  base.length = absl::Seconds(FLAGS_run_seconds);
  base.clients = FLAGS_clients;
  base.keys = FLAGS_keys;
  base.out_dir = FLAGS_out_dir;
  base.keep_artifacts = FLAGS_keep_artifacts;
  base.planted_stale_reads = FLAGS_planted_stale_reads;
  base.netns = FLAGS_netns;
  base.tls_dir = FLAGS_tls_dir;
  if (!base.tls_dir.empty() && base.netns) {
    std::cerr << "--tls_dir cannot go with --netns: the certificates name 127.0.0.1 only\n";
    return 2;
  }
  for (absl::string_view f : absl::StrSplit(FLAGS_server_flags, ' ', absl::SkipWhitespace())) {
    base.server_flags.emplace_back(f);
  }
  base.kinds = kinds;
  base.progress = [](const std::string& line) { std::cout << line << std::endl; };

  const absl::Time start = absl::Now();
  const absl::Time stop = start + absl::Seconds(FLAGS_minutes * 60);
  int runs = 0, bad = 0, violations = 0, faults = 0, cuts = 0;
  size_t ops = 0, ok = 0, unknown = 0;
  std::vector<std::string> failed;
  while ((FLAGS_runs > 0 ? runs < FLAGS_runs : absl::Now() < stop)) {
    RunOptions o = base;
    o.seed = FLAGS_seed + runs;
    // The last run of a timed soak is shortened to end on time.
    if (FLAGS_runs == 0 && stop - absl::Now() < o.length) {
      o.length = std::max(absl::Seconds(5), stop - absl::Now());
    }
    std::cout << "run " << runs + 1 << ": nodes " << o.nodes << " seed " << o.seed << " for "
              << absl::FormatDuration(o.length) << std::endl;
    RunResult r = RunOnce(o);
    ++runs;
    ops += r.ops;
    ok += r.ok;
    unknown += r.unknown;
    faults += r.faults;
    cuts += r.snapshot_cuts;
    std::cout << "run " << runs << " seed " << o.seed << ": " << r.Summary() << std::endl;
    if (!r.status.ok()) {
      ++bad;
      if (!r.linearizable) ++violations;
      failed.push_back(absl::StrCat("seed ", o.seed, ": ", r.status.message().substr(0, 300),
                                    "\n    artifacts: ", r.artifacts, "\n    replay: ", r.replay));
      std::cout << "  FAILED: " << r.status.message().substr(0, 2000) << "\n  artifacts: "
                << r.artifacts << "\n  replay: " << r.replay << std::endl;
    }
  }
  std::cout << "\n== torture summary: " << runs << " runs of " << FLAGS_nodes << " nodes in "
            << absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Seconds(1))) << ": "
            << ops << " operations (" << ok << " ok, " << unknown << " unknown), " << faults
            << " faults injected (" << cuts << " snapshot transfers cut mid-way), " << violations << " linearizability violations, " << bad
            << " failed runs" << std::endl;
  for (const auto& f : failed) std::cout << "  " << f << std::endl;
  return bad == 0 ? 0 : 1;
}
