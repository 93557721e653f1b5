#include "tests/jepsen/checker.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/jepsen/history.h"
#include "tests/jepsen/history_gen.h"

namespace raftkv::jepsen {
namespace {

// Hand-written histories: times are small integers (the checker only
// compares them); every operation is on key "x" unless said otherwise.
class H {
 public:
  H& Put(int c, int64_t inv, int64_t comp, std::string value, uint64_t version) {
    Op& op = Add(c, OpType::kPut, inv, comp);
    op.value = std::move(value);
    op.version = version;
    return *this;
  }
  H& PutUnknown(int c, int64_t inv, std::string value) {
    Op& op = Add(c, OpType::kPut, inv, 0);
    op.outcome = Outcome::kUnknown;
    op.value = std::move(value);
    return *this;
  }
  H& PutFailed(int c, int64_t inv, int64_t comp, std::string value) {
    Op& op = Add(c, OpType::kPut, inv, comp);
    op.outcome = Outcome::kFailed;
    op.value = std::move(value);
    return *this;
  }
  H& Get(int c, int64_t inv, int64_t comp, std::string value, uint64_t version) {
    Op& op = Add(c, OpType::kGet, inv, comp);
    op.found = true;
    op.out_value = std::move(value);
    op.version = version;
    return *this;
  }
  H& GetAbsent(int c, int64_t inv, int64_t comp) {
    Add(c, OpType::kGet, inv, comp);
    return *this;
  }
  H& Delete(int c, int64_t inv, int64_t comp, bool existed) {
    Add(c, OpType::kDelete, inv, comp).found = existed;
    return *this;
  }
  H& DeleteUnknown(int c, int64_t inv) {
    Add(c, OpType::kDelete, inv, 0).outcome = Outcome::kUnknown;
    return *this;
  }
  // CAS by value that succeeded with `version`.
  H& CasOk(int c, int64_t inv, int64_t comp, std::string expected, std::string value,
           uint64_t version) {
    Op& op = Add(c, OpType::kCas, inv, comp);
    op.expected_value = std::move(expected);
    op.value = std::move(value);
    op.succeeded = true;
    op.version = version;
    return *this;
  }
  // CAS by value that failed, answering the current value (absent if empty).
  H& CasFail(int c, int64_t inv, int64_t comp, std::string expected, std::string value,
             std::string current, uint64_t current_version) {
    Op& op = Add(c, OpType::kCas, inv, comp);
    op.expected_value = std::move(expected);
    op.value = std::move(value);
    op.found = !current.empty();
    op.out_value = std::move(current);
    op.version = current_version;
    return *this;
  }
  H& CasVersionOk(int c, int64_t inv, int64_t comp, uint64_t expected, std::string value,
                  uint64_t version) {
    Op& op = Add(c, OpType::kCas, inv, comp);
    op.cas_by_version = true;
    op.expected_version = expected;
    op.value = std::move(value);
    op.succeeded = true;
    op.version = version;
    return *this;
  }
  H& CasUnknown(int c, int64_t inv, std::string expected, std::string value) {
    Op& op = Add(c, OpType::kCas, inv, 0);
    op.outcome = Outcome::kUnknown;
    op.expected_value = std::move(expected);
    op.value = std::move(value);
    return *this;
  }
  H& Key(std::string k) {
    key_ = std::move(k);
    return *this;
  }

  const std::vector<Op>& ops() const { return ops_; }
  CheckResult Check() const { return CheckHistory(ops_); }

 private:
  Op& Add(int c, OpType t, int64_t inv, int64_t comp) {
    Op op;
    op.id = static_cast<int64_t>(ops_.size());
    op.client = c;
    op.type = t;
    op.key = key_;
    op.invoke_ns = inv;
    op.complete_ns = comp;
    op.outcome = Outcome::kOk;
    ops_.push_back(op);
    return ops_.back();
  }

