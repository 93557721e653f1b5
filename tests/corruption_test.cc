// A member whose data files are corrupt (bytes flipped in its data SST
// files while it was stopped, as a failing disk would) never serves them:
// every read through it fails with DATA_LOSS (never an answer with keys
// missing), it raises the CORRUPT alarm (Admin.Status, `kvctl status`),
// hands leadership over, and stops if applying an entry meets the damage;
// a client given every member reads everything correctly from the healthy
// ones; and the scrub finds damage no read has met.
#include <sys/wait.h>

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/client.h"
#include "client/kvctl_lib.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/sst_corruption.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

using ::testing::HasSubstr;

// 6 MB: more than a 4 MiB memtable of the data column family, so most keys
// are in SST files when a member stops; few enough files that no compaction
// runs after its restart (one that met the damage would stop the member:
// every later write fails).
constexpr int kKeys = 96;
constexpr size_t kValueBytes = 64 << 10;

std::string KeyOf(int i) { return absl::StrFormat("p/%03d", i); }
std::string ValueOf(int i) {
  std::string v = absl::StrFormat("value %d ", i);
  while (v.size() < kValueBytes) {
    v += absl::StrFormat("%08x", static_cast<uint32_t>(v.size() * 2654435761u + i));
  }
  v.resize(kValueBytes);
  return v;
}

struct Kvctl {
  int code;
  std::string out, err;
};
Kvctl RunKvctl(const std::vector<std::string>& args) {
  std::istringstream in;
  std::ostringstream out, err;
  const int code = kvctl::RunKvctl(args, in, out, err, /*out_is_tty=*/false);
  return {code, out.str(), err.str()};
}

void ExpectDataLoss(const grpc::Status& s, const std::string& what) {
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << what << ": " << s.error_message();
}

class CorruptionTest : public ::testing::Test {
 protected:
  // Writes the keys, stops a follower, damages every data block of its data
  // SST files. The member is left stopped: corrupt_.
  void SetUp() override {
    ASSERT_TRUE(c_.StartAll().ok());
    auto leader = c_.WaitForLeader();
    ASSERT_TRUE(leader.ok()) << leader.status();
    TestClient client(&c_);
    for (int i = 0; i < kKeys; ++i) {
      auto r = client.Put(KeyOf(i), ValueOf(i));
      ASSERT_TRUE(r.ok()) << r.status();
    }
    auto st = c_.WaitForConvergence();
    ASSERT_TRUE(st.ok()) << st.status();
    // The hash check a new leader starts has run on every member: none runs
    // again until the leader changes.
    ASSERT_TRUE(Cluster::WaitFor(
        [&] {
          for (int id = 1; id <= 3; ++id) {
            auto s = c_.Status(id);
            if (!s.ok() || s->state_hashes_size() == 0) return false;
          }
          return true;
        },
        absl::Seconds(30)));
    corrupt_ = *leader % 3 + 1;
    ExitResult stopped = c_.Stop(corrupt_);
    ASSERT_EQ(stopped.exit_code, 0) << stopped.output;
    auto files = storage::testing::SstFilesOf(c_.data_dir(corrupt_), "data");
    ASSERT_TRUE(files.ok()) << files.status();
    ASSERT_FALSE(files->empty()) << "no data SST files in " << c_.data_dir(corrupt_);
    // The middle half of each file's data blocks: its first and last keys
    // stay readable, as the member's start reads them (the session and
    // incarnation and revision records sort after the keys' history).
    for (const std::string& f : *files) {
      auto flipped = storage::testing::CorruptDataBlocks(f, 0.25, 0.75);
      ASSERT_TRUE(flipped.ok()) << flipped.status();
      ASSERT_GT(*flipped, 0u) << f;
    }
  }

  // Starts the damaged member (scrub off unless `flags` say otherwise) and
  // waits until it has applied everything the leader has.
  void StartCorrupt(std::vector<std::string> flags = {"--scrub_interval=0"}) {
    ASSERT_TRUE(c_.Start(corrupt_, flags).ok());
    ASSERT_TRUE(Cluster::WaitFor(
        [&] {
          auto mine = c_.Status(corrupt_);
          if (!mine.ok() || mine->leader_id() == 0) return false;
          auto leader = c_.Status(static_cast<int>(mine->leader_id()));
          return leader.ok() && mine->applied_index() >= leader->commit_index();
        },
        absl::Seconds(20)));
  }

