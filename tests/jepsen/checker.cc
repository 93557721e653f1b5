#include "tests/jepsen/checker.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace raftkv::jepsen {

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kLinearizable:
      return "linearizable";
    case Verdict::kViolation:
      return "NOT linearizable";
    case Verdict::kInconclusive:
      return "inconclusive";
  }
  return "?";
}

namespace {

constexpr int64_t kInf = std::numeric_limits<int64_t>::max();
constexpr int64_t kMinusInf = std::numeric_limits<int64_t>::min();
constexpr uint64_t kNoBound = std::numeric_limits<uint64_t>::max();

// The model's state of one key (checker.h): the value, and what is known of
// the index e of the key's last entry (the write that set the value or the
// delete that removed it; 0 before any): e = lo when `known`, else
// lo < e <= hi. Every later entry's index exceeds e and `floor`.
// Normalized (Normalize) so that equal states compare equal: hi = lo when
// known; hi = kNoBound when absent and unknown (nobody ever reports a
// delete's index, so only lo matters); floor = 0 when it says no more than
// lo does.
struct State {
  int32_t value = -1;  // interned value; -1: the key is absent
  bool known = true;
  uint64_t lo = 0;
  uint64_t hi = 0;
  uint64_t floor = 0;

  bool operator==(const State& o) const {
    return value == o.value && known == o.known && lo == o.lo && hi == o.hi && floor == o.floor;
  }
  bool operator!=(const State& o) const { return !(*this == o); }
};

State Normalize(State s) {
  if (s.known) {
    s.hi = s.lo;
  } else if (s.value == -1) {
    s.hi = kNoBound;
  }
  if (s.floor <= s.lo) s.floor = 0;
  return s;
}

// A new entry's index must exceed this. (When e is not known, e can be as
// close above lo as needed, since nothing below it is known.)
uint64_t Above(const State& s) { return std::max(s.lo, s.floor); }

// The last entry's index is `r` (a read reported it).
bool Learn(State* s, uint64_t r) {
  if (s->known) return s->lo == r;
  if (r <= s->lo || r > s->hi) return false;
  s->known = true;
  s->lo = s->hi = r;
  return true;
}

// Every entry so far has an index of at most `a`.
bool CapAt(State* s, uint64_t a) {
  if (s->known) return s->lo <= a;
  if (s->lo >= a) return false;
  s->hi = std::min(s->hi, a);
  return true;
}

// One operation (on one key) as the search sees it.
struct SOp {
  enum Kind { kRead, kPut, kDelete, kCas };
  const Op* op = nullptr;
  Kind kind = kRead;
  int32_t value = -1;     // put/cas: the value written
  int32_t expected = -1;  // cas by value: the value compared with
  // A read's answer (a get's, or a scan's for this key), or a failed CAS's
  // current state: found, the value seen and its version (0: not given).
  bool found = false;
  int32_t out = -1;
  uint64_t out_version = 0;
  // Reads: the state's index is at most `upper` (0: no bound) and, on the
  // member, at least `lower`: later entries exceed it.
  uint64_t upper = 0, lower = 0;
  bool must = false;      // must be linearized (known outcome, or observed)
  bool has_result = false;
  // Answered, and never changes the value: a read, a failed CAS, a delete
  // that found nothing. (It may still narrow what is known of indexes.)
  bool read_only = false;
  uint64_t write_version = 0;  // the version this write sets, when known
  int64_t invoke = 0;
  int64_t complete = kInf;
  uint64_t z1 = 0, z2 = 0;  // Zobrist keys
  // Optional ops: ops of one class have the same effect from every state.
  int cls = -1;
};

// The current state is the answered one: found, and (when given) its version.
bool Matches(State* s, bool found, int32_t out, uint64_t out_version) {
  if (!found) return s->value == -1;
  if (s->value != out) return false;
  return out_version == 0 || Learn(s, out_version);
}

// A put or CAS taking effect: a new entry setting `value` at index `version`
// (0: not known).
bool Write(const State& s, int32_t value, uint64_t version, State* out) {
  if (version != 0) {
    if (version <= Above(s)) return false;
    *out = State{value, true, version, version, 0};
  } else {
    *out = State{value, false, Above(s), kNoBound, 0};
  }
  return true;
}

// The model's transition: false when `o` cannot take effect in state `s`
// (with its answer, if it has one). An unknown operation that would have no
// effect in `s` is refused too: having no effect is the same as taking
// effect after everything else, which the search always allows.
bool Step(const State& s, const SOp& o, State* out) {
  const Op& op = *o.op;
  State n = s;
  switch (o.kind) {
    case SOp::kRead:
      if (!Matches(&n, o.found, o.out, o.out_version)) return false;
      if (o.upper != 0 && !CapAt(&n, o.upper)) return false;
      n.floor = std::max(n.floor, o.lower);
      *out = Normalize(n);
      return true;
    case SOp::kPut:
      if (!Write(s, o.value, o.write_version, &n)) return false;
      *out = Normalize(n);
      return true;
    case SOp::kDelete:
      if (o.has_result && op.found != (s.value != -1)) return false;
      if (s.value == -1) {
        if (!o.has_result) return false;  // no effect
        *out = s;
        return true;
      }
      *out = Normalize(State{-1, false, Above(s), kNoBound, 0});
      return true;
    case SOp::kCas: {
      const bool failed = o.has_result && !op.succeeded;
      // A failed CAS answers the current state: it must be this one.
      if (failed && !Matches(&n, o.found, o.out, o.out_version)) return false;
      enum { kNo, kYes, kMaybe } match;
      if (!op.cas_by_version) {
        match = n.value != -1 && n.value == o.expected ? kYes : kNo;
      } else if (op.expected_version == 0) {
        match = n.value == -1 ? kYes : kNo;
      } else if (n.value == -1) {
        match = kNo;
      } else if (n.known) {
        match = n.lo == op.expected_version ? kYes : kNo;
      } else {
        // Both are possible: e can be anything in (lo, hi].
        match = kMaybe;
      }
      if (failed) {
        if (match == kYes) return false;
        *out = Normalize(n);
        return true;
      }
      // Succeeded, or unknown and taking effect.
      if (match == kNo) return false;
      if (match == kMaybe && !Learn(&n, op.expected_version)) return false;
      if (!Write(Normalize(n), o.value, o.write_version, &n)) return false;
      *out = Normalize(n);
      return true;
    }
  }
  return false;
}

struct CacheKey {
  uint64_t h1, h2;
  State state;
  bool operator==(const CacheKey& o) const {
    return h1 == o.h1 && h2 == o.h2 && state == o.state;
  }
  template <typename H>
  friend H AbslHashValue(H h, const CacheKey& k) {
    return H::combine(std::move(h), k.h1, k.h2, k.state.value, k.state.known, k.state.lo,
                      k.state.hi, k.state.floor);
  }
};

uint64_t SplitMix(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct SearchResult {
  bool ok = false;
  bool exhausted = false;  // ran out of steps
  uint64_t steps = 0;
  // The deepest dead end: how many mandatory operations were linearized,
  // which (a bitset over the search's operations), the state after them,
  // the last few in linearization order, and the operation whose return
  // was reached without it being linearized.
  int best_must = -1;
  std::vector<uint64_t> best_bits;
  State best_state;
  std::vector<int> best_tail;
  int blocked = -1;
};

// Wing & Gong / Lowe / Porcupine search over `ops`.
//
// A configuration is (mandatory ops linearized, optional ops linearized,
// state). Optional ops (unknown outcome, complete = +infinity) never block
// anything. Optional ops with the same effect from every state (same class:
// e.g. all unknown deletes) are interchangeable, so they are used in the
// order they were invoked, and only how many of each class were used
// matters. A configuration that used no more of any class and is otherwise
// equal can do everything one that used more can (the extra ones are simply
// deferred to the end): the cache keeps, per (mandatory set, state), the
// class counts explored, and prunes any configuration that used at least as
// many of every class as one of them. To make that bite, mandatory
// candidates are tried before optional ones.
SearchResult Search(const std::vector<SOp>& ops, uint64_t max_steps) {
  SearchResult r;
  const int n = static_cast<int>(ops.size());
  int remaining_must = 0;
  for (const SOp& o : ops) remaining_must += o.must ? 1 : 0;
  if (remaining_must == 0) {
    r.ok = true;
    return r;
  }

  // Events: node 2i is op i's call, 2i+1 its return; node 2n is the head.
  struct Node {
    int prev = -1, next = -1;
  };
  std::vector<Node> nodes(2 * n + 1);
  std::vector<int> order(2 * n);
  std::iota(order.begin(), order.end(), 0);
  auto time_of = [&](int e) { return e % 2 == 0 ? ops[e / 2].invoke : ops[e / 2].complete; };
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    const int64_t ta = time_of(a), tb = time_of(b);
    if (ta != tb) return ta < tb;
    if (a % 2 != b % 2) return a % 2 == 0;  // calls first: ties overlap
    return a < b;
  });
  const int head = 2 * n;
  int prev = head;
  for (int e : order) {
    nodes[prev].next = e;
    nodes[e].prev = prev;
    prev = e;
  }
  nodes[prev].next = -1;

