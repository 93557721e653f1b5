// A history of key-value operations as concurrent clients saw them, for the
// linearizability checker (checker.h).
//
// Each Op is one client call: what was asked (put, get, delete or
// compare-and-swap on one key, or a prefix scan, with its arguments), when it
// was invoked and
// when it completed (nanoseconds of a monotonic clock, the same clock for
// every client), and how it ended:
//
//   ok       the cluster answered; the result fields hold what it answered.
//   failed   definitely not applied (e.g. refused as invalid before it was
//            proposed). The checker ignores failed operations.
//   unknown  timed out, lost its connection, or exhausted its retries: it may
//            have been applied at any moment after its invocation, or never.
//            Its completion time is meaningless (treated as +infinity).
//
// A Get that found nothing is `ok` with found = false (NOT_FOUND is an
// answer, not an error). A read sent to one member directly also records
// which member answered and the applied index in its answer's header.
//
// Histories are saved as text, one operation per line, tab-separated
// `name=value` fields with C-escaped values (see FormatOp); ParseHistory reads
// them back, so a failing run's history can be checked again offline.
//
// Thread safety: Recorder may be used from any number of threads; the plain
// functions are pure.
#ifndef RAFTKV_TESTS_JEPSEN_HISTORY_H_
#define RAFTKV_TESTS_JEPSEN_HISTORY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace raftkv::jepsen {

enum class OpType { kPut, kGet, kDelete, kCas, kScan };
enum class Outcome { kOk, kFailed, kUnknown };

const char* OpTypeName(OpType t);      // "put", "get", "delete", "cas", "scan"
const char* OutcomeName(Outcome o);    // "ok", "failed", "unknown"

// One key of a scan's answer.
struct ScanKv {
  std::string key;
  std::string value;
  uint64_t version = 0;
};

struct Op {
  int64_t id = 0;     // position in the history (Recorder assigns it)
  int client = 0;     // which client (thread) issued it
  OpType type = OpType::kGet;
  std::string key;    // scan: the prefix (every key starting with it)
  std::string value;  // put: the value; cas: the new value

  // Compare-and-swap: compares the key's version with expected_version when
  // cas_by_version (0: the key must not exist), else its value with
  // expected_value (an absent key never matches).
  bool cas_by_version = false;
  std::string expected_value;
  uint64_t expected_version = 0;

  // get, scan: asked as a serializable read (the member's own state, no
  // leader check: possibly stale).
  bool serializable = false;

  int64_t invoke_ns = 0;
  int64_t complete_ns = 0;
  Outcome outcome = Outcome::kUnknown;

  // The answer, when outcome is ok:
  //  put:    version = the key's new version.
  //  get:    found; value/version of the key when found.
  //  delete: found = whether the key existed (DeleteResponse.deleted).
  //  cas:    succeeded; on success version = the new version; on failure
  //          found/out_value/version = the key's current state.
  //  scan:   kvs = the keys found, in key order; more = keys after the last
  //          one were left out (the scan covers keys up to the last only).
  bool found = false;
  bool succeeded = false;
  std::string out_value;
  uint64_t version = 0;
  std::vector<ScanKv> kvs;
  bool more = false;
  // Reads sent to one member: the node id that answered and the applied
  // index in its answer's header, read after the data (so at least the index
  // of the state read); 0 = not known (e.g. through the client library).
  uint64_t member = 0;
  uint64_t applied = 0;

  std::string error;  // failed/unknown: why (for reports)
};

// One line, no trailing newline; stable and parseable by ParseOp.
std::string FormatOp(const Op& op);
absl::StatusOr<Op> ParseOp(absl::string_view line);

// A readable one-line description for reports, e.g.
//   #12 c3 [1.204000s, 1.209500s] cas k2 "c1-4" -> "c3-7": ok failed, current "c2-9"@41
std::string DescribeOp(const Op& op);

// The whole history, one FormatOp line each; and back (blank lines and lines
// starting with '#' are skipped).
std::string FormatHistory(const std::vector<Op>& ops);
absl::StatusOr<std::vector<Op>> ParseHistory(absl::string_view text);

// Nanoseconds of the monotonic clock (CLOCK_MONOTONIC).
int64_t MonotonicNanos();

// Records operations from concurrent clients. Invoke() stamps the invocation
// time and returns a handle; Complete() stamps the completion time and stores
// the outcome. Operations never completed (e.g. a client thread still stuck
// when the history is taken) come out as unknown.
class Recorder {
 public:
  Recorder() = default;
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // `op`'s arguments (client, type, key, value, cas fields); returns its id.
  int64_t Invoke(Op op) ABSL_LOCKS_EXCLUDED(mu_);
  // The result fields of `result` (outcome, found, succeeded, out_value,
  // version, kvs, more, member, applied, error) are copied into operation
  // `id`.
  void Complete(int64_t id, const Op& result) ABSL_LOCKS_EXCLUDED(mu_);

  // A copy of everything recorded so far, in invocation order.
  std::vector<Op> Snapshot() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  std::vector<Op> ops_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> done_ ABSL_GUARDED_BY(mu_);
};

}  // namespace raftkv::jepsen

#endif  // RAFTKV_TESTS_JEPSEN_HISTORY_H_