  // Node `id`'s alarms (retrying a call that fails as a channel reconnects
  // after a restart).
  std::vector<std::string> Alarms(int id) {
    absl::StatusOr<adminpb::StatusResponse> st;
    Cluster::WaitFor([&] { return (st = c_.Status(id)).ok(); }, absl::Seconds(10));
    EXPECT_TRUE(st.ok()) << st.status();
    if (!st.ok()) return {};
    return {st->alarms().begin(), st->alarms().end()};
  }

  // No scrub unless a test asks for one: its "no corruption" lines must
  // come from the start the test made. The members' hash check runs only at
  // leader changes: it reads everything (it would find the damage first),
  // and the release of its view lets RocksDB compact the damaged file,
  // which stops the member (hash_check_test and docs/INTEGRITY.md).
  static ClusterOptions Options() {
    ClusterOptions o;
    o.extra_flags = {"--scrub_interval=0", "--corrupt_check_interval=0"};
    return o;
  }
  Cluster c_{Options()};
  int corrupt_ = 0;
};

TEST_F(CorruptionTest, ReadsThroughACorruptMemberFailAndTheClusterStillAnswers) {
  StartCorrupt();

  // The reported case: a prefix scan through the member, page by page. It
  // used to end OK with rows missing. Every page must hold the next keys in
  // order, until one fails.
  {
    int seen = 0;
    grpc::Status s;
    std::string after;
    while (true) {
      grpc::ClientContext ctx;
      kvpb::ScanRequest req;
      req.set_prefix("p/");
      req.set_start_after(after);
      req.set_serializable(true);
      kvpb::ScanResponse resp;
      s = c_.kv(corrupt_)->Scan(&ctx, req, &resp);
      if (!s.ok()) break;
      for (const auto& kv : resp.kvs()) {
        ASSERT_EQ(kv.key(), KeyOf(seen)) << "a key skipped";
        ASSERT_TRUE(kv.value() == ValueOf(seen)) << kv.key();
        ++seen;
      }
      ASSERT_TRUE(resp.more()) << "scan ended OK with " << seen << " of " << kKeys << " keys";
      after = resp.kvs(resp.kvs_size() - 1).key();
    }
    EXPECT_LT(seen, kKeys);
    ExpectDataLoss(s, "scan");
    // Met by this scan, or by the members' hash check a moment earlier (it
    // reads the whole state): refused either way.
    EXPECT_THAT(s.error_message(), HasSubstr(absl::StrCat("node ", corrupt_)));
    EXPECT_THAT(s.error_message(), HasSubstr("data corruption"));
    EXPECT_THAT(s.error_message(), HasSubstr(c_.data_dir(corrupt_)));
    EXPECT_THAT(s.error_message(), HasSubstr("serves reads"));
  }

  // It says so: the CORRUPT alarm, in Admin.Status and `kvctl status`.
  std::vector<std::string> alarms = Alarms(corrupt_);
  ASSERT_EQ(alarms.size(), 1u);
  EXPECT_THAT(alarms[0], HasSubstr("CORRUPT: data corruption"));
  Kvctl status = RunKvctl({absl::StrCat("--endpoints=", absl::StrJoin(c_.addresses(), ",")),
                           "status"});
  EXPECT_EQ(status.code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr(absl::StrCat("node ", corrupt_, " alarm CORRUPT: ")));
  EXPECT_THAT(c_.LogTail(corrupt_), HasSubstr("alarm CORRUPT raised: data corruption"));

  // Every read through it is refused from now on, even of keys whose blocks
  // are intact: unary and Batch, serializable and linearizable.
  for (bool serializable : {true, false}) {
    const std::string kind = serializable ? "serializable" : "linearizable";
    for (int i : {0, kKeys - 1}) {
      grpc::ClientContext ctx;
      kvpb::GetRequest req;
      req.set_key(KeyOf(i));
      req.set_serializable(serializable);
      kvpb::GetResponse resp;
      grpc::Status s = c_.kv(corrupt_)->Get(&ctx, req, &resp);
      ExpectDataLoss(s, kind + " get " + KeyOf(i));
      EXPECT_THAT(s.error_message(),
                  HasSubstr(absl::StrCat("node ", corrupt_, " does not serve reads")));
    }
    {
      grpc::ClientContext ctx;
      kvpb::ScanRequest req;
      req.set_prefix("p/");
      req.set_serializable(serializable);
      kvpb::ScanResponse resp;
      ExpectDataLoss(c_.kv(corrupt_)->Scan(&ctx, req, &resp), kind + " scan");
    }
    {
      grpc::ClientContext ctx;
      auto stream = c_.kv(corrupt_)->Batch(&ctx);
      kvpb::BatchRequest req;
      kvpb::RequestOp* get = req.add_ops();
      get->set_id(1);
      get->mutable_get()->set_key(KeyOf(0));
      get->mutable_get()->set_serializable(serializable);
      kvpb::RequestOp* scan = req.add_ops();
      scan->set_id(2);
      scan->mutable_scan()->set_prefix("p/");
      scan->mutable_scan()->set_serializable(serializable);
      ASSERT_TRUE(stream->Write(req));
      stream->WritesDone();
      int answered = 0;
      kvpb::BatchResponse resp;
      while (stream->Read(&resp)) {
        for (const auto& op : resp.ops()) {
          ++answered;
          EXPECT_EQ(op.code(), grpc::StatusCode::DATA_LOSS) << kind << " batch op " << op.id();
          EXPECT_THAT(op.message(), HasSubstr("does not serve reads"));
        }
      }
      EXPECT_EQ(answered, 2);
      EXPECT_TRUE(stream->Finish().ok());
    }
  }

  // kvctl through it alone: an error, no rows.
  for (const char* flag : {"--serializable=true", "--serializable=false"}) {
    Kvctl scan = RunKvctl({absl::StrCat("--endpoints=", c_.address(corrupt_)), "--timeout=5s",
                           flag, "scan", "p/"});
    EXPECT_NE(scan.code, 0) << flag << " exited " << scan.code << " with:\n" << scan.out;
    EXPECT_EQ(scan.out, "") << flag;
    EXPECT_THAT(scan.err, HasSubstr("does not serve reads")) << flag;
    Kvctl get = RunKvctl({absl::StrCat("--endpoints=", c_.address(corrupt_)), "--timeout=5s",
                          flag, "get", KeyOf(0)});
    EXPECT_NE(get.code, 0) << flag;
    EXPECT_THAT(get.err, HasSubstr("does not serve reads")) << flag;
  }

  // A client given every member, the corrupt one first, reads every key
  // correctly from the healthy ones.
  std::vector<std::string> endpoints = {c_.address(corrupt_)};
  for (int id = 1; id <= 3; ++id) {
    if (id != corrupt_) endpoints.push_back(c_.address(id));
  }
  for (bool serializable : {true, false}) {
    client::ClientOptions o;
    o.endpoints = endpoints;
    auto client = client::Client::Create(o);
    ASSERT_TRUE(client.ok()) << client.status();
    std::vector<client::KeyValue> all;
    std::string after;
    while (true) {
      auto page = (*client)->Scan("p/", 0, after, serializable);
      ASSERT_TRUE(page.ok()) << page.status();
      all.insert(all.end(), page->kvs.begin(), page->kvs.end());
      if (!page->more) break;
      after = page->kvs.back().key;
    }
    ASSERT_EQ(all.size(), static_cast<size_t>(kKeys));
    for (int i = 0; i < kKeys; ++i) {
      EXPECT_EQ(all[i].key, KeyOf(i));
      EXPECT_TRUE(all[i].value == ValueOf(i)) << KeyOf(i);
    }
    for (int i = 0; i < kKeys; i += 9) {
      auto kv = (*client)->Get(KeyOf(i), serializable);
      ASSERT_TRUE(kv.ok()) << kv.status();
      EXPECT_TRUE(kv->value == ValueOf(i)) << KeyOf(i);
    }
  }
  Kvctl scan = RunKvctl({absl::StrCat("--endpoints=", absl::StrJoin(endpoints, ",")), "scan",
                         "p/"});
  EXPECT_EQ(scan.code, 0) << scan.err;
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(scan.out, '\n', absl::SkipEmpty())).size(),
            static_cast<size_t>(kKeys));

  // It stays a member and keeps applying the log.
  TestClient writer(&c_);
  auto put = writer.Put("after", "x");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_TRUE(Cluster::WaitFor(
      [&] {
        auto st = c_.Status(corrupt_);
        return st.ok() && st->applied_index() >= put->header().applied_index();
      },
      absl::Seconds(10)));

  // Made leader, it hands leadership over.
  auto leader = c_.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  {
    grpc::ClientContext ctx;
    adminpb::TransferLeaderRequest req;
    req.set_node_id(corrupt_);
    adminpb::TransferLeaderResponse resp;
    grpc::Status s = c_.admin(*leader)->TransferLeader(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  auto after_transfer = c_.WaitForLeader(absl::Seconds(15), corrupt_);
  ASSERT_TRUE(after_transfer.ok()) << after_transfer.status();
  EXPECT_NE(*after_transfer, corrupt_);
  EXPECT_THAT(c_.LogTail(corrupt_), HasSubstr("has corrupt data: handing leadership to node"));
}

// Nothing reads the damaged keys: the scrub at start finds them, and the
// member stops serving reads.
TEST_F(CorruptionTest, TheScrubFindsCorruptionNoReadMet) {
  StartCorrupt({"--scrub_interval=1h", "--scrub_start_delay=0"});
  ASSERT_TRUE(Cluster::WaitFor(
      [&] { return !Alarms(corrupt_).empty(); }, absl::Seconds(30)))
      << "no alarm; log:\n" << c_.LogTail(corrupt_);
  std::vector<std::string> alarms = Alarms(corrupt_);
  ASSERT_EQ(alarms.size(), 1u);
  EXPECT_THAT(alarms[0], HasSubstr("CORRUPT: data corruption: scrub: SST file"));
  EXPECT_THAT(alarms[0], HasSubstr("column family data"));
  grpc::ClientContext ctx;
  kvpb::GetRequest req;
  req.set_key(KeyOf(0));
  req.set_serializable(true);
  kvpb::GetResponse resp;
  ExpectDataLoss(c_.kv(corrupt_)->Get(&ctx, req, &resp), "get after the scrub");

  // A healthy member's scrub finds nothing.
  const int healthy = corrupt_ % 3 + 1;
  c_.Kill(healthy);
  ASSERT_TRUE(c_.Start(healthy, {"--scrub_interval=1h", "--scrub_start_delay=0"}).ok());
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        return c_.LogTail(healthy).find("no corruption") != std::string::npos;
      },
      absl::Seconds(30)))
      << c_.LogTail(healthy);
  EXPECT_TRUE(Alarms(healthy).empty());
}