  auto unlink = [&](int e) {
    nodes[nodes[e].prev].next = nodes[e].next;
    if (nodes[e].next != -1) nodes[nodes[e].next].prev = nodes[e].prev;
  };
  auto relink = [&](int e) {
    nodes[nodes[e].prev].next = e;
    if (nodes[e].next != -1) nodes[nodes[e].next].prev = e;
  };

  std::vector<uint64_t> bits((n + 63) / 64, 0);
  uint64_t h1 = 0, h2 = 0;  // fingerprint of the mandatory ops linearized
  State state;
  // Classes of optional ops: members in invocation order, how many used.
  absl::flat_hash_map<int, int> class_index;
  std::vector<std::vector<int>> members;
  std::vector<int> member_of(n, -1), class_of(n, -1);
  for (int i = 0; i < n; ++i) {
    if (ops[i].must) continue;
    auto [it, added] = class_index.emplace(ops[i].cls, static_cast<int>(members.size()));
    if (added) members.emplace_back();
    class_of[i] = it->second;
    members[it->second].push_back(i);
  }
  for (std::vector<int>& m : members) {
    std::stable_sort(m.begin(), m.end(),
                     [&](int a, int b) { return ops[a].invoke < ops[b].invoke; });
    for (size_t k = 0; k < m.size(); ++k) member_of[m[k]] = static_cast<int>(k);
  }
  std::vector<int> used(members.size(), 0);
  std::vector<int> active;  // classes with used > 0, sorted
  struct Frame {
    int op;
    State before;
    int pass;  // 0: chosen among mandatory candidates, 1: among optional ones
    // The op is read-only and left this state exactly as it was.
    // Linearizing such an op as soon as it can be is never worse than any
    // alternative: a completion that places it later stays valid with it
    // moved here (where it narrowed nothing, later it can only narrow what
    // is known). So when that fails, the configuration before it fails too.
    bool pure;
  };
  std::vector<Frame> stack;
  stack.reserve(n);
  // (mandatory fingerprint, state) -> class counts explored, each as a
  // sorted list of (class, count) with count > 0. Nearly always one empty
  // list, so the common case costs one hash lookup.
  using Counts = std::vector<std::pair<int, int>>;
  absl::flat_hash_map<CacheKey, std::vector<Counts>> cache;
  // Adds the configuration; false if it (or one that dominates it) was seen.
  auto visit = [&](const CacheKey& k, int extra_class) {
    Counts counts;
    bool extra_done = extra_class < 0;
    for (int c : active) {
      if (!extra_done && extra_class < c) {
        counts.emplace_back(extra_class, 1);
        extra_done = true;
      }
      counts.emplace_back(c, used[c] + (c == extra_class ? 1 : 0));
      if (c == extra_class) extra_done = true;
    }
    if (!extra_done) counts.emplace_back(extra_class, 1);
    std::vector<Counts>& seen = cache[k];
    for (const Counts& old : seen) {
      // Does `old` use no more of any class than `counts`?
      bool dominated = true;
      size_t j = 0;
      for (const auto& [c, m] : old) {
        while (j < counts.size() && counts[j].first < c) ++j;
        if (j == counts.size() || counts[j].first != c || counts[j].second < m) {
          dominated = false;
          break;
        }
      }
      if (dominated) return false;
    }
    seen.push_back(std::move(counts));
    return true;
  };
  int linearized_must = 0;

