#include "tests/jepsen/checker.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <numeric>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
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

// The model's state of one key.
struct State {
  int32_t value = -1;    // interned value; -1: the key is absent
  uint64_t version = 0;  // 0: absent, or present with a version not yet known
};

// One operation as the search sees it.
struct SOp {
  const Op* op = nullptr;
  int32_t value = -1;     // put/cas: the value written
  int32_t expected = -1;  // cas by value: the value compared with
  int32_t out = -1;       // get found / cas failed with the key present: value seen
  bool must = false;      // must be linearized (known outcome, or observed)
  bool has_result = false;
  // Answered, and its step never changes the state: a get, a failed CAS, a
  // delete that found nothing.
  bool read_only = false;
  uint64_t write_version = 0;  // the version this write sets, when known
  int64_t invoke = 0;
  int64_t complete = kInf;
  uint64_t z1 = 0, z2 = 0;  // Zobrist keys
  // Optional ops: ops of one class have the same effect from every state.
  int cls = -1;
};

bool Increases(uint64_t old_version, uint64_t new_version) {
  return old_version == 0 || new_version == 0 || new_version > old_version;
}

// The model's transition: false when `o` cannot take effect in state `s`
// (with its answer, if it has one). An unknown operation that would have no
// effect in `s` is refused too: having no effect is the same as taking
// effect after everything else, which the search always allows.
bool Step(const State& s, const SOp& o, State* out) {
  const Op& op = *o.op;
  switch (op.type) {
    case OpType::kGet:
      if (!op.found) {
        if (s.value != -1) return false;  // (an absent key's version is a floor)
        *out = s;
        return true;
      }
      if (s.value != o.out) return false;
      if (op.version != 0 && s.version != 0 && s.version != op.version) return false;
      *out = s;
      if (out->version == 0) out->version = op.version;  // learned
      return true;
    case OpType::kPut:
      if (!Increases(s.version, o.write_version)) return false;
      *out = State{o.value, o.write_version};
      return true;
    case OpType::kDelete:
      if (o.has_result && op.found != (s.value != -1)) return false;
      // Absent, remembering the last known version: later writes exceed it.
      *out = State{-1, s.version};
      return true;
    case OpType::kCas: {
      State cur = s;
      if (o.has_result && !op.succeeded) {
        // A failed CAS answers the current state: it must be this one.
        if (op.found != (s.value != -1)) return false;
        if (op.found) {
          if (s.value != o.out) return false;
          if (op.version != 0 && s.version != 0 && s.version != op.version) return false;
          if (cur.version == 0) cur.version = op.version;
        }
      }
      enum { kNo, kYes, kMaybe } match;
      if (!op.cas_by_version) {
        match = cur.value != -1 && cur.value == o.expected ? kYes : kNo;
      } else if (op.expected_version == 0) {
        match = cur.value == -1 ? kYes : kNo;
      } else if (cur.value == -1) {
        match = kNo;
      } else if (cur.version == 0) {
        match = kMaybe;
      } else {
        match = cur.version == op.expected_version ? kYes : kNo;
      }
      if (o.has_result && !op.succeeded) {
        if (match == kYes) return false;
        *out = cur;
        return true;
      }
      // Succeeded, or unknown and taking effect.
      if (match == kNo) return false;
      const uint64_t old_version =
          cur.version != 0 ? cur.version : (op.cas_by_version ? op.expected_version : 0);
      if (!Increases(old_version, o.write_version)) return false;
      *out = State{o.value, o.write_version};
      return true;
    }
  }
  return false;
}