// Applying an entry that must read a damaged key (a delete reports whether
// the key existed) cannot be done as the other members do: the member
// stops, with one line and exit status 1, rather than go on.
TEST_F(CorruptionTest, ApplyMeetingCorruptionStopsTheMember) {
  StartCorrupt();
  const pid_t pid = c_.pid(corrupt_);
  auto exited = [pid] {
    siginfo_t info{};
    return waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
  };
  // Deletes in key order, through the leader, until one reaches a damaged
  // block on the member (the healthy majority applies them all).
  TestClient client(&c_);
  for (int i = 0; i < kKeys && !exited(); ++i) {
    auto del = client.Delete(KeyOf(i));
    ASSERT_TRUE(del.ok()) << del.status();
    EXPECT_TRUE(del->deleted());
  }
  ASSERT_TRUE(Cluster::WaitFor(exited, absl::Seconds(20)))
      << "still running; log:\n" << c_.LogTail(corrupt_);
  ExitResult r = c_.Stop(corrupt_);
  EXPECT_EQ(r.term_signal, 0) << "killed by a signal, not a clean exit";
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(c_.LogTail(corrupt_),
              HasSubstr(absl::StrCat("node ", corrupt_,
                                     " stops: applying committed entries: applying entry")));
  EXPECT_THAT(c_.LogTail(corrupt_), HasSubstr("Corruption"));
}

// Every data block damaged, the first and last included: the member cannot
// read its session table and revision counters at start, so it refuses to
// start (it could not apply as the others do), with one line and exit
// status 1.
TEST_F(CorruptionTest, AMemberThatCannotReadItsSessionsRefusesToStart) {
  auto files = storage::testing::SstFilesOf(c_.data_dir(corrupt_), "data");
  ASSERT_TRUE(files.ok()) << files.status();
  for (const std::string& f : *files) {
    ASSERT_TRUE(storage::testing::CorruptDataBlocks(f, 0.0, 0.25).ok());
    ASSERT_TRUE(storage::testing::CorruptDataBlocks(f, 0.75, 1.0).ok());
  }
  std::vector<std::string> flags = c_.NodeFlags(corrupt_);
  flags.push_back("--scrub_interval=0");
  ExitResult r = c_.RunServer(flags, "refused.log");
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.term_signal, 0) << r.output;
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("raftkv server: state machine: storage dir"));
  EXPECT_THAT(r.output, HasSubstr("Corruption"));
  EXPECT_THAT(r.output, HasSubstr(absl::StrCat("kvctl member remove ", corrupt_)));
}

}  // namespace
}  // namespace raftkv::testing