  int e = nodes[head].next;
  int pass = 0;
  while (true) {
    if (remaining_must == 0) {
      r.ok = true;
      return r;
    }
    if (++r.steps > max_steps) {
      r.exhausted = true;
      return r;
    }
    if (e >= 0 && e % 2 == 0) {
      const int i = e / 2;
      State next;
      const bool eligible =
          ops[i].must ? pass == 0 : pass == 1 && used[class_of[i]] == member_of[i];
      if (eligible && Step(state, ops[i], &next)) {
        const bool must = ops[i].must;
        const uint64_t n1 = must ? h1 ^ ops[i].z1 : h1, n2 = must ? h2 ^ ops[i].z2 : h2;
        const bool pure = ops[i].read_only && next == state;
        if (visit(CacheKey{n1, n2, next}, must ? -1 : class_of[i])) {
          stack.push_back(Frame{i, state, pass, pure});
          state = next;
          h1 = n1;
          h2 = n2;
          bits[i / 64] |= uint64_t{1} << (i % 64);
          if (must) {
            --remaining_must;
            ++linearized_must;
          } else {
            const int c = class_of[i];
            if (used[c]++ == 0) active.insert(std::lower_bound(active.begin(), active.end(), c), c);
          }
          unlink(e + 1);
          unlink(e);
          e = nodes[head].next;
          pass = 0;
          continue;
        }
        if (pure) {
          // Explored already, and failed: so does this configuration.
          e = -2;
        }
      }
      if (e != -2) {
        e = nodes[e].next;
        continue;
      }
    }
    if (e != -2 && pass == 0) {
      // No mandatory candidate works: try the optional ones.
      pass = 1;
      e = nodes[head].next;
      continue;
    }
    // A return (or a known failure): the op it belongs to was not
    // linearized in time. Record the dead end, then undo the last choice.
    if (e >= 0 && linearized_must > r.best_must) {
      r.best_must = linearized_must;
      r.best_bits = bits;
      r.best_state = state;
      r.best_tail.clear();
      for (size_t k = stack.size() > 5 ? stack.size() - 5 : 0; k < stack.size(); ++k) {
        r.best_tail.push_back(stack[k].op);
      }
      r.blocked = e / 2;
    }
    // Undo choices up to and including the last one that had alternatives.
    while (true) {
      if (stack.empty()) return r;
      const Frame f = stack.back();
      stack.pop_back();
      const int i = f.op;
      state = f.before;
      if (ops[i].must) {
        h1 ^= ops[i].z1;
        h2 ^= ops[i].z2;
        ++remaining_must;
        --linearized_must;
      } else {
        const int c = class_of[i];
        if (--used[c] == 0) active.erase(std::lower_bound(active.begin(), active.end(), c));
      }
      bits[i / 64] &= ~(uint64_t{1} << (i % 64));
      relink(2 * i);
      relink(2 * i + 1);
      e = nodes[2 * i].next;
      pass = f.pass;
      if (!f.pure) break;
    }
  }
}