  std::string key_ = "x";
  std::vector<Op> ops_;
};

void ExpectLinearizable(const H& h) {
  CheckResult r = h.Check();
  EXPECT_EQ(r.verdict, Verdict::kLinearizable) << r.Report();
}

// Rejected, and the report names the key and at least `must_list` ops.
void ExpectViolation(const H& h, const std::vector<int64_t>& must_list = {},
                     const std::string& key = "x") {
  CheckResult r = h.Check();
  ASSERT_EQ(r.verdict, Verdict::kViolation) << r.Report();
  ASSERT_EQ(r.problems.size(), 1u) << r.Report();
  const KeyReport& k = r.problems[0];
  EXPECT_EQ(k.key, key);
  EXPECT_NE(k.explanation.find("\"" + key + "\""), std::string::npos) << k.explanation;
  for (int64_t id : must_list) {
    bool listed = false;
    for (const Op& op : k.window) listed = listed || op.id == id;
    EXPECT_TRUE(listed) << "op #" << id << " not in the window:\n" << k.Report();
  }
  EXPECT_LE(k.window.size(), 40u);
}

// --- rejected -------------------------------------------------------------

TEST(CheckerTest, StaleReadIsRejected) {
  H h;
  h.Put(1, 0, 10, "a", 1).Put(1, 20, 30, "b", 2).Get(2, 40, 50, "a", 1);
  ExpectViolation(h, {2});
}

TEST(CheckerTest, StaleReadAfterConcurrentReadSawNewValue) {
  // Two reads, the second starts after the first ended, see new then old.
  H h;
  h.Put(1, 0, 10, "a", 1).Put(1, 20, 100, "b", 2).Get(2, 30, 40, "b", 2).Get(3, 50, 60, "a", 1);
  ExpectViolation(h, {3});
}

TEST(CheckerTest, LostWriteIsRejected) {
  // An acknowledged put, then the key is gone.
  H h;
  h.Put(1, 0, 10, "a", 3).GetAbsent(2, 20, 30);
  ExpectViolation(h, {1});
}

TEST(CheckerTest, LostOverwriteIsRejected) {
  // The second acknowledged put vanished: reads go back to the first.
  H h;
  h.Put(1, 0, 10, "a", 3).Put(2, 15, 25, "b", 5).Get(3, 30, 40, "b", 5).Get(3, 50, 60, "a", 3);
  ExpectViolation(h, {3});
}

TEST(CheckerTest, BothConcurrentCasesSucceedingIsRejected) {
  H h;
  h.Put(1, 0, 10, "0", 1)
      .CasOk(2, 20, 40, "0", "p", 2)
      .CasOk(3, 21, 41, "0", "q", 3);
  ExpectViolation(h, {1, 2});
}

TEST(CheckerTest, CasSucceedingOnAStaleValueIsRejected) {
  H h;
  h.Put(1, 0, 10, "0", 1).Put(1, 20, 30, "1", 2).CasOk(2, 40, 50, "0", "z", 3);
  ExpectViolation(h, {2});
}

TEST(CheckerTest, CasFailingWithTheMatchingValueIsRejected) {
  // It reports current "0", which is what it expected.
  H h;
  h.Put(1, 0, 10, "0", 1).CasFail(2, 20, 30, "0", "z", "0", 1);
  ExpectViolation(h, {1});
}

TEST(CheckerTest, CasSwapNotVisibleToLaterReadIsRejected) {
  H h;
  h.Put(1, 0, 10, "0", 1).CasOk(2, 20, 30, "0", "1", 2).Get(3, 40, 50, "0", 1);
  ExpectViolation(h, {2});
}

TEST(CheckerTest, ReadFromTheFutureIsRejected) {
  H h;
  h.Get(1, 0, 10, "a", 1).Put(2, 20, 30, "a", 1);
  ExpectViolation(h);
}

TEST(CheckerTest, UnknownWriteObservedBeforeItWasInvokedIsRejected) {
  H h;
  h.Get(1, 0, 10, "u", 4).PutUnknown(2, 20, "u");
  ExpectViolation(h, {0, 1});
}

TEST(CheckerTest, VersionsGoingBackwardAreRejected) {
  // Values fine, but the second write got a smaller log index.
  H h;
  h.Put(1, 0, 10, "a", 7).Put(1, 20, 30, "b", 5);
  ExpectViolation(h);
}

TEST(CheckerTest, OneVersionForTwoValuesIsRejected) {
  H h;
  h.Put(1, 0, 10, "a", 7).Put(2, 0, 10, "b", 9).Get(3, 20, 30, "a", 9);
  ExpectViolation(h);
}

TEST(CheckerTest, DeleteOfAnAbsentKeyClaimingItExistedIsRejected) {
  H h;
  h.Delete(1, 0, 10, /*existed=*/true);
  ExpectViolation(h, {0});
}

TEST(CheckerTest, ViolationOnOneKeyNamesThatKey) {
  H h;
  h.Key("good").Put(1, 0, 10, "a", 1).Get(2, 20, 30, "a", 1);
  h.Key("bad").Put(1, 0, 10, "a", 2).Put(1, 20, 30, "b", 3).Get(2, 40, 50, "a", 2);
  ExpectViolation(h, {4}, "bad");
}

TEST(CheckerTest, UnknownDeleteDoesNotExcuseAStaleRead) {
  // Whether or not the unknown delete happened, "a" cannot come back.
  H h;
  h.Put(1, 0, 10, "a", 1).DeleteUnknown(2, 5).Put(1, 20, 30, "b", 3).Get(3, 40, 50, "a", 1);
  ExpectViolation(h, {3});
}

// --- accepted -------------------------------------------------------------

TEST(CheckerTest, ConcurrentOverlappingWritesAreAccepted) {
  // "b" lands first, then "a"; reads in between see each.
  H h;
  h.Put(1, 0, 100, "a", 3)
      .Put(2, 10, 90, "b", 2)
      .Get(3, 20, 30, "b", 2)
      .Get(3, 40, 50, "a", 3)
      .Get(4, 95, 99, "a", 3);
  ExpectLinearizable(h);
}

TEST(CheckerTest, ConcurrentReadsMayDisagreeWhileAWriteIsInFlight) {
  H h;
  h.Put(1, 0, 10, "a", 1)
      .Put(2, 20, 100, "b", 4)
      .Get(3, 25, 80, "b", 4)
      .Get(4, 30, 90, "a", 1);  // overlaps both: read before the put took effect
  ExpectLinearizable(h);
}

TEST(CheckerTest, UnknownWriteObservedLaterIsAccepted) {
  H h;
  h.Put(1, 0, 10, "a", 1).PutUnknown(2, 5, "u").Get(3, 50, 60, "u", 3).Get(3, 70, 80, "u", 3);
  ExpectLinearizable(h);
}

TEST(CheckerTest, UnknownWriteTakingEffectAfterLaterWritesIsAccepted) {
  // The unknown put lands after "b", long after its client gave up.
  H h;
  h.Put(1, 0, 10, "a", 1)
      .PutUnknown(2, 5, "u")
      .Put(1, 20, 30, "b", 2)
      .Get(3, 40, 50, "b", 2)
      .Get(3, 60, 70, "u", 7);
  ExpectLinearizable(h);
}

TEST(CheckerTest, UnknownWriteNeverObservedIsAccepted) {
  H h;
  h.Put(1, 0, 10, "a", 1)
      .PutUnknown(2, 5, "u")
      .Get(3, 20, 30, "a", 1)
      .Put(1, 40, 50, "b", 9)
      .Get(3, 60, 70, "b", 9);
  ExpectLinearizable(h);
}

TEST(CheckerTest, UnknownDeleteThatHappenedIsAccepted) {
  H h;
  h.Put(1, 0, 10, "a", 1).DeleteUnknown(2, 20).GetAbsent(3, 40, 50);
  ExpectLinearizable(h);
}

TEST(CheckerTest, UnknownWriteExplainsADeleteOfAnExistingKey) {
  // Nobody read "u", but the delete found the key: only "u" explains it.
  H h;
  h.PutUnknown(1, 0, "u").Delete(2, 20, 30, /*existed=*/true).GetAbsent(3, 40, 50);
  ExpectLinearizable(h);
}

TEST(CheckerTest, UnknownCasObservedIsAccepted) {
  H h;
  h.Put(1, 0, 10, "0", 1).CasUnknown(2, 20, "0", "1").Get(3, 100, 110, "1", 5);
  ExpectLinearizable(h);
}

TEST(CheckerTest, UnknownCasThatCouldNotMatchObservedIsRejected) {
  // Its expected value never existed, yet its value shows up.
  H h;
  h.Put(1, 0, 10, "0", 1).CasUnknown(2, 20, "nope", "1").Get(3, 100, 110, "1", 5);
  ExpectViolation(h);
}

TEST(CheckerTest, FailedWritesAreIgnored) {
  H h;
  h.PutFailed(1, 0, 10, "f").GetAbsent(2, 20, 30).Put(1, 40, 50, "a", 2).Get(2, 60, 70, "a", 2);
  ExpectLinearizable(h);
}

TEST(CheckerTest, CasChainsByValueAndVersion) {
  H h;
  h.Put(1, 0, 10, "0", 1)
      .CasOk(2, 20, 30, "0", "1", 2)
      .CasFail(3, 22, 32, "0", "2", "1", 2)
      .CasVersionOk(1, 40, 50, 2, "3", 4)
      .Delete(2, 60, 70, true)
      .CasVersionOk(3, 80, 90, 0, "4", 6)
      .Get(1, 100, 110, "4", 6);
  ExpectLinearizable(h);
}

TEST(CheckerTest, VersionLearnedFromAReadOfAnUnknownWrite) {
  // The CAS by version can only match if the unknown put got version 3.
  H h;
  h.PutUnknown(1, 0, "u").Get(2, 10, 20, "u", 3).CasVersionOk(2, 30, 40, 3, "v", 4);
  ExpectLinearizable(h);
}

TEST(CheckerTest, TiesCountAsConcurrent) {
  H h;
  h.Put(1, 0, 10, "a", 1).Get(2, 10, 20, "a", 1).Put(3, 20, 30, "b", 2).Get(1, 30, 40, "b", 2);
  ExpectLinearizable(h);
}

// --- generated histories ----------------------------------------------------

TEST(CheckerTest, RandomLinearizableHistoriesAreAccepted) {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    GenOptions o;
    o.seed = seed;
    o.clients = 2 + seed % 6;
    o.keys = 1 + seed % 3;
    o.ops = 150;
    o.unknown = seed % 4 == 0 ? 0.1 : 0.02;
    std::vector<Op> h = GenerateLinearizable(o);
    CheckResult r = CheckHistory(h);
    ASSERT_EQ(r.verdict, Verdict::kLinearizable) << "seed " << seed << ": " << r.Report();
  }
}

TEST(CheckerTest, TamperedHistoriesAreRejected) {
  // Make one read return a value that was overwritten by an acknowledged
  // write which completed before the read began: always a stale read.
  int tampered = 0;
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    GenOptions o;
    o.seed = seed;
    o.keys = 2;
    o.ops = 120;
    o.unknown = 0;
    std::vector<Op> h = GenerateLinearizable(o);
    bool done = false;
    for (size_t g = 0; g < h.size() && !done; ++g) {
      if (h[g].type != OpType::kGet || h[g].outcome != Outcome::kOk) continue;
      // Find ok puts w1 < w2 on the key, w2 completed before g was invoked,
      // w1 completed before w2 was invoked.
      for (size_t a = 0; a < g && !done; ++a) {
        const Op& w1 = h[a];
        if (w1.type != OpType::kPut || w1.outcome != Outcome::kOk || w1.key != h[g].key) continue;
        for (size_t b = a + 1; b < g && !done; ++b) {
          const Op& w2 = h[b];
          if (w2.type != OpType::kPut || w2.outcome != Outcome::kOk || w2.key != w1.key ||
              w1.complete_ns >= w2.invoke_ns || w2.complete_ns >= h[g].invoke_ns) {
            continue;
          }
          h[g].found = true;
          h[g].out_value = w1.value;
          h[g].version = w1.version;
          done = true;
        }
      }
    }
    if (!done) continue;
    ++tampered;
    CheckResult r = CheckHistory(h);
    EXPECT_EQ(r.verdict, Verdict::kViolation) << "seed " << seed;
  }
  EXPECT_GT(tampered, 50);
}