struct CacheKey {
  uint64_t h1, h2;
  int32_t value;
  uint64_t version;
  bool operator==(const CacheKey& o) const {
    return h1 == o.h1 && h2 == o.h2 && value == o.value && version == o.version;
  }
  template <typename H>
  friend H AbslHashValue(H h, const CacheKey& k) {
    return H::combine(std::move(h), k.h1, k.h2, k.value, k.version);
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
    // The op is read-only (it leaves any state it accepts as it is) and
    // learned nothing here. Linearizing such an op as soon as it can be is
    // never worse than any alternative: a completion that places it later
    // stays valid with it moved here. So when that fails, the configuration
    // before it fails too.
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
        const bool pure = ops[i].read_only && next.value == state.value &&
                          next.version == state.version;
        if (visit(CacheKey{n1, n2, next.value, next.version}, must ? -1 : class_of[i])) {
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

// Everything CheckKey needs about one key's operations.
class KeyChecker {
 public:
  KeyChecker(const std::string& key, const std::vector<Op>& ops, const CheckOptions& options)
      : key_(key), options_(options) {
    for (const Op& op : ops) {
      if (op.outcome == Outcome::kFailed) continue;                         // no effect
      if (op.type == OpType::kGet && op.outcome != Outcome::kOk) continue;  // no answer
      ops_.push_back(&op);
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
    sops_.reserve(ops_.size());
    for (const Op* op : ops_) {
      SOp o;
      o.op = op;
      o.has_result = op->outcome == Outcome::kOk;
      o.must = o.has_result;
      o.read_only = o.has_result && (op->type == OpType::kGet ||
                                     (op->type == OpType::kCas && !op->succeeded) ||
                                     (op->type == OpType::kDelete && !op->found));
      o.invoke = op->invoke_ns;
      o.complete = o.has_result ? std::max(op->complete_ns, op->invoke_ns) : kInf;
      if (op->type == OpType::kPut || op->type == OpType::kCas) {
        o.value = Intern(op->value);
        count_writer(o.value);
      }
      if (op->type == OpType::kCas && !op->cas_by_version) o.expected = Intern(op->expected_value);
      if (o.has_result && op->found &&
          (op->type == OpType::kGet || (op->type == OpType::kCas && !op->succeeded))) {
        o.out = Intern(op->out_value);
      }
      if (o.has_result && (op->type == OpType::kPut ||
                           (op->type == OpType::kCas && op->succeeded))) {
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
      const Op& op = *o.op;
      if (o.write_version != 0) observe(o.value, o.write_version, &op);
      if (o.out >= 0) observe(o.out, op.version, &op);
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
      if (op.type == OpType::kCas && op.succeeded) {
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
      auto key = std::make_tuple(static_cast<int>(op.type), o.value, op.cas_by_version,
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
    if (s.value == -1) return "absent";
    if (s.value == anonymous_) return "<a value nobody read>";
    std::string v;
    for (const auto& [text, id] : values_) {
      if (id == s.value) v = text;
    }
    return absl::StrCat("\"", absl::CHexEscape(v), "\"@",
                        s.version == 0 ? std::string("?") : absl::StrCat(s.version));
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
      if (!linearized(i) && ops[i].invoke <= horizon) pending.push_back(i);
    }
    std::sort(pending.begin(), pending.end(), [&](int a, int b) {
      if (ops[a].must != ops[b].must) return ops[a].must;
      return ops[a].invoke > ops[b].invoke;
    });
    std::vector<const Op*> window;
    for (int i : r.best_tail) window.push_back(ops[i].op);
    for (int i : pending) {
      if (static_cast<int>(window.size()) >= options_.window_ops) break;
      window.push_back(ops[i].op);
    }
    std::sort(window.begin(), window.end(),
              [](const Op* a, const Op* b) { return a->invoke_ns < b->invoke_ns; });
    for (const Op* o : window) report->window.push_back(*o);
  }

  const std::string key_;
  const CheckOptions options_;
  std::vector<const Op*> ops_;
  std::vector<SOp> sops_;
  std::map<std::string, int32_t> values_;
  int32_t anonymous_ = -2;
  std::string prepass_violation_;
  std::vector<Op> prepass_window_;
};

}  // namespace

std::string KeyReport::Report() const {
  std::string s = explanation;
  for (const Op& op : window) absl::StrAppend(&s, "\n    ", DescribeOp(op));
  return s;
}

std::string CheckResult::Summary() const {
  size_t bad = 0, inconclusive = 0;
  for (const KeyReport& k : problems) {
    (k.verdict == Verdict::kViolation ? bad : inconclusive) += 1;
  }
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
  return KeyChecker(key, ops, options).Run();
}

CheckResult CheckHistory(const std::vector<Op>& history, const CheckOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  CheckResult result;
  result.ops = history.size();
  std::map<std::string, std::vector<Op>> by_key;
  for (const Op& op : history) by_key[op.key].push_back(op);
  result.keys = by_key.size();
  for (const auto& [key, ops] : by_key) {
    KeyReport k = CheckKey(key, ops, options);
    result.steps += k.steps;
    if (k.verdict == Verdict::kLinearizable) continue;
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