std::string Seconds(int64_t ns) { return absl::StrFormat("%.6fs", ns / 1e9); }

bool IsRead(const Op& op) { return op.type == OpType::kGet || op.type == OpType::kScan; }

// The highest version a read returned (0: none).
uint64_t MaxVersion(const Op& op) {
  if (op.type != OpType::kScan) return op.found ? op.version : 0;
  uint64_t v = 0;
  for (const ScanKv& kv : op.kvs) v = std::max(v, kv.version);
  return v;
}

// One operation on one key as the checker sees it: the op itself or, for a
// scan, its answer for that key; and a read's bounds on its state index
// (0: none; see SOp).
struct KeyView {
  const Op* op = nullptr;
  bool found = false;
  const std::string* value = nullptr;  // found: the value seen
  uint64_t version = 0;
  uint64_t lower = 0, upper = 0;
};

// Everything CheckKey needs about one key's operations.
class KeyChecker {
 public:
  KeyChecker(const std::string& key, const std::vector<KeyView>& views,
             const CheckOptions& options)
      : key_(key), options_(options) {
    for (const KeyView& v : views) {
      if (v.op->outcome == Outcome::kFailed) continue;                  // no effect
      if (IsRead(*v.op) && v.op->outcome != Outcome::kOk) continue;  // no answer
      views_.push_back(v);
    }
  }

  KeyReport Run() {
    KeyReport report;
    report.key = key_;
    Prepare();
    report.ops = sops_.size();
    for (const SOp& o : sops_) report.unknown += o.has_result ? 0 : 1;
    if (!prepass_violation_.empty()) {
      report.verdict = Verdict::kViolation;
      report.explanation = prepass_violation_;
      report.window = prepass_window_;
      return report;
    }
    // Phase 1: leave out the unknown operations nobody observed.
    std::vector<SOp> mandatory;
    for (const SOp& o : sops_) {
      if (o.must) mandatory.push_back(o);
    }
    SearchResult r1 = Search(mandatory, options_.max_steps_per_key);
    report.steps = r1.steps;
    if (r1.ok) return report;
    if (r1.exhausted || mandatory.size() == sops_.size()) {
      Explain(mandatory, r1, &report);
      return report;
    }
    // Phase 2: everything, unknown operations optional.
    SearchResult r2 = Search(sops_, options_.max_steps_per_key);
    report.steps += r2.steps;
    if (r2.ok) return report;
    if (r2.exhausted) {
      Explain(mandatory, r1, &report);
      report.verdict = Verdict::kInconclusive;
      report.explanation = absl::StrCat(
          "search with the unknown operations ran out of steps (", r2.steps,
          "); without them: ", report.explanation);
      return report;
    }
    Explain(sops_, r2, &report);
    return report;
  }

 private:
  int32_t Intern(const std::string& v) {
    auto [it, added] = values_.emplace(v, static_cast<int32_t>(values_.size()));
    return it->second;
  }

  void Violation(std::string why, std::vector<const Op*> window) {
    if (!prepass_violation_.empty()) return;
    prepass_violation_ = absl::StrCat("key \"", absl::CHexEscape(key_), "\": ", why);
    std::sort(window.begin(), window.end(),
              [](const Op* a, const Op* b) { return a->invoke_ns < b->invoke_ns; });
    for (const Op* o : window) prepass_window_.push_back(*o);
  }

