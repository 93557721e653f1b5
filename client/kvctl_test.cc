#include "client/kvctl_lib.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/fake_cluster.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace raftkv::kvctl {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::testing::Not;
using client::testing::FakeCluster;
using client::testing::UnusedAddress;

struct Result {
  int code;
  std::string out;
  std::string err;
};

Result RunRaw(const std::vector<std::string>& args,
              const std::string& input = "", bool tty = false) {
  std::istringstream in(input);
  std::ostringstream out, err;
  int code = RunKvctl(args, in, out, err, tty);
  return Result{code, out.str(), err.str()};
}

// Exactly one line on stderr, starting "kvctl: ".
void ExpectOneErrorLine(const Result& r) {
  EXPECT_THAT(r.err, StartsWith("kvctl: "));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(absl::EndsWith(r.err, "\n")) << r.err;
}

class KvctlTest : public ::testing::Test {
 protected:
  KvctlTest() : cluster_(3) {}

  // Runs kvctl against the fake cluster.
  Result Run(std::vector<std::string> args, const std::string& input = "",
             bool tty = false) {
    args.insert(args.begin(),
                {"--endpoints=" + absl::StrJoin(cluster_.addresses(), ","),
                 "--timeout=3s", "--attempt_timeout=1s"});
    return RunRaw(args, input, tty);
  }

  FakeCluster cluster_;
};

TEST(KvctlUsageTest, Help) {
  for (const char* flag : {"--help", "-help", "-h"}) {
    Result r = RunRaw({flag});
    EXPECT_EQ(r.code, kExitOk);
    EXPECT_THAT(r.out, HasSubstr("Exit codes:"));
    EXPECT_THAT(r.out, HasSubstr("-endpoints"));
    EXPECT_THAT(r.out, HasSubstr("-expect_version"));
    EXPECT_EQ(r.err, "");
  }
  EXPECT_EQ(RunRaw({"help"}).code, kExitOk);
}

TEST(KvctlUsageTest, UsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frob"},
      {"--bogus", "get", "k"},
      {"get", "k", "--nobogus"},
      {"get"},
      {"get", "a", "b"},
      {"put"},
      {"put", "k", "v", "extra"},
      {"delete"},
      {"scan", "a", "b"},
      {"scan", "--limit=x"},
      {"scan", "--limit=-1"},
      {"scan", "--limit"},  // needs a value
      {"cas", "k", "v"},
      {"cas", "k", "old", "new", "--expect_absent"},
      {"cas", "k", "new", "--expect_absent", "--expect_version=3"},
      {"cas", "k", "new", "--expect_version=-2"},
      {"status", "extra"},
      {"--endpoints=", "get", "k"},
      {"--endpoints=nohostport", "get", "k"},
      {"--timeout=soon", "get", "k"},
      {"get", "-5"},  // looks like a flag: needs "--"
      {"snapshot"},
      {"snapshot", "save"},
      {"snapshot", "frob", "f"},
      {"snapshot", "status", "f", "-w", "yaml"},
      {"snapshot", "restore", "f", "--id=1", "--cluster=1=h:1"},
      {"snapshot", "restore", "f", "--data_dir=d", "--cluster=1=h:1"},
      {"snapshot", "restore", "f", "--data_dir=d", "--id=2", "--cluster=1=h:1"},
      {"snapshot", "restore", "f", "--data_dir=d", "--id=1", "--cluster=1=nohostport"},
  };
  for (const auto& args : cases) {
    Result r = RunRaw(args);
    EXPECT_EQ(r.code, kExitUsage) << absl::StrJoin(args, " ");
    ExpectOneErrorLine(r);
    EXPECT_EQ(r.out, "");
  }
  EXPECT_THAT(RunRaw({"frob"}).err, HasSubstr("unknown command \"frob\""));
  EXPECT_THAT(RunRaw({"--bogus"}).err, HasSubstr("unknown flag --bogus"));
}