TEST(CheckerTest, ThousandsOfOperationsInSeconds) {
  struct Case {
    int ops, clients, keys;
    double unknown;
  };
  for (const Case& c : {Case{10000, 10, 5, 0.01}, Case{5000, 8, 1, 0.01},
                        Case{3000, 20, 2, 0.03}}) {
    GenOptions o;
    o.seed = 42;
    o.ops = c.ops;
    o.clients = c.clients;
    o.keys = c.keys;
    o.unknown = c.unknown;
    std::vector<Op> h = GenerateLinearizable(o);
    const auto start = std::chrono::steady_clock::now();
    CheckResult r = CheckHistory(h);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(r.verdict, Verdict::kLinearizable) << r.Report();
    EXPECT_LT(secs, 10.0) << r.Summary();
    std::cerr << c.ops << " ops, " << c.clients << " clients, " << c.keys
              << " keys: " << r.Summary() << "\n";
  }
}

// --- cross-check against a brute-force reference ---------------------------

// The same model, written plainly: tries every order of every subset of the
// unknown operations, with no memoization, pruning or preprocessing.
struct RState {
  bool exists = false;
  std::string value;
  uint64_t version = 0;  // 0: unknown; when absent, the last version (floor)
};

bool Grows(uint64_t a, uint64_t b) { return a == 0 || b == 0 || b > a; }