  void Prepare() {
    // Intern values; count each value's writers.
    std::vector<int> writers;
    auto count_writer = [&](int32_t v) {
      if (static_cast<size_t>(v) >= writers.size()) writers.resize(v + 1, 0);
      ++writers[v];
    };
    sops_.reserve(views_.size());
    for (const KeyView& v : views_) {
      const Op* op = v.op;
      SOp o;
      o.op = op;
      switch (op->type) {
        case OpType::kGet:
        case OpType::kScan:
          o.kind = SOp::kRead;
          break;
        case OpType::kPut:
          o.kind = SOp::kPut;
          break;
        case OpType::kDelete:
          o.kind = SOp::kDelete;
          break;
        case OpType::kCas:
          o.kind = SOp::kCas;
          break;
      }
      o.has_result = op->outcome == Outcome::kOk;
      o.must = o.has_result;
      o.read_only = o.has_result && (o.kind == SOp::kRead ||
                                     (o.kind == SOp::kCas && !op->succeeded) ||
                                     (o.kind == SOp::kDelete && !op->found));
      // A serializable read may show any state before it completed.
      o.invoke = o.kind == SOp::kRead && op->serializable ? kMinusInf : op->invoke_ns;
      o.complete = o.has_result ? std::max(op->complete_ns, op->invoke_ns) : kInf;
      if (o.kind == SOp::kPut || o.kind == SOp::kCas) {
        o.value = Intern(op->value);
        count_writer(o.value);
      }
      if (o.kind == SOp::kCas && !op->cas_by_version) o.expected = Intern(op->expected_value);
      if (o.kind == SOp::kRead) {
        o.found = v.found;
        if (v.found) o.out = Intern(*v.value);
        o.out_version = v.found ? v.version : 0;
        o.lower = v.lower;
        o.upper = v.upper;
      } else if (o.kind == SOp::kCas && o.has_result && !op->succeeded) {
        o.found = op->found;
        if (op->found) o.out = Intern(op->out_value);
        o.out_version = op->found ? op->version : 0;
      }
      if (o.has_result && (o.kind == SOp::kPut || (o.kind == SOp::kCas && op->succeeded))) {
        o.write_version = op->version;
      }
      sops_.push_back(o);
    }
    writers.resize(values_.size(), 0);
    auto unique = [&](int32_t v) { return v >= 0 && writers[v] == 1; };

    // Versions: one value per version; one version per uniquely written value.
    absl::flat_hash_map<uint64_t, std::pair<int32_t, const Op*>> value_of;
    absl::flat_hash_map<int32_t, std::pair<uint64_t, const Op*>> version_of;
    auto observe = [&](int32_t value, uint64_t version, const Op* op) {
      if (value < 0 || version == 0) return;
      auto [it, added] = value_of.emplace(version, std::make_pair(value, op));
      if (!added && it->second.first != value) {
        Violation(absl::StrCat("version ", version, " reported for two different values"),
                  {it->second.second, op});
      }
      if (!unique(value)) return;
      auto [jt, jadded] = version_of.emplace(value, std::make_pair(version, op));
      if (!jadded && jt->second.first != version) {
        Violation(absl::StrCat("a value written once reported with versions ", jt->second.first,
                               " and ", version),
                  {jt->second.second, op});
      }
    };
    for (const SOp& o : sops_) {
      if (!o.has_result) continue;
      if (o.write_version != 0) observe(o.value, o.write_version, o.op);
      if (o.out >= 0) observe(o.out, o.out_version, o.op);
    }
    // Unknown writes learn their version from whoever saw their value.
    for (SOp& o : sops_) {
      if (o.has_result || o.value < 0 || !unique(o.value)) continue;
      auto it = version_of.find(o.value);
      if (it != version_of.end()) o.write_version = it->second.first;
    }

    // An unknown write whose (unique) value was observed took effect before
    // the first observer completed.
    absl::flat_hash_map<int32_t, const Op*> first_seen;
    auto seen = [&](int32_t value, const Op* op) {
      if (value < 0) return;
      auto [it, added] = first_seen.emplace(value, op);
      if (!added && op->complete_ns < it->second->complete_ns) it->second = op;
    };
    for (const SOp& o : sops_) {
      if (!o.has_result) continue;
      const Op& op = *o.op;
      if (o.out >= 0) seen(o.out, &op);
      if (o.kind == SOp::kCas && op.succeeded) {
        if (!op.cas_by_version) {
          seen(o.expected, &op);
        } else if (op.expected_version != 0) {
          auto it = value_of.find(op.expected_version);
          if (it != value_of.end()) seen(it->second.first, &op);
        }
      }
    }
    for (SOp& o : sops_) {
      if (o.has_result || o.value < 0 || !unique(o.value)) continue;
      auto it = first_seen.find(o.value);
      if (it == first_seen.end()) continue;
      const Op* observer = it->second;
      if (observer->complete_ns < o.invoke) {
        Violation("a value was read before the only write of it was invoked",
                  {o.op, observer});
      }
      o.must = true;
      o.complete = std::max(observer->complete_ns, o.invoke);
    }

    // A read comes after the write of the value it saw (when that value is
    // unique) and after every write with a known version up to its lower
    // bound (later entries exceed it): its call event moves to the latest
    // of their invocations. Exact, and it keeps serializable reads, whose
    // own call counts as the start of the history, from being retried at
    // every step until then.
    std::vector<std::pair<uint64_t, int64_t>> by_version;  // (version, latest invoke up to it)
    std::vector<int64_t> writer_invoke(values_.size(), kMinusInf);
    for (const SOp& o : sops_) {
      if (!o.must || o.value < 0) continue;
      if (unique(o.value)) writer_invoke[o.value] = o.invoke;
      if (o.write_version != 0) by_version.emplace_back(o.write_version, o.invoke);
    }
    std::sort(by_version.begin(), by_version.end());
    for (size_t k = 1; k < by_version.size(); ++k) {
      by_version[k].second = std::max(by_version[k].second, by_version[k - 1].second);
    }
    for (SOp& o : sops_) {
      if (o.kind != SOp::kRead) continue;
      if (o.out >= 0 && unique(o.out)) o.invoke = std::max(o.invoke, writer_invoke[o.out]);
      auto it = std::upper_bound(by_version.begin(), by_version.end(),
                                 std::make_pair(o.lower, kInf));
      if (it != by_version.begin()) o.invoke = std::max(o.invoke, std::prev(it)->second);
    }

    // An optional write whose value nobody else mentions can only matter by
    // making the key exist: all such get one anonymous value, and optional
    // ops with equal effects form one class (see Search).
    std::vector<bool> mentioned(values_.size(), false);
    for (const SOp& o : sops_) {
      if (o.out >= 0) mentioned[o.out] = true;
      if (o.expected >= 0) mentioned[o.expected] = true;
    }
    anonymous_ = static_cast<int32_t>(values_.size());
    std::map<std::tuple<int, int32_t, bool, int32_t, uint64_t, uint64_t>, int> classes;
    for (SOp& o : sops_) {
      if (o.must) continue;
      if (o.value >= 0 && unique(o.value) && !mentioned[o.value]) o.value = anonymous_;
      const Op& op = *o.op;
      auto key = std::make_tuple(static_cast<int>(o.kind), o.value, op.cas_by_version,
                                 o.expected, op.cas_by_version ? op.expected_version : 0,
                                 o.write_version);
      o.cls = classes.emplace(key, static_cast<int>(classes.size())).first->second;
    }

    uint64_t seed = 0x5eed;
    for (SOp& o : sops_) {
      o.z1 = SplitMix(&seed);
      o.z2 = SplitMix(&seed);
    }
  }