// A bad flag value: one line naming the flag, exit 2, before any call.
TEST(KvctlUsageTest, FlagErrorsNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--timeout=-5s", "get", "k"}, "kvctl: --timeout: must be positive, got -5s\n"},
      {{"--timeout=0", "get", "k"}, "kvctl: --timeout: must be positive, got 0\n"},
      {{"--timeout=soon", "get", "k"},
       "kvctl: --timeout: not a duration: \"soon\" (e.g. 500ms, 15s, 1m)\n"},
      {{"--timeout=inf", "get", "k"},
       "kvctl: --timeout: not a duration: \"inf\" (e.g. 500ms, 15s, 1m)\n"},
      {{"get", "k", "--attempt_timeout=-1ms"},
       "kvctl: --attempt_timeout: must be positive, got -1ms\n"},
      {{"--endpoints=", "get", "k"}, "kvctl: --endpoints: no endpoints given\n"},
      {{"--endpoints=nohostport", "get", "k"},
       "kvctl: --endpoints: endpoint \"nohostport\" is not host:port\n"},
      {{"scan", "--limit=-1"}, "kvctl: --limit: must be 0 or more, got -1\n"},
      {{"scan", "--limit=x"}, "kvctl: --limit: not an int32: \"x\"\n"},
      {{"scan", "--limit"}, "kvctl: --limit: needs a value\n"},
      {{"get", "k", "--serializable=maybe"}, "kvctl: --serializable: not a bool: \"maybe\"\n"},
      {{"cas", "k", "new", "--expect_version=-2"},
       "kvctl: --expect_version: must be 0 or more, got -2\n"},
      {{"snapshot", "status", "f", "-w", "yaml"},
       "kvctl: --write_out: must be simple or json, got \"yaml\"\n"},
      {{"snapshot", "restore", "f", "--id=1", "--cluster=1=h:1"},
       "kvctl: --data_dir: is required\n"},
  };
  for (const auto& [args, want] : cases) {
    Result r = RunRaw(args);
    EXPECT_EQ(r.code, kExitUsage) << absl::StrJoin(args, " ");
    EXPECT_EQ(r.err, want) << absl::StrJoin(args, " ");
    EXPECT_EQ(r.out, "");
  }
}

// A value over the cluster's limit fails at once, nothing sent, the limit
// and its flag named. (8 MiB: over the fake's real 4 MiB receive limit too,
// which once meant retries until --timeout.)
TEST_F(KvctlTest, PutOverTheLimitFailsAtOnce) {
  cluster_.SetLimits(1 << 20, 64 << 20);
  const std::string value(8 << 20, 'v');
  const absl::Time start = absl::Now();
  Result r = Run({"put", "big", "-"}, value);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(r.code, kExitError);
  EXPECT_EQ(r.err,
            "kvctl: put \"big\": value is 8388608 bytes; the cluster's limit is 1048576 "
            "(server --max_value_bytes)\n");
  EXPECT_TRUE(cluster_.calls("Put").empty());
}

// --timeout bounds the whole command: here a scan of three pages, each
// answered after 400 ms, with 1 s in all.
TEST_F(KvctlTest, TimeoutBoundsTheWholeCommand) {
  for (int i = 0; i < 2500; ++i) cluster_.Preload(absl::StrCat("k", 10000 + i), "v");
  for (int node = 0; node < cluster_.size(); ++node) {
    cluster_.SetDelay(node, absl::Milliseconds(400));
  }
  const absl::Time start = absl::Now();
  Result r = Run({"scan", "k", "--timeout=1s", "--attempt_timeout=5s"});
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(r.code, kExitError) << took;
  ExpectOneErrorLine(r);
  EXPECT_THAT(r.err, HasSubstr("scan \"k\""));
  EXPECT_LT(took, absl::Milliseconds(1500));
}

