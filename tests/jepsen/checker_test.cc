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
#include "tests/jepsen/reference_checker.h"

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
  // A get answered by `member` (serializable or not) with applied index
  // `applied` (0: not known); `value` empty: found nothing.
  H& MemberGet(int c, int64_t inv, int64_t comp, uint64_t member, bool serializable,
               std::string value, uint64_t version, uint64_t applied = 0) {
    Op& op = Add(c, OpType::kGet, inv, comp);
    op.member = member;
    op.serializable = serializable;
    op.found = !value.empty();
    op.out_value = std::move(value);
    op.version = version;
    op.applied = applied;
    return *this;
  }
  // A scan of `prefix` answering `kvs`.
  H& Scan(int c, int64_t inv, int64_t comp, std::string prefix, std::vector<ScanKv> kvs,
          uint64_t member = 0, bool serializable = false, uint64_t applied = 0,
          bool more = false) {
    Op& op = Add(c, OpType::kScan, inv, comp);
    op.key = std::move(prefix);
    op.kvs = std::move(kvs);
    op.member = member;
    op.serializable = serializable;
    op.applied = applied;
    op.more = more;
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

std::string Dump(const std::vector<Op>& h) {
  std::string dump;
  for (const Op& op : h) absl::StrAppend(&dump, "\n  ", DescribeOp(op));
  return dump;
}

// Every hand-written history is also given to the brute-force reference.
void ExpectLinearizable(const H& h) {
  CheckResult r = h.Check();
  EXPECT_EQ(r.verdict, Verdict::kLinearizable) << r.Report();
  EXPECT_EQ(ReferenceLinearizable(h.ops()), std::optional<bool>(true)) << Dump(h.ops());
}

// Rejected, and the (first) report names the key and at least `must_list`
// ops; no other key is reported.
void ExpectViolation(const H& h, const std::vector<int64_t>& must_list = {},
                     const std::string& key = "x") {
  EXPECT_EQ(ReferenceLinearizable(h.ops()), std::optional<bool>(false)) << Dump(h.ops());
  CheckResult r = h.Check();
  ASSERT_EQ(r.verdict, Verdict::kViolation) << r.Report();
  ASSERT_GE(r.problems.size(), 1u) << r.Report();
  for (const KeyReport& k : r.problems) EXPECT_EQ(k.key, key) << r.Report();
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

// The version floor survives an unknown write (issue 26): an unknown write
// placed in between makes the key's version unknown, but not smaller.
TEST(CheckerTest, VersionGoingBackAcrossAnUnknownWriteIsRejected) {
  // "b" was acknowledged with a lower version than "a", which completed
  // before "b" began; the unknown put could sit in between.
  H h;
  h.PutUnknown(1, 0, "u").Put(2, 5, 10, "a", 10).Put(3, 20, 30, "b", 5);
  ExpectViolation(h, {2});
}

TEST(CheckerTest, VersionGoingBackAcrossAnUnknownWriteAndDeleteIsRejected) {
  H h;
  h.PutUnknown(1, 0, "u")
      .DeleteUnknown(4, 1)
      .Put(2, 5, 10, "a", 10)
      .Put(3, 20, 30, "b", 5);
  ExpectViolation(h, {2});
}

TEST(CheckerTest, ReadOfAnUnknownWriteAtAnOldVersionIsRejected) {
  // "u" can only have landed after "a"@10, so its version exceeds 10; the
  // other unknown write cannot reset that.
  H h;
  h.PutUnknown(1, 0, "w").PutUnknown(4, 1, "u").Put(2, 5, 10, "a", 10).Get(3, 20, 30, "u", 7);
  ExpectViolation(h, {3});
}

TEST(CheckerTest, CasByVersionBelowTheFloorIsRejected) {
  // The CAS by version needs the current version to be 4, below "a"'s 10.
  H h;
  h.PutUnknown(1, 0, "w").Put(2, 5, 10, "a", 10).CasVersionOk(3, 20, 30, 4, "c", 12);
  ExpectViolation(h, {2});
}

// --- serializable reads, members and scans: rejected ----------------------

TEST(CheckerTest, SerializableReadOfAValueNeverWrittenIsRejected) {
  H h;
  h.Put(1, 0, 10, "a", 1).MemberGet(2, 20, 30, 2, true, "zzz", 1);
  ExpectViolation(h);
}

TEST(CheckerTest, SerializableReadFromTheFutureIsRejected) {
  // Stale is allowed; a value written after the read completed is not.
  H h;
  h.MemberGet(2, 0, 10, 2, true, "a", 1).Put(1, 20, 30, "a", 1);
  ExpectViolation(h);
}

TEST(CheckerTest, SerializableReadOfAFailedWriteIsRejected) {
  H h;
  h.Put(1, 0, 10, "a", 1).PutFailed(1, 20, 30, "f").MemberGet(2, 40, 50, 2, true, "f", 3);
  ExpectViolation(h);
}

TEST(CheckerTest, MemberGoingBackOnOneKeyIsRejected) {
  // Member 2 showed "b"@2, then (invoked after) the older "a"@1.
  H h;
  h.Put(1, 0, 10, "a", 1)
      .Put(1, 20, 30, "b", 2)
      .MemberGet(2, 40, 50, 2, true, "b", 2)
      .MemberGet(3, 60, 70, 2, true, "a", 1);
  ExpectViolation(h, {3});
}

TEST(CheckerTest, MemberGoingBackAcrossADeleteIsRejected) {
  // Member 2 showed "a", then the key deleted (at an index of at most 10),
  // then "a" again at an index of at least 10.
  H h;
  h.Put(1, 0, 10, "a", 1)
      .MemberGet(2, 12, 15, 2, true, "a", 1, 1)
      .Delete(1, 20, 30, true)
      .MemberGet(2, 40, 50, 2, true, "", 0, 10)
      .MemberGet(3, 60, 70, 2, true, "a", 1, 10);
  ExpectViolation(h, {4});
}

TEST(CheckerTest, MemberGoingBackAcrossKeysIsRejected) {
  // Member 2 had applied index 7 when it showed y; x was overwritten at 5,
  // so member 2 cannot show x's older value afterwards.
  H h;
  h.Put(1, 0, 10, "a", 1)
      .Key("y")
      .Put(1, 0, 10, "c", 3)
      .Key("x")
      .Put(1, 20, 30, "b", 5)
      .Key("y")
      .MemberGet(2, 40, 50, 2, true, "c", 3, 7)
      .Key("x")
      .MemberGet(3, 60, 70, 2, true, "a", 1, 7);
  ExpectViolation(h, {4});
}

TEST(CheckerTest, MemberAppliedIndexGoingBackIsRejected) {
  H h;
  h.Put(1, 0, 10, "a", 1)
      .MemberGet(2, 20, 30, 2, true, "a", 1, 9)
      .MemberGet(3, 40, 50, 2, true, "a", 1, 8);
  ExpectViolation(h, {1, 2});
}

TEST(CheckerTest, VersionAboveTheAppliedIndexIsRejected) {
  H h;
  h.Put(1, 0, 10, "a", 5).MemberGet(2, 20, 30, 2, false, "a", 5, 4);
  ExpectViolation(h, {1});
}

TEST(CheckerTest, LinearizableMemberReadThatIsStaleIsRejected) {
  H h;
  h.Put(1, 0, 10, "a", 1).Put(1, 20, 30, "b", 2).MemberGet(2, 40, 50, 3, false, "a", 1, 9);
  ExpectViolation(h, {2});
}

TEST(CheckerTest, ScanMissingAnAcknowledgedKeyIsRejected) {
  H h;
  h.Key("k0").Put(1, 0, 10, "a", 1).Key("k1").Put(1, 0, 10, "b", 2).Scan(
      2, 20, 30, "k", {{"k1", "b", 2}});
  ExpectViolation(h, {2}, "k0");
}

TEST(CheckerTest, TornSerializableScanIsRejected) {
  // k1 was overwritten at 4, k0 at 5: a snapshot showing k0@5 has k1@4.
  H h;
  h.Key("k0")
      .Put(1, 0, 10, "a", 1)
      .Key("k1")
      .Put(1, 0, 10, "b", 2)
      .Put(1, 20, 30, "d", 4)
      .Key("k0")
      .Put(1, 40, 50, "c", 5)
      .Scan(2, 60, 70, "k", {{"k0", "c", 5}, {"k1", "b", 2}}, 3, true);
  ExpectViolation(h, {4}, "k1");
}

TEST(CheckerTest, ScanAnsweringOutOfOrderIsRejected) {
  H h;
  h.Key("k0").Put(1, 0, 10, "a", 1).Key("k1").Put(1, 0, 10, "b", 2).Scan(
      2, 20, 30, "k", {{"k1", "b", 2}, {"k0", "a", 1}});
  CheckResult r = h.Check();
  EXPECT_EQ(r.verdict, Verdict::kViolation) << r.Report();
  EXPECT_EQ(ReferenceLinearizable(h.ops()), std::optional<bool>(false));
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

TEST(CheckerTest, SerializableReadsMayBeStale) {
  // Member 3 trails: it still shows "a" after "b" completed, and the key
  // absent before "a"; member 2 is current.
  H h;
  h.MemberGet(3, 0, 5, 3, true, "", 0, 0)
      .Put(1, 10, 20, "a", 4)
      .Put(1, 30, 40, "b", 6)
      .MemberGet(2, 50, 60, 2, true, "b", 6, 6)
      .MemberGet(3, 50, 60, 3, true, "a", 4, 5)
      .MemberGet(3, 70, 80, 3, true, "a", 4, 5)
      .MemberGet(3, 90, 95, 3, true, "b", 6, 9);
  ExpectLinearizable(h);
}

TEST(CheckerTest, SerializableReadOfAnUnknownWriteIsAccepted) {
  // The unknown write took effect (a member applied it) before the read.
  H h;
  h.Put(1, 0, 10, "a", 1).PutUnknown(2, 20, "u").MemberGet(3, 30, 40, 2, true, "u", 4, 4);
  ExpectLinearizable(h);
}

TEST(CheckerTest, ScansSeeOneSnapshot) {
  // The first scan overlaps the write of k1, so it may miss it.
  H h;
  h.Key("k0")
      .Put(1, 0, 10, "a", 1)
      .Key("k1")
      .Put(2, 15, 40, "b", 3)
      .Scan(3, 20, 30, "k", {{"k0", "a", 1}}, 2, false, 2)
      .Scan(3, 50, 60, "k", {{"k0", "a", 1}, {"k1", "b", 3}}, 1, false, 3)
      .Scan(4, 50, 60, "k", {{"k0", "a", 1}}, 3, true, 1)
      .Scan(4, 70, 80, "k", {{"k0", "a", 1}}, 0, false, 0, /*more=*/true);
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
    o.members = seed % 3 == 0 ? 3 : 0;  // serializable reads on lagging members
    o.scans = seed % 5 == 0 ? 0.05 : 0;
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
    int members = 0;  // with serializable reads on lagging members
    double scans = 0;
  };
  for (const Case& c : {Case{10000, 10, 5, 0.01}, Case{5000, 8, 1, 0.01},
                        Case{3000, 20, 2, 0.03}, Case{5000, 10, 4, 0.03, 3, 0.05}}) {
    GenOptions o;
    o.seed = 42;
    o.ops = c.ops;
    o.clients = c.clients;
    o.keys = c.keys;
    o.unknown = c.unknown;
    o.members = c.members;
    o.scans = c.scans;
    std::vector<Op> h = GenerateLinearizable(o);
    const auto start = std::chrono::steady_clock::now();
    CheckResult r = CheckHistory(h);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(r.verdict, Verdict::kLinearizable) << r.Report();
    EXPECT_LT(secs, 10.0) << r.Summary();
    std::cerr << c.ops << " ops, " << c.clients << " clients, " << c.keys << " keys, "
              << c.members << " members, scans " << c.scans << ": " << r.Summary() << "\n";
  }
}

// --- cross-check against the brute-force reference -------------------------

// Random small histories: writes have unique values and distinct versions;
// answers are drawn from what was written, so versions and values stay
// consistent, and most histories are not linearizable. Some reads go to one
// of two members (serializable or not, with an applied index near the
// versions), and with two keys some operations are scans of both.
std::vector<Op> RandomSmallHistory(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  const int n = 3 + pick(6);
  const bool two_keys = pick(3) == 0;
  std::vector<Op> ops(n);
  std::vector<uint64_t> versions;
  for (int i = 0; i < n; ++i) versions.push_back(1 + i * 3 + pick(3));
  std::shuffle(versions.begin(), versions.end(), rng);
  for (int i = 0; i < n; ++i) {
    Op& op = ops[i];
    op.id = i;
    op.client = i;
    op.key = two_keys ? absl::StrCat("k", pick(2)) : "k0";
    op.type = static_cast<OpType>(pick(two_keys ? 5 : 4));
    if (op.type == OpType::kScan) op.key = "k";
    op.value = absl::StrCat("v", i);
    op.invoke_ns = pick(60);
    op.complete_ns = op.invoke_ns + 1 + pick(30);
    const int r = pick(20);
    op.outcome = r < 14 ? Outcome::kOk : r < 19 ? Outcome::kUnknown : Outcome::kFailed;
  }
  auto random_write = [&](const std::string& key) -> const Op* {
    for (int tries = 0; tries < 10; ++tries) {
      const Op& w = ops[pick(n)];
      if ((w.type == OpType::kPut || w.type == OpType::kCas) && (key.empty() || w.key == key)) {
        return &w;
      }
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
          const Op* w = random_write("");
          op.expected_version = w != nullptr && pick(4) != 0 ? versions[w->id] : 0;
        } else {
          const Op* w = random_write("");
          op.expected_value = w != nullptr ? w->value : "nothing";
        }
        op.succeeded = pick(2) == 0;
        op.found = !op.succeeded && pick(3) != 0;
        break;
      case OpType::kScan:
        for (const char* key : {"k0", "k1"}) {
          const Op* w = pick(3) != 0 ? random_write(key) : nullptr;
          if (w != nullptr) op.kvs.push_back(ScanKv{key, w->value, versions[w->id]});
        }
        break;
    }
    if (op.found && op.type != OpType::kDelete) {
      const Op* w = random_write(two_keys && pick(4) != 0 ? op.key : "");
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
    if ((op.type == OpType::kGet || op.type == OpType::kScan) && pick(2) == 0) {
      op.member = 1 + pick(2);
      op.serializable = pick(3) != 0;
      if (pick(3) != 0) op.applied = 1 + pick(3 * n + 3);
    }
  }
  // Answers of operations that did not end ok are not known.
  for (Op& op : ops) {
    if (op.outcome == Outcome::kOk) continue;
    op.found = op.succeeded = false;
    op.out_value.clear();
    op.version = 0;
    op.kvs.clear();
    op.member = op.applied = 0;
  }
  return ops;
}

// Fails the test, with the history, if the checker and the reference differ;
// returns the verdict (true: linearizable). `what` names the history.
bool CheckBoth(const std::vector<Op>& h, const std::string& what) {
  const std::optional<bool> want = ReferenceLinearizable(h);
  EXPECT_TRUE(want.has_value()) << what << ": too big for the reference";
  const CheckResult got = CheckHistory(h);
  EXPECT_NE(got.verdict, Verdict::kInconclusive) << what << ": " << got.Report();
  if (want.has_value() && got.ok() != *want) {
    ADD_FAILURE() << what << ": reference says " << (*want ? "" : "NOT ")
                  << "linearizable, checker: " << got.Report() << "\nhistory:" << Dump(h);
  }
  return got.ok();
}

TEST(CheckerTest, AgreesWithTheReferenceOnSmallRandomHistories) {
  int linearizable = 0, not_linearizable = 0;
  for (uint64_t seed = 1; seed <= 20000; ++seed) {
    const bool ok = CheckBoth(RandomSmallHistory(seed), absl::StrCat("seed ", seed));
    if (HasFailure()) return;
    (ok ? linearizable : not_linearizable) += 1;
  }
  // Both kinds are well represented.
  EXPECT_GT(linearizable, 1500);
  EXPECT_GT(not_linearizable, 1500);
  std::cerr << linearizable << " linearizable, " << not_linearizable << " not\n";
}

// Regressions injected into small generated (linearizable) histories.
enum Injection {
  kWriteBelowAnEarlierWrite,   // acknowledged with a version below an earlier write's
  kUnknownWriteAtAnOldVersion, // an unknown write's value read at a lower version
  kStaleRead,                  // a linearizable read answers an overwritten write
  kMemberGoesBack,             // a member read answers an older write's value
  kTornScan,                   // one key of a scan shows an older write, or nothing
  kInjections
};
const char* const kInjectionNames[] = {"write below an earlier write",
                                       "unknown write read at an old version", "stale read",
                                       "member goes back", "torn scan"};

bool IsWrite(const Op& op) {
  return op.outcome == Outcome::kOk &&
         (op.type == OpType::kPut || (op.type == OpType::kCas && op.succeeded));
}

// Every answer that reports `key`'s value `value` at `version` now reports
// `new_version`.
void Reversion(std::vector<Op>* h, const std::string& key, const std::string& value,
               uint64_t version, uint64_t new_version) {
  for (Op& op : *h) {
    if (op.outcome != Outcome::kOk) continue;
    if (op.type == OpType::kScan) {
      for (ScanKv& kv : op.kvs) {
        if (kv.key == key && kv.value == value && kv.version == version) kv.version = new_version;
      }
    } else if (op.key == key && op.version == version) {
      const bool answer = op.type == OpType::kGet || (op.type == OpType::kCas && !op.succeeded);
      const bool read_it = answer && op.found && op.out_value == value;
      const bool wrote_it = IsWrite(op) && op.value == value;
      if (read_it || wrote_it) op.version = new_version;
    }
  }
}

// Injects `kind` into `h`; false if `h` has no place for it.
bool Inject(Injection kind, std::mt19937_64* rng, std::vector<Op>* h) {
  auto pick = [&](size_t n) { return static_cast<size_t>((*rng)() % n); };
  std::vector<Op>& ops = *h;
  std::vector<std::pair<size_t, size_t>> pairs;
  switch (kind) {
    case kWriteBelowAnEarlierWrite:
      for (size_t a = 0; a < ops.size(); ++a) {
        for (size_t b = 0; b < ops.size(); ++b) {
          if (IsWrite(ops[a]) && IsWrite(ops[b]) && ops[a].key == ops[b].key &&
              ops[a].complete_ns < ops[b].invoke_ns && ops[a].version > 1) {
            pairs.emplace_back(a, b);
          }
        }
      }
      if (pairs.empty()) return false;
      {
        const auto [a, b] = pairs[pick(pairs.size())];
        const uint64_t v = ops[a].version - 1 - pick(std::min<uint64_t>(ops[a].version - 1, 3));
        Reversion(h, ops[b].key, ops[b].value, ops[b].version, v);
      }
      return true;
    case kUnknownWriteAtAnOldVersion: {
      // (unknown write, a read that saw it)
      for (size_t u = 0; u < ops.size(); ++u) {
        if (ops[u].outcome != Outcome::kUnknown ||
            (ops[u].type != OpType::kPut && ops[u].type != OpType::kCas)) {
          continue;
        }
        for (size_t r = 0; r < ops.size(); ++r) {
          if (ops[r].type == OpType::kGet && ops[r].outcome == Outcome::kOk && ops[r].found &&
              ops[r].key == ops[u].key && ops[r].out_value == ops[u].value && ops[r].version > 1) {
            pairs.emplace_back(u, r);
          }
        }
      }
      if (pairs.empty()) return false;
      const auto [u, r] = pairs[pick(pairs.size())];
      Reversion(h, ops[u].key, ops[u].value, ops[r].version, 1 + pick(ops[r].version - 1));
      return true;
    }
    case kStaleRead:
    case kMemberGoesBack: {
      // (read, a write completed before it was invoked)
      for (size_t r = 0; r < ops.size(); ++r) {
        const Op& g = ops[r];
        if (g.type != OpType::kGet || g.outcome != Outcome::kOk) continue;
        const bool serializable_on_member = g.serializable && g.member != 0;
        if (serializable_on_member != (kind == kMemberGoesBack)) continue;
        for (size_t w = 0; w < ops.size(); ++w) {
          if (IsWrite(ops[w]) && ops[w].key == g.key && ops[w].complete_ns < g.invoke_ns &&
              !(g.found && g.out_value == ops[w].value)) {
            pairs.emplace_back(r, w);
          }
        }
      }
      if (pairs.empty()) return false;
      const auto [r, w] = pairs[pick(pairs.size())];
      ops[r].found = true;
      ops[r].out_value = ops[w].value;
      ops[r].version = ops[w].version;
      return true;
    }
    case kTornScan: {
      // (scan, index of one of its keys)
      for (size_t s = 0; s < ops.size(); ++s) {
        if (ops[s].type != OpType::kScan || ops[s].outcome != Outcome::kOk) continue;
        for (size_t k = 0; k < ops[s].kvs.size(); ++k) pairs.emplace_back(s, k);
      }
      if (pairs.empty()) return false;
      const auto [s, k] = pairs[pick(pairs.size())];
      ScanKv& kv = ops[s].kvs[k];
      std::vector<size_t> older;
      for (size_t w = 0; w < ops.size(); ++w) {
        if (IsWrite(ops[w]) && ops[w].key == kv.key && ops[w].version < kv.version) {
          older.push_back(w);
        }
      }
      if (older.empty()) {
        ops[s].kvs.erase(ops[s].kvs.begin() + k);
      } else {
        const Op& w = ops[older[pick(older.size())]];
        kv.value = w.value;
        kv.version = w.version;
      }
      return true;
    }
    case kInjections:
      break;
  }
  return false;
}

TEST(CheckerTest, AgreesWithTheReferenceOnInjectedRegressions) {
  int generated = 0, injected[kInjections] = {}, rejected[kInjections] = {};
  // Of the writes below an earlier write: how many had an unknown write
  // that could sit between the two (the blind spot of issue 26).
  int across_unknown = 0, across_unknown_rejected = 0;
  std::mt19937_64 rng(26);
  for (uint64_t seed = 1; seed <= 2500; ++seed) {
    GenOptions o;
    o.seed = seed;
    o.clients = 3;
    o.keys = 1 + seed % 2;
    o.ops = 8 + seed % 5;
    o.unknown = 0.3;
    o.members = 2;
    o.member_reads = 0.6;
    o.scans = o.keys == 2 ? 0.15 : 0;
    const std::vector<Op> h = GenerateLinearizable(o);
    if (!ReferenceLinearizable(h).has_value()) continue;
    ++generated;
    ASSERT_TRUE(CheckBoth(h, absl::StrCat("seed ", seed, " as generated")));
    for (int kind = 0; kind < kInjections; ++kind) {
      std::vector<Op> bad = h;
      if (!Inject(static_cast<Injection>(kind), &rng, &bad)) continue;
      ++injected[kind];
      const std::string what = absl::StrCat("seed ", seed, " with ", kInjectionNames[kind]);
      const bool ok = CheckBoth(bad, what);
      if (HasFailure()) return;
      rejected[kind] += ok ? 0 : 1;
      if (kind == kWriteBelowAnEarlierWrite) {
        // Always a violation: the later write's version is below the earlier's.
        EXPECT_FALSE(ok) << what << Dump(bad);
        bool unknown = false;
        for (const Op& op : bad) unknown = unknown || op.outcome == Outcome::kUnknown;
        across_unknown += unknown ? 1 : 0;
        across_unknown_rejected += unknown && !ok ? 1 : 0;
      }
    }
  }
  std::cerr << generated << " generated histories, all linearizable; injected:";
  for (int kind = 0; kind < kInjections; ++kind) {
    std::cerr << "\n  " << kInjectionNames[kind] << ": " << injected[kind] << ", "
              << rejected[kind] << " rejected";
    EXPECT_GT(injected[kind], 100) << kInjectionNames[kind];
    EXPECT_GT(rejected[kind], 0) << kInjectionNames[kind];
  }
  std::cerr << "\n  (writes below an earlier write with unknown writes in the history: "
            << across_unknown << ", " << across_unknown_rejected << " rejected)\n";
}

TEST(HistoryTest, FormatAndParseRoundTrip) {
  GenOptions o;
  o.ops = 300;
  o.unknown = 0.1;
  o.members = 3;
  o.scans = 0.05;
  std::vector<Op> h = GenerateLinearizable(o);
  h[3].key = std::string("we\tird\n\"key\"\0x", 14);
  h[3].error = "deadline\texceeded";
  Op scan;
  scan.id = static_cast<int64_t>(h.size());
  scan.type = OpType::kScan;
  scan.key = "p\t";
  scan.outcome = Outcome::kOk;
  scan.kvs = {{"p\t1", "a\nb\\", 7}, {std::string("p\t\0", 3), "", 9}};
  scan.more = true;
  scan.member = 2;
  scan.serializable = true;
  scan.applied = 12;
  h.push_back(scan);
  int scans = 0, member_reads = 0;
  for (const Op& op : h) {
    scans += op.type == OpType::kScan ? 1 : 0;
    member_reads += op.member != 0 && op.applied != 0 ? 1 : 0;
  }
  EXPECT_GT(scans, 5);
  EXPECT_GT(member_reads, 20);
  auto parsed = ParseHistory(FormatHistory(h));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), h.size());
  for (size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(FormatOp((*parsed)[i]), FormatOp(h[i]));
  }
  EXPECT_EQ((*parsed)[3].key, h[3].key);
  const Op& back = parsed->back();
  ASSERT_EQ(back.kvs.size(), 2u);
  EXPECT_EQ(back.kvs[1].key, scan.kvs[1].key);
  EXPECT_EQ(back.kvs[0].value, scan.kvs[0].value);
  EXPECT_EQ(back.kvs[1].version, 9u);
  EXPECT_TRUE(back.more && back.serializable);
  EXPECT_EQ(back.member, 2u);
  EXPECT_EQ(back.applied, 12u);
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