  std::string Describe(const State& s) const {
    std::string d;
    if (s.value == -1) {
      d = s.known ? (s.lo == 0 ? std::string("absent")
                               : absl::StrCat("absent (its last entry @", s.lo, ")"))
                  : absl::StrCat("absent (deleted by an entry above ", s.lo, ")");
    } else {
      std::string v = "<a value nobody read>";
      for (const auto& [text, id] : values_) {
        if (id == s.value) v = absl::StrCat("\"", absl::CHexEscape(text), "\"");
      }
      if (s.known) {
        d = absl::StrCat(v, "@", s.lo);
      } else if (s.hi == kNoBound) {
        d = absl::StrCat(v, "@? (above ", s.lo, ")");
      } else {
        d = absl::StrCat(v, "@? (in (", s.lo, ", ", s.hi, "])");
      }
    }
    if (s.floor != 0) absl::StrAppend(&d, ", later entries above ", s.floor);
    return d;
  }

  void Explain(const std::vector<SOp>& ops, const SearchResult& r, KeyReport* report) const {
    report->verdict = r.exhausted ? Verdict::kInconclusive : Verdict::kViolation;
    int must = 0;
    for (const SOp& o : ops) must += o.must ? 1 : 0;
    if (r.exhausted) {
      report->explanation =
          absl::StrCat("key \"", absl::CHexEscape(key_), "\": search gave up after ", r.steps,
                       " steps (", ops.size(), " operations)");
      return;
    }
    auto linearized = [&](int i) {
      return !r.best_bits.empty() && (r.best_bits[i / 64] >> (i % 64)) & 1;
    };
    std::string blocked = "?";
    int64_t horizon = kInf;
    if (r.blocked >= 0) {
      const Op& b = *ops[r.blocked].op;
      blocked = absl::StrCat("#", b.id, " (", OpTypeName(b.type), " by client ", b.client,
                             ", completed at ", Seconds(ops[r.blocked].complete), ")");
      horizon = ops[r.blocked].complete;
    }
    std::vector<std::string> tail_ids;
    for (int i : r.best_tail) tail_ids.push_back(absl::StrCat("#", ops[i].op->id));
    report->explanation = absl::StrCat(
        "key \"", absl::CHexEscape(key_), "\": not linearizable. At best ",
        std::max(r.best_must, 0), " of ", must,
        " operations with a known outcome can be linearized; after them the key is ",
        Describe(r.best_state), " (last linearized: ",
        tail_ids.empty() ? std::string("none") : absl::StrJoin(tail_ids, " "), "). Then ",
        blocked,
        " cannot take effect before it completes, whatever the order of the operations "
        "still pending (listed with it below).");
    // The window: pending operations invoked before the blocked one
    // completed (mandatory ones first, nearest in time first), plus the
    // last linearized ones.
    std::vector<int> pending;
    for (int i = 0; i < static_cast<int>(ops.size()); ++i) {
      if (!linearized(i) && ops[i].op->invoke_ns <= horizon) pending.push_back(i);
    }
    std::sort(pending.begin(), pending.end(), [&](int a, int b) {
      if (ops[a].must != ops[b].must) return ops[a].must;
      return ops[a].op->invoke_ns > ops[b].op->invoke_ns;
    });
    std::vector<const Op*> window;
    for (int i : r.best_tail) window.push_back(ops[i].op);
    for (int i : pending) {
      if (static_cast<int>(window.size()) >= options_.window_ops) break;
      window.push_back(ops[i].op);
    }
    std::sort(window.begin(), window.end(),
              [](const Op* a, const Op* b) { return a->invoke_ns < b->invoke_ns; });
    window.erase(std::unique(window.begin(), window.end()), window.end());
    for (const Op* o : window) report->window.push_back(*o);
  }

