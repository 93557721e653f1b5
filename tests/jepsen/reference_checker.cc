#include "tests/jepsen/reference_checker.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <tuple>

namespace raftkv::jepsen {
namespace {

constexpr int64_t kAlways = std::numeric_limits<int64_t>::min();
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

bool IsRead(const Op& op) { return op.type == OpType::kGet || op.type == OpType::kScan; }

std::vector<uint64_t> VersionsOf(const Op& op) {
  std::vector<uint64_t> v;
  if (op.type == OpType::kScan) {
    for (const ScanKv& kv : op.kvs) v.push_back(kv.version);
  } else if (op.found) {
    v.push_back(op.version);
  }
  return v;
}

uint64_t Highest(const std::vector<uint64_t>& v) {
  return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
}

bool HasPrefix(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0 && s.size() >= prefix.size();
}

// One operation as seen on one key.
struct View {
  const Op* op = nullptr;
  bool found = false;  // reads: the answer for this key
  std::string value;
  uint64_t version = 0;
  uint64_t lower = 0;  // reads: entries after it exceed this
  uint64_t upper = 0;  // reads: entries up to it are at most this (0: none)
  int64_t from = 0;    // may be linearized at a time in [from, to]
  int64_t to = kNever;
  bool must = false;
};

// An index c + d*eps.
using Index = std::pair<uint64_t, uint64_t>;

// One entry (a write or delete taking effect) of an order.
struct Entry {
  bool pinned = false;
  uint64_t pin = 0;
  uint64_t after = 0;  // exclusive lower bound from reads before it
  uint64_t upper = 0;  // at most this (0: none)
};

// Does the order `order` of `views` satisfy the model, values and indexes?
bool Replay(const std::vector<View>& views, const std::vector<int>& order) {
  std::vector<Entry> entries(1);  // entries[0]: the start, index 0
  entries[0].pinned = true;
  bool present = false;
  std::string value;
  uint64_t marker = 0;  // reads' lower bounds since the last entry
  auto pin = [&](uint64_t r) {
    Entry& e = entries.back();
    if (e.pinned) return e.pin == r;
    e.pinned = true;
    e.pin = r;
    return true;
  };
  auto add = [&](bool has_pin, uint64_t p) {
    Entry e;
    e.pinned = has_pin;
    e.pin = p;
    e.after = marker;
    marker = 0;
    entries.push_back(e);
  };
  for (int i : order) {
    const View& v = views[i];
    const Op& op = *v.op;
    const bool known = op.outcome == Outcome::kOk;
    switch (op.type) {
      case OpType::kGet:
      case OpType::kScan:
        if (v.found != present) return false;
        if (v.found && (v.value != value || (v.version != 0 && !pin(v.version)))) return false;
        if (v.upper != 0) {
          Entry& e = entries.back();
          e.upper = e.upper == 0 ? v.upper : std::min(e.upper, v.upper);
        }
        marker = std::max(marker, v.lower);
        break;
      case OpType::kPut:
        add(known && op.version != 0, op.version);
        present = true;
        value = op.value;
        break;
      case OpType::kDelete:
        if (known && op.found != present) return false;
        if (!present) {
          if (!known) return false;  // no effect: as if left out
          break;
        }
        add(false, 0);
        present = false;
        break;
      case OpType::kCas: {
        if (known && !op.succeeded) {
          if (op.found != present) return false;
          if (op.found && (op.out_value != value || (op.version != 0 && !pin(op.version)))) {
            return false;
          }
          bool match;
          if (!op.cas_by_version) {
            match = present && value == op.expected_value;
          } else if (op.expected_version == 0) {
            match = !present;
          } else {
            const Entry& e = entries.back();
            match = present && e.pinned && e.pin == op.expected_version;
          }
          if (match) return false;
          break;
        }
        // Succeeded, or unknown and included: it matched.
        if (!op.cas_by_version) {
          if (!present || value != op.expected_value) return false;
        } else if (op.expected_version == 0) {
          if (present) return false;
        } else if (!present || !pin(op.expected_version)) {
          return false;
        }
        add(known && op.version != 0, op.version);
        present = true;
        value = op.value;
        break;
      }
    }
  }
  // The least assignment of indexes.
  Index prev{0, 0};
  for (size_t j = 0; j < entries.size(); ++j) {
    const Entry& e = entries[j];
    Index least = j == 0 ? Index{0, 0} : Index{prev.first, prev.second + 1};
    if (e.after != 0) least = std::max(least, Index{e.after, 1});
    Index val = least;
    if (e.pinned) {
      if (Index{e.pin, 0} < least) return false;
      val = Index{e.pin, 0};
    }
    if (e.upper != 0 && val > Index{e.upper, 0}) return false;
    prev = val;
  }
  return true;
}

bool Search(const std::vector<View>& views, std::vector<int>* order, std::vector<bool>* used) {
  int64_t horizon = kNever;
  bool must_left = false;
  for (size_t i = 0; i < views.size(); ++i) {
    if ((*used)[i] || !views[i].must) continue;
    must_left = true;
    horizon = std::min(horizon, views[i].to);
  }
  if (!must_left) return true;
  for (size_t i = 0; i < views.size(); ++i) {
    if ((*used)[i] || views[i].from > horizon) continue;
    order->push_back(static_cast<int>(i));
    (*used)[i] = true;
    if (Replay(views, *order) && Search(views, order, used)) return true;
    (*used)[i] = false;
    order->pop_back();
  }
  return false;
}

}  // namespace

std::optional<bool> ReferenceLinearizable(const std::vector<Op>& history,
                                          size_t max_ops_per_key) {
  const size_t n = history.size();
  // Reads answered: versions within the applied index, scans in order and
  // under their prefix, members never going back; each read's lower bound.
  std::vector<uint64_t> lower(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const Op& r = history[i];
    if (!IsRead(r) || r.outcome != Outcome::kOk) continue;
    if (r.applied != 0 && Highest(VersionsOf(r)) > r.applied) return false;
    if (r.type == OpType::kScan) {
      for (size_t k = 0; k < r.kvs.size(); ++k) {
        if (!HasPrefix(r.kvs[k].key, r.key)) return false;
        if (k > 0 && !(r.kvs[k - 1].key < r.kvs[k].key)) return false;
      }
    }
    if (r.member == 0) continue;
    for (size_t j = 0; j < n; ++j) {
      const Op& e = history[j];
      if (j == i || !IsRead(e) || e.outcome != Outcome::kOk || e.member != r.member ||
          e.complete_ns >= r.invoke_ns) {
        continue;
      }
      if (e.applied != 0 && r.applied != 0 && e.applied > r.applied) return false;
      lower[i] = std::max({lower[i], e.applied, Highest(VersionsOf(e))});
    }
  }
  // Each key's views.
  std::set<std::string> keys;
  for (const Op& op : history) {
    if (op.type != OpType::kScan) keys.insert(op.key);
    for (const ScanKv& kv : op.kvs) keys.insert(kv.key);
  }
  std::map<std::string, std::vector<View>> by_key;
  for (size_t i = 0; i < n; ++i) {
    const Op& op = history[i];
    if (op.outcome == Outcome::kFailed) continue;
    if (IsRead(op) && op.outcome != Outcome::kOk) continue;
    View v;
    v.op = &op;
    v.must = op.outcome == Outcome::kOk;
    v.from = IsRead(op) && op.serializable ? kAlways : op.invoke_ns;
    v.to = v.must ? op.complete_ns : kNever;
    if (op.type != OpType::kScan) {
      if (IsRead(op)) {
        v.found = op.found;
        v.value = op.out_value;
        v.version = op.version;
        v.lower = lower[i];
        v.upper = op.applied;
      }
      by_key[op.key].push_back(v);
      continue;
    }
    for (const std::string& key : keys) {
      if (!HasPrefix(key, op.key)) continue;
      if (op.more && (op.kvs.empty() || key > op.kvs.back().key)) continue;
      View kv = v;
      kv.lower = std::max(lower[i], Highest(VersionsOf(op)));
      kv.upper = op.applied;
      for (const ScanKv& s : op.kvs) {
        if (s.key != key) continue;
        kv.found = true;
        kv.value = s.value;
        kv.version = s.version;
      }
      by_key[key].push_back(kv);
    }
  }
  for (const auto& [key, views] : by_key) {
    if (views.size() > max_ops_per_key) return std::nullopt;
  }
  for (const auto& [key, views] : by_key) {
    std::vector<int> order;
    std::vector<bool> used(views.size(), false);
    if (!Search(views, &order, &used)) return false;
  }
  return true;
}

}  // namespace raftkv::jepsen