TEST_F(KvctlTest, PutGetDelete) {
  Result r = Run({"put", "k", "v"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "OK 1\n");
  EXPECT_EQ(r.err, "");

  r = Run({"get", "k"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "v");  // not a terminal: the raw value
  r = Run({"get", "k"}, "", /*tty=*/true);
  EXPECT_EQ(r.out, "v\n");

  r = Run({"delete", "k"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "OK 1\n");
  r = Run({"delete", "k"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "OK 0\n");
}

TEST_F(KvctlTest, GetMissingKeyExitsThree) {
  Result r = Run({"get", "nope"});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "kvctl: key not found: \"nope\"\n");
}

TEST_F(KvctlTest, PutReadsBinaryValueFromStdin) {
  const std::string value("a\0b\n\xff\tc\r\n", 10);
  Result r = Run({"put", "bin"}, value);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(Run({"get", "bin"}).out, value);

  r = Run({"put", "dash", "-"}, value);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(Run({"get", "dash"}).out, value);

  r = Run({"put", "empty"}, "");
  EXPECT_EQ(r.code, kExitOk) << r.err;
  r = Run({"get", "empty"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "");
}

TEST_F(KvctlTest, FlagsAnywhereAndDoubleDash) {
  Result r = Run({"put", "--", "k", "-1"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(Run({"get", "k"}).out, "-1");
  // A flag after the command, with its value as the next argument.
  r = Run({"get", "k", "--timeout", "2s"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "-1");
  r = Run({"get", "--noserializable", "k"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
}

TEST_F(KvctlTest, SerializableGetIsServedByTheFirstNode) {
  cluster_.SetLeader(2);
  ASSERT_EQ(Run({"put", "k", "v"}).code, kExitOk);
  cluster_.ClearCalls();
  Result r = Run({"get", "--serializable", "k"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "v");
  ASSERT_EQ(cluster_.calls("Get").size(), 1u);
  EXPECT_EQ(cluster_.calls("Get")[0].node, 0);

  // Without it, the read follows the hint to the leader.
  cluster_.ClearCalls();
  EXPECT_EQ(Run({"get", "k"}).out, "v");
  ASSERT_EQ(cluster_.calls("Get").size(), 2u);
  EXPECT_EQ(cluster_.calls("Get")[1].node, 2);
}

TEST_F(KvctlTest, Scan) {
  for (const char* k : {"a1", "a2", "a3", "b"}) {
    ASSERT_EQ(Run({"put", k, std::string("v") + k}).code, kExitOk);
  }
  Result r = Run({"scan", "a"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "a1\tva1\na2\tva2\na3\tva3\n");

  r = Run({"scan", "a", "--verbose"});
  EXPECT_EQ(r.out, "a1\t1\tva1\na2\t2\tva2\na3\t3\tva3\n");

  r = Run({"scan", "a", "--limit=2"});
  EXPECT_EQ(r.out, "a1\tva1\na2\tva2\n");
  EXPECT_EQ(r.err, "");

  r = Run({"scan", "a", "--start_after=a1", "--limit=1"});
  EXPECT_EQ(r.out, "a2\tva2\n");

  r = Run({"scan"});
  EXPECT_EQ(r.out, "a1\tva1\na2\tva2\na3\tva3\nb\tvb\n");

  r = Run({"scan", "zzz"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "");
}

TEST_F(KvctlTest, ScanPagesPastTheServerLimit) {
  constexpr int kKeys = 2100;
  for (int i = 0; i < kKeys; ++i) {
    char key[16];
    snprintf(key, sizeof(key), "k%05d", i);
    cluster_.Preload(key, "v");
  }
  Result r = Run({"scan", "k"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n');
  ASSERT_EQ(lines.size(), kKeys + 1u);  // the last is empty
  EXPECT_EQ(lines[0], "k00000\tv");
  EXPECT_EQ(lines[kKeys - 1], "k02099\tv");

  r = Run({"scan", "k", "--limit=1500"});
  lines = absl::StrSplit(r.out, '\n');
  ASSERT_EQ(lines.size(), 1501u);
  EXPECT_EQ(lines[1499], "k01499\tv");
  EXPECT_EQ(r.err, "");
  r = Run({"scan", "k", "--limit=1500", "--verbose"});
  EXPECT_THAT(r.err, HasSubstr("stopped at --limit=1500"));
}

TEST_F(KvctlTest, CompareAndSwap) {
  ASSERT_EQ(Run({"put", "k", "old"}).code, kExitOk);  // version 1

  Result r = Run({"cas", "k", "wrong", "new"});
  EXPECT_EQ(r.code, kExitCompareFailed);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "kvctl: compare failed: \"k\" has version 1, value \"old\"\n");

  r = Run({"cas", "k", "old", "new"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  ASSERT_THAT(r.out, StartsWith("OK "));
  const std::string version = r.out.substr(3, r.out.size() - 4);
  EXPECT_EQ(Run({"get", "k"}).out, "new");

  r = Run({"cas", "k", "newer", "--expect_version=1"});
  EXPECT_EQ(r.code, kExitCompareFailed);
  EXPECT_EQ(r.err, "kvctl: compare failed: \"k\" has version " + version +
                       ", value \"new\"\n");
  r = Run({"cas", "k", "newer", "--expect_version=" + version});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(Run({"get", "k"}).out, "newer");

  r = Run({"cas", "k", "x", "--expect_absent"});
  EXPECT_EQ(r.code, kExitCompareFailed);
  r = Run({"cas", "fresh", "x", "--expect_absent"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  r = Run({"cas", "fresh2", "y", "--expect_version=0"});
  EXPECT_EQ(r.code, kExitOk) << r.err;

  r = Run({"cas", "missing", "a", "b"});
  EXPECT_EQ(r.code, kExitCompareFailed);
  EXPECT_EQ(r.err, "kvctl: compare failed: \"missing\" does not exist\n");

  r = Run({"cas", "fresh", "x", "-"}, std::string("bin\0", 4));
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(Run({"get", "fresh"}).out, std::string("bin\0", 4));
}

TEST_F(KvctlTest, Status) {
  cluster_.SetLeader(1);
  cluster_.Stop(2);
  Result r = Run({"status"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_THAT(lines[0], StartsWith("ID  ADDRESS"));
  for (const char* col : {"ROLE", "TERM", "COMMIT", "APPLIED", "LEADER",
                          "LAST", "SNAPSHOT", "REACHABLE"}) {
    EXPECT_THAT(lines[0], HasSubstr(col));
  }
  EXPECT_THAT(lines[1], StartsWith("1 "));
  EXPECT_THAT(lines[1], HasSubstr(cluster_.address(0)));
  EXPECT_THAT(lines[1], HasSubstr("follower"));
  EXPECT_TRUE(absl::EndsWith(lines[1], "yes"));
  EXPECT_THAT(lines[2], HasSubstr("leader"));
  EXPECT_THAT(lines[3], HasSubstr(cluster_.address(2)));
  EXPECT_THAT(lines[3], HasSubstr("no (UNAVAILABLE)"));
  EXPECT_EQ(r.err, "");

  r = Run({"status", "--verbose"});
  EXPECT_THAT(r.err, HasSubstr(cluster_.address(2)));
}

// Alarms (the hash check's no-majority CORRUPT among them), dropped peer
// messages and refused peer traffic get a line each, after the table.
TEST_F(KvctlTest, StatusShowsAlarmsAndRejectedPeerMessages) {
  cluster_.SetLeader(0);
  const std::string no_majority =
      "CORRUPT: no majority of the voters agrees on the state at index 42 (node:hash 1:7 2:8 "
      "3:9): which data are right cannot be told, so the cluster takes no writes until an "
      "operator acts (docs/INTEGRITY.md)";
  for (int node = 0; node < 3; ++node) {
    adminpb::StatusResponse extra;
    extra.add_alarms(no_majority);
    if (node == 1) extra.set_rejected_peer_messages(17);
    if (node == 2) {
      (*extra.mutable_peer_refusals())["other_cluster"] = 4;
      (*extra.mutable_peer_refusals())["non_member"] = 2;
      (*extra.mutable_peer_refusals())["wrong_sender"] = 0;
    }
    cluster_.SetStatusExtra(node, extra);
  }
  Result r = Run({"status"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u + 3 + 2) << r.out;
  for (int id = 1; id <= 3; ++id) {
    EXPECT_THAT(lines, Contains(absl::StrCat("node ", id, " alarm ", no_majority))) << r.out;
  }
  EXPECT_THAT(lines, Contains("node 2 rejected_peer_messages 17 (malformed or contradicting "
                              "its state; dropped, see its log)"))
      << r.out;
  EXPECT_THAT(lines, Contains("node 3 peer_refusals non_member=2 other_cluster=4 (peer traffic "
                              "refused: another cluster, a wrong id or incarnation, a removed "
                              "member; see its log)"))
      << r.out;
  EXPECT_THAT(r.out, Not(HasSubstr("node 1 rejected"))) << "a zero count is not shown";
  EXPECT_THAT(r.out, Not(HasSubstr("node 1 peer_refusals")));
}

// A write every voter refuses (all CORRUPT) is not retried: one line, exit 1.
TEST_F(KvctlTest, AWriteRefusedAsCorruptIsNotRetried) {
  cluster_.SetLeader(0);
  cluster_.FailNext(0, grpc::Status(grpc::StatusCode::DATA_LOSS,
                                    "writes refused, the write was not applied: node 1 (the "
                                    "leader) has alarm CORRUPT, and so has every other voter"));
  Result r = Run({"put", "k", "v"});
  EXPECT_EQ(r.code, kExitError);
  ExpectOneErrorLine(r);
  EXPECT_THAT(r.err, HasSubstr("kvctl: put \"k\": writes refused, the write was not applied"));
  EXPECT_EQ(cluster_.calls("Put").size(), 1u) << "retried";
}

TEST(KvctlErrorTest, UnreachableClusterExitsOneWithOneLine) {
  Result r = RunRaw({"--endpoints=" + UnusedAddress() + "," + UnusedAddress(),
                     "--timeout=200ms", "put", "k", "v"});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_EQ(r.out, "");
  ExpectOneErrorLine(r);
  EXPECT_THAT(r.err, HasSubstr("kvctl: put \"k\": no leader reachable among"));

  r = RunRaw({"--endpoints=" + UnusedAddress(), "--timeout=200ms", "status"});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_THAT(r.err, HasSubstr("no endpoint answered"));
}

TEST_F(KvctlTest, ServerRejectionExitsOne) {
  Result r = Run({"put", "", "v"});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_EQ(r.err, "kvctl: put \"\": empty key\n");
  EXPECT_EQ(cluster_.calls("Put").size(), 1u);  // not retried

  cluster_.FailNext(0, grpc::Status(grpc::StatusCode::INTERNAL,
                                    "disk on fire\nsecond line"));
  r = Run({"get", "k"});
  EXPECT_EQ(r.code, kExitError);
  ExpectOneErrorLine(r);
  EXPECT_THAT(r.err, HasSubstr("disk on fire second line"));
}

TEST_F(KvctlTest, FlagsDoNotLeakBetweenRuns) {
  ASSERT_EQ(Run({"put", "a", "1"}).code, kExitOk);
  ASSERT_EQ(Run({"put", "b", "2"}).code, kExitOk);
  EXPECT_EQ(Run({"scan", "--limit=1", "--verbose"}).out, "a\t1\t1\n");
  EXPECT_EQ(Run({"scan"}).out, "a\t1\nb\t2\n");
  // --expect_absent from an earlier run must not turn this into "cas KEY NEW".
  ASSERT_EQ(Run({"cas", "c", "x", "--expect_absent"}).code, kExitOk);
  EXPECT_EQ(Run({"cas", "c", "x", "y"}).code, kExitOk);
}

TEST_F(KvctlTest, MemberCommands) {
  const std::vector<std::string> addrs = cluster_.addresses();
  Result r = Run({"member", "list"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, absl::StrCat("1*\t", addrs[0], "\tvoter\t-\n", "2\t", addrs[1],
                                "\tvoter\t-\n", "3\t", addrs[2], "\tvoter\t-\n"));

  // Served by the leader, wherever it is.
  cluster_.SetLeader(1);
  r = Run({"member", "add", "4", "127.0.0.1:7004"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "OK voters=[1,2,3] learners=[4]\n");
  r = Run({"member", "add", "4", "127.0.0.1:7004"});
  EXPECT_EQ(r.code, kExitError);
  ExpectOneErrorLine(r);
  EXPECT_THAT(r.err, HasSubstr("already a member"));
  r = Run({"member", "promote", "4"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "OK voters=[1,2,3,4] learners=[]\n");
  r = Run({"member", "remove", "1"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "OK voters=[2,3,4] learners=[]\n");
  r = Run({"member", "list"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("4\t127.0.0.1:7004\tvoter"));
  EXPECT_THAT(r.out, HasSubstr("2*\t"));
  r = Run({"member", "remove", "9"});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_THAT(r.err, HasSubstr("not a member"));
  // The removed node says so in the status table.
  r = Run({"status"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_THAT(lines[1], HasSubstr("removed"));
  EXPECT_THAT(lines[2], Not(HasSubstr("removed")));

  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{"member"},
                                             {"member", "frob"},
                                             {"member", "add", "4"},
                                             {"member", "add", "x", "a:1"},
                                             {"member", "promote"},
                                             {"member", "remove", "0"},
                                             {"transfer-leader", "a"},
                                             {"transfer-leader", "1", "2"}}) {
    EXPECT_EQ(Run(bad).code, kExitUsage) << absl::StrJoin(bad, " ");
  }
}

TEST_F(KvctlTest, TransferLeader) {
  Result r = Run({"transfer-leader", "3"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "OK 3\n");
  r = Run({"transfer-leader"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "OK 1\n");  // the fake picks the next node
  r = Run({"status"});
  EXPECT_THAT(r.out, HasSubstr("leader"));
}

}  // namespace
}  // namespace raftkv::kvctl
