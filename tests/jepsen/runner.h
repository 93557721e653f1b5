// One fault-injection run, Jepsen style: start a cluster of real servers
// (with --enable_fault_injection), run concurrent clients doing put, get,
// delete and compare-and-swap on a few keys (plus gets and scans of all the
// keys sent to one random member, mostly serializable, whose answers record
// the member and its applied index) while a seeded nemesis
// (nemesis.h) kills, pauses, partitions and slows nodes and cuts snapshot
// transfers; then heal and check:
//
//   1. the history (every operation, with invocation and completion times
//      and outcome ok / failed / unknown) is linearizable (checker.h);
//   2. every acknowledged write survived unless overwritten: a final
//      linearizable read of every key after healing is part of the history,
//      so a lost write makes it non-linearizable;
//   3. every replica holds identical data (same applied index and digest);
//   4. the cluster serves again (a write and a read) within a bound after
//      the faults healed;
//   5. with disk faults: each one did what it must (nemesis.h), and no read
//      was served by a corrupt member once it was seen flagged (CORRUPT
//      raised or exit 1): a read invoked after that and answered by it
//      fails the run. Reads it served between its restart on the damage
//      and that moment came from blocks whose checksums held, and are
//      checked for linearizability like every other read.
//
// Runs whose faults include fill-disk put each founding node's data dir on
// a tmpfs of its own (disks.h; needs EnterPrivateMountNamespace() at the
// start of main(), else the run fails saying so) and run the nodes with
// --min_free_bytes=kFillDiskReserve. Runs with corrupt-block get two spare
// nodes (a corrupt member is replaced by one) and 6 MB of filler keys, so
// that every node has data SST files to damage.
//
// Runs whose faults include cut-snapshot start with a few MB of filler keys
// (outside the checked keys) and run the servers with a low compaction
// threshold, small chunks and a rate cap, so that a snapshot transfer takes
// about a second and can be caught mid-way.
//
// A failing run (or any run, with keep_artifacts) leaves in its artifact
// directory: history.txt (history.h format), faults.txt (the schedule and
// what each fault hit, with times), report.txt, and every node's log; and
// RunResult::replay holds the command that runs the same schedule again.
//
// Error mapping: a write is `failed` only when the cluster refused it as
// invalid (INVALID_ARGUMENT is decided before proposing, on every attempt
// alike); every other error (timeouts, unavailable, not leader after
// retries that may have reached an old leader, aborted) is `unknown`. A
// read that got no answer is `unknown` (the checker ignores it); a read sent
// to one member is one call with a deadline of at most a second, never
// retried or redirected.
//
// The etcd-API mode (RunOptions::api = Api::kEtcd) runs the same workload,
// schedule and checks, but every client operation (the final reads and the
// recovery probe too) speaks etcd's KV service (etcd_client.h): put ->
// Put, get -> Range (linearizable through the client; the reads sent to one
// member as in the native mode, serializable or not), delete -> DeleteRange
// (found: deleted > 0), compare-and-swap -> Txn (compare VALUE == expected,
// or MOD == expected mod_revision, 0 for an absent key; then Put, else a
// Range of the key, which gives a failed CAS's current state), scan ->
// Range of the prefix. Each client talks to one member (its own, round
// robin) and moves to the next after a call with no answer, as etcd's
// clients do; followers forward writes. What the checker's model
// (checker.h) needs of `version` holds for etcd's mod_revision: one
// store-wide revision per write, growing along the linearization, so
// `version` is the key's mod_revision (a put's and a CAS's: the answer's
// header.revision, the revision written; a read's: the kv's mod_revision)
// and a read sent to one member records the answering member_id and the
// header.revision of the view it read (the store's revision, at least every
// mod_revision it returned) as its applied index. Values are unique per
// write. Error mapping: a write is `failed` only on INVALID_ARGUMENT
// (etcd's request checks, before proposing); everything else, notably
// UNAVAILABLE ("leader changed", "request timed out", "no leader",
// connection closed) and DEADLINE_EXCEEDED, is `unknown`. Writes are one
// call each, never retried; linearizable gets through the client are
// retried on the next member within the operation's timeout.
#ifndef RAFTKV_TESTS_JEPSEN_RUNNER_H_
#define RAFTKV_TESTS_JEPSEN_RUNNER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/jepsen/checker.h"
#include "tests/jepsen/nemesis.h"

namespace raftkv::jepsen {

struct RunOptions {
  // Which API the clients speak: raftkv's own (client/client.h) or etcd's
  // KV service (the etcd-API mode above).
  enum class Api { kNative, kEtcd };
  Api api = Api::kNative;
  int nodes = 3;
  uint64_t seed = 1;
  absl::Duration length = absl::Seconds(20);  // of load and faults
  int clients = 5;
  int keys = 4;
  std::vector<FaultKind> kinds = DefaultFaultKinds();
  // One client call, retries included (odd-numbered clients: a sixth).
  absl::Duration op_timeout = absl::Seconds(3);
  // After healing, the cluster must serve a write and a read within this.
  absl::Duration recovery_bound = absl::Seconds(20);
  // Where artifacts go ("" = $TEST_UNDECLARED_OUTPUTS_DIR, else /tmp);
  // each run gets its own subdirectory.
  std::string out_dir;
  bool keep_artifacts = false;  // also for passing runs
  // Extra server flags for every node (e.g. "--lease_reads").
  std::vector<std::string> server_flags;
  // Partitions by routes between network namespaces (netns.h) instead of
  // the servers' fault layer; needs EnterPrivateNetns() at the start of
  // main(). Loss and delay still use the fault layer.
  bool netns = false;
  // Client and peer mutual TLS: every node runs with the eight TLS flags
  // (--cert_file ... --peer_client_cert_auth) and every client of the run
  // (the client library, the per-member stubs, the harness's channels the
  // nemesis uses) presents a client certificate. The directory holds what
  // `tools/make_certs DIR node client` makes: ca.pem, node.pem,
  // node-key.pem, client.pem, client-key.pem. "" = plaintext. Not with
  // netns (the certificates name 127.0.0.1 only).
  std::string tls_dir;
  // Planted bug, for checking the checker end to end: reads (gets and
  // scans) are sent to a random node as serializable (local, possibly
  // stale) reads but recorded as linearizable ones. Such runs should be
  // found NOT linearizable.
  bool planted_stale_reads = false;
  // Progress lines (faults, op counts); may be empty.
  std::function<void(const std::string&)> progress;
};

struct RunResult {
  // OK iff every check passed; else what failed (the first failure).
  absl::Status status;
  std::vector<std::string> failures;  // every failed check
  size_t ops = 0, ok = 0, unknown = 0, failed = 0;
  size_t member_reads = 0;  // ok reads answered by the member they were sent to
  int faults = 0;
  int snapshot_cuts = 0;  // transfers cut mid-way (Nemesis::snapshot_cuts)
  DiskFaultStats disk;
  // Reads answered by a damaged member before it was seen flagged, and
  // reads refused by it (DATA_LOSS).
  size_t corrupt_served = 0, corrupt_refused = 0;
  CheckResult check;
  bool linearizable = false;
  absl::Duration recovery;  // heal -> serving again
  absl::Duration elapsed;
  std::string artifacts;  // directory, when kept
  std::string replay;     // command that runs this schedule again
  std::string Summary() const;
};

RunResult RunOnce(const RunOptions& options);

// The tools/torture command line that replays `options`.
std::string ReplayCommand(const RunOptions& options);

}  // namespace raftkv::jepsen

#endif  // RAFTKV_TESTS_JEPSEN_RUNNER_H_