bool RefStep(const RState& s, const Op& op, uint64_t write_version, RState* out) {
  const bool known = op.outcome == Outcome::kOk;
  switch (op.type) {
    case OpType::kGet:
      if (op.found != s.exists) return false;
      *out = s;
      if (!op.found) return true;
      if (s.value != op.out_value) return false;
      if (s.version != 0 && op.version != 0 && s.version != op.version) return false;
      if (out->version == 0) out->version = op.version;
      return true;
    case OpType::kPut:
      if (!Grows(s.version, write_version)) return false;
      *out = RState{true, op.value, write_version};
      return true;
    case OpType::kDelete:
      if (known && op.found != s.exists) return false;
      *out = RState{false, "", s.version};
      return true;
    case OpType::kCas: {
      RState cur = s;
      if (known && !op.succeeded) {
        if (op.found != s.exists) return false;
        if (op.found) {
          if (op.out_value != s.value) return false;
          if (s.version != 0 && op.version != 0 && s.version != op.version) return false;
          if (cur.version == 0) cur.version = op.version;
        }
      }
      int match;  // 0 no, 1 yes, 2 unknown
      if (!op.cas_by_version) {
        match = cur.exists && cur.value == op.expected_value;
      } else if (op.expected_version == 0) {
        match = !cur.exists;
      } else if (!cur.exists) {
        match = 0;
      } else if (cur.version == 0) {
        match = 2;
      } else {
        match = cur.version == op.expected_version;
      }
      if (known && !op.succeeded) {
        if (match == 1) return false;
        *out = cur;
        return true;
      }
      if (match == 0) return false;
      const uint64_t old = cur.version != 0 ? cur.version
                                            : (op.cas_by_version ? op.expected_version : 0);
      if (!Grows(old, write_version)) return false;
      *out = RState{true, op.value, write_version};
      return true;
    }
  }
  return false;
}

