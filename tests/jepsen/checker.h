// A linearizability checker for key-value histories (history.h).
//
// The model is raftkv's. Every write that takes effect is one log entry, and
// log indexes grow along the linearization. A key is absent or holds a value
// whose version is the index of the entry that set it. The checker orders,
// per key, the entries that change the key (a put, a successful CAS, a delete
// that found the key) and knows the index of each only as far as answers
// tell it: an acknowledged put or CAS answers its own; a read answers the
// index of the entry that set the value it saw; nobody answers a delete's.
// The state of a key is its value plus what is known of the index e of its
// last entry: e itself, or bounds lo < e <= hi; and a floor: every later
// entry's index exceeds both e and the floor. An entry whose index is unknown
// (a delete, or a write whose answer was lost) therefore keeps the floor of
// the entries before it: versions never go back across it.
//
// What each kind of operation must satisfy, at its linearization point:
//   put ok            takes effect between its invocation and completion; its
//                     answered version exceeds the index of every entry
//                     before it and the floor.
//   delete ok         found iff the key was present; removes it (an entry
//                     with unknown index, above everything before it).
//   cas ok, swapped   the key matched (by value: present with that value; by
//                     version: present with that version, or absent for 0);
//                     then as a put.
//   cas ok, failed    the key's state then is the answered one (value and
//                     version, or absent), and it does not match.
//   unknown write     (put, delete or cas whose answer was lost) takes effect
//                     at one moment after its invocation, or never; its
//                     index is unknown unless some read reports its (unique)
//                     value's version, but exceeds every entry before it.
//   get, linearizable between its invocation and completion the key is in the
//                     answered state (absent, or that value with that
//                     version).
//   get, serializable the answered state is one the key was in at some point
//                     of the linearization before the read completed: stale
//                     is allowed (no bound from its invocation), a value that
//                     was never written or never took effect is not.
//   scan              a read, linearizable or serializable as asked, of every
//                     key of the history that starts with the prefix (up to
//                     the last key returned when `more`): a key returned is
//                     found with that value and version, any other is absent.
//                     A scan reads one snapshot, whose index is at least every
//                     version it returned: on each of its keys, entries after
//                     the scan's point have indexes above all of them (so a
//                     scan that shows one key's new value but another key's
//                     value from before an overwrite that has a lower index
//                     is rejected).
//   read's applied    (a get or scan with the applied index of its answer's
//   index, member     header): the read's state index is at most that applied
//                     index (so is every version it returned, and every entry
//                     before its point). With its member known too, members
//                     never go back: a read invoked after another read on the
//                     same member completed has an applied index at least the
//                     other's, and its state is at least as new: on its keys,
//                     entries after its point exceed the other's applied index
//                     and versions. So follower reads may trail, but are
//                     sequentially consistent per member, across keys.
//   failed ops, unanswered reads   no effect; ignored.
// Not used (the checker is sound but not complete here): that indexes are
// integers and unique across keys, that deletes of an absent key and failed
// CASes take an index too, and which member applied a write.
//
// Keys are independent in this model (a scan is one read per key, a member's
// bound is computed over the whole history first), so each key is checked on
// its own (P-compositionality). Each key is searched the way Wing & Gong,
// Lowe and Porcupine do: walk the events in time order, try to linearize any
// operation whose call has happened before the first pending return,
// backtrack when a return is reached with its operation not linearized;
// memoize every (set of linearized operations, model state) already explored,
// as a 128-bit Zobrist fingerprint of the set plus the state, so no
// configuration is explored twice. An answered operation whose step leaves
// the state exactly as it was is linearized as soon as it can be, with no
// alternative explored: moving it earlier never hurts. A serializable read's
// call counts as happening at the start of the history; any read's call then
// moves to the latest invocation of the writes it must follow (the only write
// of the value it saw, every write with a known version up to its lower
// bound), which spares retrying it at every step until then.
//
// Operations whose outcome is unknown are optional: each may take effect at
// any point after its invocation, or never (linearizing it after everything
// else is the same as never). A search succeeds once every operation with a
// known outcome is linearized. Two refinements keep that cheap:
//   * An unknown write whose value is unique to it and observed by some
//     completed operation (a read, a failed CAS's current value, a successful
//     CAS by value) must have taken effect before the first such observer
//     completed: it becomes mandatory, with that completion as its deadline.
//   * The search first leaves out the remaining (unobserved) unknown
//     operations; a history linearizable without them is linearizable with
//     them. Only when that fails are they put back for an exact search.
//
// A rejection names the key and a window of operations: the longest prefix
// the search could linearize, the model state after it, the operation that
// could not be placed before its completion, and the operations concurrent
// with it (plus the last few linearized ones, for context). A member's reads
// going back in applied index, a version above a read's applied index, and a
// scan's answer out of key order or outside its prefix are reported on their
// own, naming the reads.
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
  // Keys that are not linearizable or inconclusive (a key may have several:
  // its search's, and reads of it that fail on their own, e.g. a member
  // going back).
  std::vector<KeyReport> problems;

  bool ok() const { return verdict == Verdict::kLinearizable; }
  std::string Summary() const;  // one line
  std::string Report() const;   // Summary() plus every problem's report
};

// Checks one key's operations (all must have that key, or be scans: their
// answer for that key). Members' bounds are computed over `ops` alone.
KeyReport CheckKey(const std::string& key, const std::vector<Op>& ops,
                   const CheckOptions& options = {});

// Checks a whole history, key by key.
CheckResult CheckHistory(const std::vector<Op>& history, const CheckOptions& options = {});

}  // namespace raftkv::jepsen

#endif  // RAFTKV_TESTS_JEPSEN_CHECKER_H_
