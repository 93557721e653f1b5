// A linearizability checker for key-value histories (history.h).
//
// The model is raftkv's: a key is absent or holds (value, version), where the
// version is the log index of the key's last write (so versions of writes to
// one key increase in linearization order, and no two writes share one). Put
// sets it, Delete removes it (answering whether it existed), Get reads it,
// and compare-and-swap sets it only if the value (or the version; 0 = absent)
// matches, answering the current state when it does not.
//
// Keys are independent in this model, so the history is split per key and
// each key is checked on its own (P-compositionality). Each key is searched
// the way Wing & Gong, Lowe and Porcupine do: walk the events in time order,
// try to linearize any operation whose call has happened before the first
// pending return, backtrack when a return is reached with its operation not
// linearized; memoize every (set of linearized operations, model state)
// already explored, as a 128-bit Zobrist fingerprint of the set plus the
// state, so no configuration is explored twice. An answered operation that
// never changes the state (a get, a failed CAS, a delete that found nothing)
// is linearized as soon as it can be, with no alternative explored: moving it
// earlier never hurts. Versions must grow along the linearization (a
// deleted key remembers its last version as a floor).
//
// Operations whose outcome is unknown are optional: each may take effect at
// any point after its invocation, or never (linearizing it after everything
// else is the same as never). A search succeeds once every operation with a
// known outcome is linearized. Two refinements keep that cheap:
//   * An unknown write whose value is unique to it and observed by some
//     completed operation (a Get, a failed CAS's current value, a successful
//     CAS by value) must have taken effect before the first such observer
//     completed: it becomes mandatory, with that completion as its deadline.
//   * The search first leaves out the remaining (unobserved) unknown
//     operations; a history linearizable without them is linearizable with
//     them. Only when that fails are they put back for an exact search.
// Versions the model cannot know (a write whose answer was lost) are learned
// from the first read that reports them.
//
// Failed operations (definitely not applied) and reads without an answer
// have no effect and are ignored.
//
// A rejection names the key and a window of operations: the longest prefix
// the search could linearize, the model state after it, the operation that
// could not be placed before its completion, and the operations concurrent
// with it (plus the last few linearized ones, for context).
#ifndef RAFTKV_TESTS_JEPSEN_CHECKER_H_
#define RAFTKV_TESTS_JEPSEN_CHECKER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tests/jepsen/history.h"

namespace raftkv::jepsen {

enum class Verdict { kLinearizable, kViolation, kInconclusive };
const char* VerdictName(Verdict v);  // "linearizable", "NOT linearizable", "inconclusive"

struct CheckOptions {
  // Search steps per key (per phase) before giving up: the key is then
  // inconclusive. A step tries one operation against one state.
  uint64_t max_steps_per_key = 200'000'000;
  // At most this many operations in a violation's window.
  int window_ops = 40;
};

struct KeyReport {
  std::string key;
  Verdict verdict = Verdict::kLinearizable;
  size_t ops = 0;      // operations of this key the search considered
  size_t unknown = 0;  // of which had an unknown outcome
  uint64_t steps = 0;  // search steps taken
  std::string explanation;
  std::vector<Op> window;  // violation: the operations around it, by invocation

  std::string Report() const;  // explanation plus the window, one op per line
};

struct CheckResult {
  Verdict verdict = Verdict::kLinearizable;  // worst over all keys
  size_t ops = 0;   // operations in the history
  size_t keys = 0;  // distinct keys
  uint64_t steps = 0;
  double seconds = 0;
  std::vector<KeyReport> problems;  // keys that are not linearizable or inconclusive

  bool ok() const { return verdict == Verdict::kLinearizable; }
  std::string Summary() const;  // one line
  std::string Report() const;   // Summary() plus every problem's report
};

// Checks one key's operations (all must have that key).
KeyReport CheckKey(const std::string& key, const std::vector<Op>& ops,
                   const CheckOptions& options = {});

// Checks a whole history, key by key.
CheckResult CheckHistory(const std::vector<Op>& history, const CheckOptions& options = {});

}  // namespace raftkv::jepsen

#endif  // RAFTKV_TESTS_JEPSEN_CHECKER_H_