  const std::string key_;
  const CheckOptions options_;
  std::vector<KeyView> views_;
  std::vector<SOp> sops_;
  std::map<std::string, int32_t> values_;
  int32_t anonymous_ = -2;
  std::string prepass_violation_;
  std::vector<Op> prepass_window_;
};

KeyReport HistoryViolation(const std::string& key, std::string why,
                           std::vector<const Op*> window) {
  KeyReport k;
  k.key = key;
  k.verdict = Verdict::kViolation;
  k.explanation = absl::StrCat("key \"", absl::CHexEscape(key), "\": ", why);
  std::sort(window.begin(), window.end(),
            [](const Op* a, const Op* b) { return a->invoke_ns < b->invoke_ns; });
  for (const Op* o : window) k.window.push_back(*o);
  return k;
}

// The checks of reads that are not per key: a version above the read's
// applied index, a scan's answer outside its prefix or out of order, a
// member's applied index going back. Also each read's lower bound (the
// highest applied index and version its member had shown to reads that
// completed before it was invoked), per op of `ops`.
std::vector<KeyReport> CheckReads(const std::vector<Op>& ops, std::vector<uint64_t>* lower) {
  std::vector<KeyReport> problems;
  lower->assign(ops.size(), 0);
  std::map<uint64_t, std::vector<size_t>> by_member;
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    if (!IsRead(op) || op.outcome != Outcome::kOk) continue;
    if (op.applied != 0 && MaxVersion(op) > op.applied) {
      problems.push_back(HistoryViolation(
          op.key,
          absl::StrCat("#", op.id, " answered version ", MaxVersion(op),
                       ", above the applied index ", op.applied, " of its answer"),
          {&op}));
    }
    if (op.type == OpType::kScan) {
      for (size_t k = 0; k < op.kvs.size(); ++k) {
        if (!absl::StartsWith(op.kvs[k].key, op.key) ||
            (k > 0 && op.kvs[k].key <= op.kvs[k - 1].key)) {
          problems.push_back(HistoryViolation(
              op.key,
              absl::StrCat("scan #", op.id, " answered key \"", absl::CHexEscape(op.kvs[k].key),
                           "\" outside its prefix or out of order"),
              {&op}));
          break;
        }
      }
    }
    if (op.member != 0) by_member[op.member].push_back(i);
  }
  for (auto& [member, reads] : by_member) {
    std::sort(reads.begin(), reads.end(),
              [&](size_t a, size_t b) { return ops[a].complete_ns < ops[b].complete_ns; });
    // Over the first k reads by completion: the highest applied index or
    // version shown, and the read with the highest applied index.
    std::vector<uint64_t> level(reads.size() + 1, 0);
    std::vector<size_t> top(reads.size() + 1, ops.size());
    for (size_t k = 0; k < reads.size(); ++k) {
      const Op& op = ops[reads[k]];
      level[k + 1] = std::max({level[k], op.applied, MaxVersion(op)});
      top[k + 1] = top[k];
      if (op.applied != 0 && (top[k] == ops.size() || op.applied > ops[top[k]].applied)) {
        top[k + 1] = reads[k];
      }
    }
    for (size_t r : reads) {
      const Op& op = ops[r];
      // Reads that completed before `op` was invoked.
      const size_t k = std::partition_point(reads.begin(), reads.end(), [&](size_t x) {
                         return ops[x].complete_ns < op.invoke_ns;
                       }) -
                       reads.begin();
      (*lower)[r] = level[k];
      if (op.applied != 0 && top[k] != ops.size() && ops[top[k]].applied > op.applied) {
        const Op& before = ops[top[k]];
        problems.push_back(HistoryViolation(
            op.key,
            absl::StrCat("member ", member, " went back: #", before.id, " completed at ",
                         Seconds(before.complete_ns), " with applied index ", before.applied,
                         ", then #", op.id, " (invoked at ", Seconds(op.invoke_ns),
                         ") answered with applied index ", op.applied),
            {&before, &op}));
      }
    }
  }
  return problems;
}