bool RefDfs(const std::vector<Op>& ops, const std::vector<uint64_t>& wv, const RState& s,
            uint32_t remaining) {
  bool must_left = false;
  int64_t horizon = std::numeric_limits<int64_t>::max();
  for (size_t i = 0; i < ops.size(); ++i) {
    if (!(remaining >> i & 1) || ops[i].outcome != Outcome::kOk) continue;
    must_left = true;
    horizon = std::min(horizon, ops[i].complete_ns);
  }
  if (!must_left) return true;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (!(remaining >> i & 1) || ops[i].invoke_ns > horizon) continue;
    RState next;
    if (RefStep(s, ops[i], wv[i], &next) && RefDfs(ops, wv, next, remaining & ~(1u << i))) {
      return true;
    }
  }
  return false;
}

bool RefLinearizable(std::vector<Op> ops) {
  // Failed operations and unanswered reads have no effect.
  std::vector<Op> kept;
  for (const Op& op : ops) {
    if (op.outcome == Outcome::kFailed) continue;
    if (op.type == OpType::kGet && op.outcome != Outcome::kOk) continue;
    kept.push_back(op);
  }
  // A write's version: its answer, or what observers of its (unique) value saw.
  std::map<std::string, int> writers;
  std::map<std::string, uint64_t> seen_version;
  for (const Op& op : kept) {
    if (op.type == OpType::kPut || op.type == OpType::kCas) ++writers[op.value];
  }
  for (const Op& op : kept) {
    if (op.outcome != Outcome::kOk) continue;
    if (op.type == OpType::kPut || (op.type == OpType::kCas && op.succeeded)) {
      seen_version[op.value] = op.version;
    }
    if (op.found && (op.type == OpType::kGet || (op.type == OpType::kCas && !op.succeeded))) {
      seen_version[op.out_value] = op.version;
    }
  }
  std::vector<uint64_t> wv(kept.size(), 0);
  for (size_t i = 0; i < kept.size(); ++i) {
    const Op& op = kept[i];
    if (op.type != OpType::kPut && op.type != OpType::kCas) continue;
    if (op.outcome == Outcome::kOk) {
      wv[i] = op.version;
    } else if (writers[op.value] == 1 && seen_version.count(op.value)) {
      wv[i] = seen_version[op.value];
    }
  }
  return RefDfs(kept, wv, RState{}, (1u << kept.size()) - 1);
}

// Random small histories on one key: writes have unique values and distinct
// versions; answers are drawn from what was written, so versions and values
// stay consistent, and most histories are not linearizable.
std::vector<Op> RandomSmallHistory(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  const int n = 3 + pick(7);
  std::vector<Op> ops(n);
  std::vector<uint64_t> versions;
  for (int i = 0; i < n; ++i) versions.push_back(1 + i * 3 + pick(3));
  std::shuffle(versions.begin(), versions.end(), rng);
  for (int i = 0; i < n; ++i) {
    Op& op = ops[i];
    op.id = i;
    op.client = i;
    op.key = "k";
    op.type = static_cast<OpType>(pick(4));
    op.value = absl::StrCat("v", i);
    op.invoke_ns = pick(60);
    op.complete_ns = op.invoke_ns + 1 + pick(30);
    const int r = pick(20);
    op.outcome = r < 14 ? Outcome::kOk : r < 19 ? Outcome::kUnknown : Outcome::kFailed;
  }
  auto random_write = [&]() -> const Op* {
    for (int tries = 0; tries < 10; ++tries) {
      const Op& w = ops[pick(n)];
      if (w.type == OpType::kPut || w.type == OpType::kCas) return &w;
    }
    return nullptr;
  };
  for (int i = 0; i < n; ++i) {
    Op& op = ops[i];
    switch (op.type) {
      case OpType::kGet:
      case OpType::kDelete:
        op.found = pick(3) != 0;
        break;
      case OpType::kPut:
        break;
      case OpType::kCas:
        if (pick(3) == 0) {
          op.cas_by_version = true;
          const Op* w = random_write();
          op.expected_version = w != nullptr && pick(4) != 0 ? versions[w->id] : 0;
        } else {
          const Op* w = random_write();
          op.expected_value = w != nullptr ? w->value : "nothing";
        }
        op.succeeded = pick(2) == 0;
        op.found = !op.succeeded && pick(3) != 0;
        break;
    }
    if (op.found && op.type != OpType::kDelete) {
      const Op* w = random_write();
      if (w == nullptr) {
        op.found = false;
      } else {
        op.out_value = w->value;
        op.version = versions[w->id];
      }
    }
    if (op.type == OpType::kPut || (op.type == OpType::kCas && op.succeeded)) {
      op.version = versions[i];
    }
  }
  // Answers of operations that did not end ok are not known.
  for (Op& op : ops) {
    if (op.outcome == Outcome::kOk) continue;
    op.found = op.succeeded = false;
    op.out_value.clear();
    op.version = 0;
  }
  return ops;
}