// Each key's views of `ops` (only `only_key`'s, if not null). A scan covers
// every key of `ops` under its prefix, up to its last key when `more`.
std::map<std::string, std::vector<KeyView>> ViewsByKey(const std::vector<Op>& ops,
                                                       const std::vector<uint64_t>& lower,
                                                       const std::string* only_key) {
  std::set<std::string> keys;
  for (const Op& op : ops) {
    if (op.type != OpType::kScan) {
      keys.insert(op.key);
      continue;
    }
    for (const ScanKv& kv : op.kvs) {
      if (absl::StartsWith(kv.key, op.key)) keys.insert(kv.key);
    }
  }
  if (only_key != nullptr) keys = {*only_key};
  std::map<std::string, std::vector<KeyView>> by_key;
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    if (op.type != OpType::kScan) {
      if (only_key != nullptr && op.key != *only_key) continue;
      KeyView v{&op, op.found, &op.out_value, op.version};
      if (IsRead(op)) {
        v.lower = lower[i];
        v.upper = op.applied;
      }
      by_key[op.key].push_back(v);
      continue;
    }
    if (op.outcome != Outcome::kOk) continue;
    // One snapshot: its index is at least every version the scan returned.
    const uint64_t snapshot = std::max(lower[i], MaxVersion(op));
    for (auto it = keys.lower_bound(op.key); it != keys.end() && absl::StartsWith(*it, op.key);
         ++it) {
      if (op.more && (op.kvs.empty() || *it > op.kvs.back().key)) break;
      KeyView v{&op, false, nullptr, 0, snapshot, op.applied};
      for (const ScanKv& kv : op.kvs) {
        if (kv.key != *it) continue;
        v.found = true;
        v.value = &kv.value;
        v.version = kv.version;
        break;
      }
      by_key[*it].push_back(v);
    }
  }
  return by_key;
}

}  // namespace

std::string KeyReport::Report() const {
  std::string s = explanation;
  for (const Op& op : window) absl::StrAppend(&s, "\n    ", DescribeOp(op));
  return s;
}

std::string CheckResult::Summary() const {
  std::set<std::string> bad_keys, inconclusive_keys;
  for (const KeyReport& k : problems) {
    (k.verdict == Verdict::kViolation ? bad_keys : inconclusive_keys).insert(k.key);
  }
  const size_t bad = bad_keys.size(), inconclusive = inconclusive_keys.size();
  return absl::StrFormat(
      "%s: %d operations on %d keys, %d keys not linearizable, %d inconclusive, %d search "
      "steps, %.3fs",
      VerdictName(verdict), ops, keys, bad, inconclusive, steps, seconds);
}

std::string CheckResult::Report() const {
  std::string s = Summary();
  for (const KeyReport& k : problems) absl::StrAppend(&s, "\n  ", k.Report());
  return s;
}

KeyReport CheckKey(const std::string& key, const std::vector<Op>& ops,
                   const CheckOptions& options) {
  std::vector<uint64_t> lower;
  std::vector<KeyReport> problems = CheckReads(ops, &lower);
  if (!problems.empty()) return problems.front();
  std::map<std::string, std::vector<KeyView>> views = ViewsByKey(ops, lower, &key);
  return KeyChecker(key, views[key], options).Run();
}

CheckResult CheckHistory(const std::vector<Op>& history, const CheckOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  CheckResult result;
  result.ops = history.size();
  std::vector<uint64_t> lower;
  std::vector<KeyReport> problems = CheckReads(history, &lower);
  const std::map<std::string, std::vector<KeyView>> by_key = ViewsByKey(history, lower, nullptr);
  result.keys = by_key.size();
  for (const auto& [key, views] : by_key) {
    KeyReport k = KeyChecker(key, views, options).Run();
    result.steps += k.steps;
    if (k.verdict != Verdict::kLinearizable) problems.push_back(std::move(k));
  }
  for (KeyReport& k : problems) {
    if (k.verdict == Verdict::kViolation) {
      result.verdict = Verdict::kViolation;
    } else if (result.verdict == Verdict::kLinearizable) {
      result.verdict = Verdict::kInconclusive;
    }
    result.problems.push_back(std::move(k));
  }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace raftkv::jepsen