TEST(CheckerTest, AgreesWithBruteForceOnSmallRandomHistories) {
  int linearizable = 0, not_linearizable = 0;
  for (uint64_t seed = 1; seed <= 30000; ++seed) {
    std::vector<Op> h = RandomSmallHistory(seed);
    const bool want = RefLinearizable(h);
    CheckResult got = CheckHistory(h);
    ASSERT_NE(got.verdict, Verdict::kInconclusive);
    (want ? linearizable : not_linearizable) += 1;
    if (got.ok() != want) {
      std::string dump;
      for (const Op& op : h) absl::StrAppend(&dump, "\n  ", DescribeOp(op));
      FAIL() << "seed " << seed << ": brute force says " << (want ? "" : "NOT ")
             << "linearizable, checker: " << got.Report() << "\nhistory:" << dump;
    }
  }
  // Both kinds are well represented.
  EXPECT_GT(linearizable, 1500);
  EXPECT_GT(not_linearizable, 1500);
  std::cerr << linearizable << " linearizable, " << not_linearizable << " not\n";
}

TEST(HistoryTest, FormatAndParseRoundTrip) {
  GenOptions o;
  o.ops = 300;
  o.unknown = 0.1;
  std::vector<Op> h = GenerateLinearizable(o);
  h[3].key = std::string("we\tird\n\"key\"\0x", 14);
  h[3].error = "deadline\texceeded";
  auto parsed = ParseHistory(FormatHistory(h));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), h.size());
  for (size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(FormatOp((*parsed)[i]), FormatOp(h[i]));
  }
  EXPECT_EQ((*parsed)[3].key, h[3].key);
  EXPECT_FALSE(ParseHistory("id=1\tbogus").ok());
}

TEST(HistoryTest, RecorderMarksUncompletedOpsUnknown) {
  Recorder rec;
  Op a;
  a.type = OpType::kPut;
  a.key = "k";
  a.value = "v";
  const int64_t id = rec.Invoke(a);
  const int64_t id2 = rec.Invoke(a);
  Op res;
  res.outcome = Outcome::kOk;
  res.version = 9;
  rec.Complete(id, res);
  std::vector<Op> h = rec.Snapshot();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[id].outcome, Outcome::kOk);
  EXPECT_EQ(h[id].version, 9u);
  EXPECT_GE(h[id].complete_ns, h[id].invoke_ns);
  EXPECT_EQ(h[id2].outcome, Outcome::kUnknown);
}

}  // namespace
}  // namespace raftkv::jepsen
