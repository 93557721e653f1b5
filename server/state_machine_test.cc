#include "server/state_machine.h"

#include <string>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/byte_pacer.h"
#include "storage/log_store.h"
#include "storage/sst_corruption.h"

namespace raftkv::server {
namespace {

class StateMachineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::string(getenv("TEST_TMPDIR")) + "/sm_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    Open();
  }
  void Open() {
    sm_.reset();
    store_.reset();
    storage::Options o;
    o.dir = dir_;
    o.data_memtable_bytes = memtable_bytes_;
    auto s = storage::LogStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    auto sm = KvStateMachine::Open(store_.get());
    ASSERT_TRUE(sm.ok()) << sm.status();
    sm_ = std::move(*sm);
  }

  raftpb::Entry Cmd(const kvpb::Command& c) {
    raftpb::Entry e;
    e.set_index(++index_);
    e.set_term(1);
    e.set_data(c.SerializeAsString());
    return e;
  }
  kvpb::Command Put(const std::string& k, const std::string& v, uint64_t client = 0,
                    uint64_t seq = 0, uint64_t first_incomplete = 0) {
    kvpb::Command c;
    c.mutable_header()->set_client_id(client);
    c.mutable_header()->set_seq(seq);
    c.mutable_header()->set_first_incomplete(first_incomplete);
    c.mutable_put()->set_key(k);
    c.mutable_put()->set_value(v);
    return c;
  }
  ApplyResult ApplyOne(const kvpb::Command& c) {
    auto r = sm_->Apply({Cmd(c)});
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->size(), 1u);
    return (*r)[0];
  }

  std::string dir_;
  size_t memtable_bytes_ = storage::Options().data_memtable_bytes;
  uint64_t index_ = 0;
  std::unique_ptr<storage::LogStore> store_;
  std::unique_ptr<KvStateMachine> sm_;
};

TEST_F(StateMachineTest, PutGetDeleteWithVersions) {
  auto r = ApplyOne(Put("a", "1"));
  ASSERT_TRUE(r.result.ok());
  EXPECT_EQ(r.result->put().version(), 1u);
  auto kv = sm_->Get("a");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->value(), "1");
  EXPECT_EQ(kv->version(), 1u);
  kvpb::Command del;
  del.mutable_delete_()->set_key("a");
  EXPECT_TRUE(ApplyOne(del).result->delete_().deleted());
  EXPECT_FALSE(ApplyOne(del).result->delete_().deleted());
  EXPECT_EQ(sm_->Get("a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sm_->applied_index(), 3u);
}

TEST_F(StateMachineTest, CompareAndSwapOnValueAndVersion) {
  kvpb::Command cas;
  cas.mutable_cas()->set_key("lock");
  cas.mutable_cas()->set_expected_version(0);  // must not exist
  cas.mutable_cas()->set_new_value("owner-1");
  auto r = ApplyOne(cas);
  ASSERT_TRUE(r.result->cas().succeeded());
  const uint64_t v = r.result->cas().version();
  auto again = ApplyOne(cas);
  EXPECT_FALSE(again.result->cas().succeeded());
  EXPECT_EQ(again.result->cas().current().value(), "owner-1");
  EXPECT_EQ(again.result->cas().current().version(), v);
  cas.mutable_cas()->set_expected_value("owner-1");
  cas.mutable_cas()->set_new_value("owner-2");
  EXPECT_TRUE(ApplyOne(cas).result->cas().succeeded());
  EXPECT_EQ(sm_->Get("lock")->value(), "owner-2");
}

TEST_F(StateMachineTest, LaterCommandsInABatchSeeEarlierOnes) {
  kvpb::Command cas;
  cas.mutable_cas()->set_key("k");
  cas.mutable_cas()->set_expected_value("1");
  cas.mutable_cas()->set_new_value("2");
  auto r = sm_->Apply({Cmd(Put("k", "1")), Cmd(cas)});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)[1].result->cas().succeeded());
  EXPECT_EQ(sm_->Get("k")->value(), "2");
}

// §6.3: a retried write is answered with its first result, not re-applied.
TEST_F(StateMachineTest, RetriedWriteAppliesOnce) {
  auto first = ApplyOne(Put("x", "a", /*client=*/7, /*seq=*/1, 1));
  ApplyOne(Put("x", "b", 8, 1, 1));  // another client overwrites
  auto retry = ApplyOne(Put("x", "a", 7, 1, 1));
  ASSERT_TRUE(retry.result.ok());
  EXPECT_EQ(retry.result->put().version(), first.result->put().version());
  EXPECT_EQ(sm_->Get("x")->value(), "b") << "the retry did not write again";
  // Survives a restart (the session table is persisted).
  Open();
  auto after = ApplyOne(Put("x", "a", 7, 1, 1));
  EXPECT_EQ(after.result->put().version(), first.result->put().version());
  EXPECT_EQ(sm_->Get("x")->value(), "b");
}

TEST_F(StateMachineTest, ForgottenResultsAreRefusedNotReapplied) {
  ApplyOne(Put("x", "1", 7, 1, 1));
  ApplyOne(Put("x", "2", 7, 2, 2));  // the client got answer 1
  auto stale = ApplyOne(Put("x", "1", 7, 1, 1));
  EXPECT_EQ(stale.result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sm_->Get("x")->value(), "2");
}

TEST_F(StateMachineTest, InvalidCommandsChangeNothing) {
  auto r = ApplyOne(Put("", "v"));
  EXPECT_EQ(r.result.status().code(), absl::StatusCode::kInvalidArgument);
  r = ApplyOne(Put(std::string(5000, 'k'), "v"));
  EXPECT_EQ(r.result.status().code(), absl::StatusCode::kInvalidArgument);
  raftpb::Entry garbage;
  garbage.set_index(++index_);
  garbage.set_data("\xff\xff garbage");
  auto g = sm_->Apply({garbage});
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE((*g)[0].result.ok());
  EXPECT_EQ(sm_->Digest()->second, 0u);
  EXPECT_EQ(sm_->applied_index(), index_) << "still advances the applied index";
}

// etcd's auth (server/etcd/auth_store.h) as the state machine applies it:
// in the data (a restart keeps it), native writes refused while it is on, an
// etcd write checked at an older auth revision refused.
TEST_F(StateMachineTest, EtcdAuthIsReplicatedStateThatGuardsWritesAtApply) {
  auto auth = [&](auto fill) {
    kvpb::Command c;
    c.mutable_auth()->set_auth_revision(sm_->etcd_auth().revision());
    fill(c.mutable_auth());
    return ApplyOne(c);
  };
  ASSERT_TRUE(auth([](kvpb::AuthCommand* a) {
                a->mutable_user_add()->set_name("root");
                a->set_password_hash("$2b$04$hash");
              }).result.ok());
  ASSERT_TRUE(auth([](kvpb::AuthCommand* a) {
                a->mutable_user_grant_role()->set_user("root");
                a->mutable_user_grant_role()->set_role("root");
              }).result.ok());
  EXPECT_TRUE(ApplyOne(Put("k", "before")).result.ok());
  ApplyResult on = auth([](kvpb::AuthCommand* a) { a->mutable_auth_enable(); });
  ASSERT_TRUE(on.result.ok()) << on.result.status();
  const uint64_t rev = sm_->etcd_auth().revision();
  EXPECT_EQ(on.result->etcd().auth_revision(), rev);

  EXPECT_EQ(ApplyOne(Put("k", "native")).result.status().code(),
            absl::StatusCode::kPermissionDenied);
  kvpb::Command etcd_put;
  etcd_put.mutable_etcd()->mutable_put()->set_key("k");
  etcd_put.mutable_etcd()->mutable_put()->set_value("etcd");
  etcd_put.mutable_etcd()->mutable_auth()->set_revision(rev - 1);
  absl::Status stale = ApplyOne(etcd_put).result.status();
  EXPECT_EQ(stale.message(), "etcdserver: revision of auth store is old");
  etcd_put.mutable_etcd()->mutable_auth()->set_revision(rev);
  EXPECT_TRUE(ApplyOne(etcd_put).result.ok());

  Open();  // a restart
  EXPECT_TRUE(sm_->etcd_auth().enabled());
  EXPECT_EQ(sm_->etcd_auth().revision(), rev);
  EXPECT_EQ(sm_->Get("k")->value(), "etcd");
  EXPECT_FALSE(ApplyOne(Put("k", "native")).result.ok());
}

TEST_F(StateMachineTest, ScanWithPrefixLimitAndPaging) {
  for (const char* k : {"app/a", "app/b", "app/c", "apq", "b"}) ApplyOne(Put(k, k));
  ScanResult r = *sm_->Scan("app/", "", 2);
  ASSERT_EQ(r.kvs.size(), 2u);
  EXPECT_TRUE(r.more);
  EXPECT_EQ(r.kvs[1].key(), "app/b");
  r = *sm_->Scan("app/", "app/b", 10);
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].key(), "app/c");
  EXPECT_FALSE(r.more);
  EXPECT_EQ(sm_->Scan("", "", 100)->kvs.size(), 5u) << "sessions are not keys";
}

// A page stops near max_bytes (so it fits one gRPC message) but always holds
// at least one key, however large its value.
TEST_F(StateMachineTest, ScanPagesAreBoundedInBytes) {
  const std::string big(1000, 'x');
  for (const char* k : {"a", "b", "c", "d"}) ApplyOne(Put(k, big));
  ScanResult r = *sm_->Scan("", "", 100, /*max_bytes=*/2500);
  ASSERT_EQ(r.kvs.size(), 2u);
  EXPECT_TRUE(r.more);
  r = *sm_->Scan("", "", 100, /*max_bytes=*/10);
  ASSERT_EQ(r.kvs.size(), 1u) << "a value larger than the cap still comes back";
  EXPECT_EQ(r.kvs[0].value(), big);
  EXPECT_TRUE(r.more);
  r = *sm_->Scan("", "c", 100, /*max_bytes=*/2500);
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_FALSE(r.more);
}

TEST_F(StateMachineTest, SessionTableIsBounded) {
  std::vector<raftpb::Entry> batch;
  for (uint64_t c = 1; c <= Limits::kMaxSessions + 5; ++c) batch.push_back(Cmd(Put("k", "v", c, 1, 1)));
  ASSERT_TRUE(sm_->Apply(batch).ok());
  EXPECT_EQ(sm_->session_count(), Limits::kMaxSessions);
  Open();
  EXPECT_EQ(sm_->session_count(), Limits::kMaxSessions) << "eviction was persisted";
}

TEST_F(StateMachineTest, DigestIsEqualForEqualData) {
  ApplyOne(Put("a", "1"));
  auto d1 = sm_->Digest();
  ApplyOne(Put("a", "2"));
  auto d2 = sm_->Digest();
  ASSERT_TRUE(d1.ok() && d2.ok());
  EXPECT_NE(d1->first, d2->first);
  EXPECT_EQ(d2->second, 1u);
}

// etcd's writes go through the log as commands and share the keys with the
// native API: one revision per write, etcd's errors change nothing.
TEST_F(StateMachineTest, EtcdWritesShareTheKeysAndRevisions) {
  kvpb::Command put;
  put.mutable_etcd()->mutable_put()->set_key("a");
  put.mutable_etcd()->mutable_put()->set_value("1");
  put.mutable_etcd()->mutable_put()->set_prev_kv(true);
  ApplyResult r = ApplyOne(put);
  ASSERT_TRUE(r.result.ok()) << r.result.status();
  EXPECT_EQ(r.result->etcd().put().header().revision(), 2);
  EXPECT_FALSE(r.result->etcd().put().has_prev_kv());
  ASSERT_TRUE(ApplyOne(Put("a", "2")).result.ok());  // native: revision 3
  auto kv = sm_->Get("a");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->value(), "2");
  EXPECT_EQ(kv->version(), index_);  // the native version: the log index

  kvpb::Command txn;
  auto* t = txn.mutable_etcd()->mutable_txn();
  auto* cmp = t->add_compare();
  cmp->set_key("a");
  cmp->set_target(etcdserverpb::Compare::VALUE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_value("2");
  t->add_success()->mutable_request_put()->set_key("b");
  t->add_success()->mutable_request_delete_range()->set_key("a");
  r = ApplyOne(txn);
  ASSERT_TRUE(r.result.ok()) << r.result.status();
  EXPECT_TRUE(r.result->etcd().txn().succeeded());
  EXPECT_EQ(r.result->etcd().txn().header().revision(), 4);  // one revision for both
  EXPECT_FALSE(sm_->Get("a").ok());

  // An etcd error is the client's answer: nothing changes.
  kvpb::Command ignore;
  ignore.mutable_etcd()->mutable_put()->set_key("missing");
  ignore.mutable_etcd()->mutable_put()->set_ignore_value(true);
  r = ApplyOne(ignore);
  EXPECT_EQ(r.result.status().message(), "etcdserver: key not found");
  EXPECT_EQ(sm_->mvcc()->revision(), 4);

  kvpb::Command compact;
  compact.mutable_etcd()->mutable_compaction()->set_revision(3);
  ASSERT_TRUE(ApplyOne(compact).result.ok());
  EXPECT_EQ(ApplyOne(compact).result.status().message(),
            "etcdserver: mvcc: required revision has been compacted");
  mvcc::RangeOptions at2;
  at2.revision = 2;
  EXPECT_TRUE(mvcc::IsCompacted(sm_->mvcc()->Read()->Range("a", "", at2).status()));
  mvcc::RangeOptions at3;
  at3.revision = 3;
  auto old = sm_->mvcc()->Read()->Range("a", "", at3);
  ASSERT_TRUE(old.ok());
  ASSERT_EQ(old->kvs.size(), 1u);
  EXPECT_EQ(old->kvs[0].value, "2");
}

// etcd's NOSPACE alarm, raised through the log, caps etcd's writes on every
// replica (etcd's capped applier) until cleared, across a restart; native
// puts are capped too; etcd's and native deletes go on.
TEST_F(StateMachineTest, EtcdNoSpaceAlarmRefusesEtcdPutsUntilCleared) {
  kvpb::Command put;
  put.mutable_etcd()->mutable_put()->set_key("a");
  put.mutable_etcd()->mutable_put()->set_value("1");
  ASSERT_TRUE(ApplyOne(put).result.ok());
  kvpb::Command raise;
  raise.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
  raise.mutable_alarm()->set_memberid(2);
  raise.mutable_alarm()->set_alarm(etcdserverpb::NOSPACE);
  ApplyResult r = ApplyOne(raise);
  ASSERT_TRUE(r.result.ok()) << r.result.status();
  ASSERT_EQ(r.result->etcd().alarm().alarms_size(), 1);
  const int64_t rev = sm_->mvcc()->revision();
  EXPECT_EQ(ApplyOne(put).result.status().message(), "etcdserver: mvcc: database space exceeded");
  EXPECT_EQ(sm_->mvcc()->revision(), rev);

  Open();  // a restart keeps the alarm
  ASSERT_EQ(sm_->etcd_alarms().List().size(), 1u);
  EXPECT_EQ(ApplyOne(put).result.status().code(), absl::StatusCode::kResourceExhausted);
  kvpb::Command del;
  del.mutable_etcd()->mutable_delete_range()->set_key("a");
  r = ApplyOne(del);
  ASSERT_TRUE(r.result.ok()) << r.result.status();
  EXPECT_EQ(r.result->etcd().delete_range().deleted(), 1);
  EXPECT_EQ(ApplyOne(Put("n", "native")).result.status().code(),
            absl::StatusCode::kResourceExhausted);
  kvpb::Command cas;
  cas.mutable_cas()->set_key("n");
  cas.mutable_cas()->set_expected_version(0);
  cas.mutable_cas()->set_new_value("x");
  EXPECT_EQ(ApplyOne(cas).result.status().code(), absl::StatusCode::kResourceExhausted);
  kvpb::Command native_del;
  native_del.mutable_delete_()->set_key("n");
  EXPECT_TRUE(ApplyOne(native_del).result.ok());
  EXPECT_EQ(sm_->mvcc()->revision(), rev + 1) << "only etcd's delete wrote";

  kvpb::Command clear = raise;
  clear.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::DEACTIVATE);
  ASSERT_TRUE(ApplyOne(clear).result.ok());
  EXPECT_TRUE(ApplyOne(put).result.ok());
  EXPECT_TRUE(ApplyOne(Put("n", "native")).result.ok());
  EXPECT_TRUE(sm_->etcd_alarms().List().empty());
}

// The state machine over a store whose data SST files were damaged on disk:
// every read that meets a bad block fails with DataLoss, never answers with
// keys missing; applying an entry that must read one fails and writes
// nothing.
class CorruptStateMachineTest : public StateMachineTest {
 protected:
  static constexpr int kKeys = 3000;
  static std::string KeyOf(int i) { return absl::StrFormat("p/%06d", i); }
  static std::string ValueOf(int i) {
    std::string v;
    uint64_t x = 0x9e3779b97f4a7c15ull * (i + 1);
    while (v.size() < 200) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      v += absl::StrFormat("%016x", x);
    }
    return v;
  }

  void SetUp() override {
    dir_ = std::string(getenv("TEST_TMPDIR")) + "/sm_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    memtable_bytes_ = 64 << 10;
    Open();
    std::vector<raftpb::Entry> batch;
    for (int i = 0; i < kKeys; ++i) {
      batch.push_back(Cmd(Put(KeyOf(i), ValueOf(i))));
      if (batch.size() == 100) {
        ASSERT_TRUE(sm_->Apply(batch).ok());
        batch.clear();
      }
    }
    Open();  // writes what the WAL held to SST files
    sm_.reset();
    store_.reset();
    auto files = storage::testing::SstFilesOf(dir_, "data");
    ASSERT_TRUE(files.ok()) << files.status();
    ASSERT_FALSE(files->empty());
    // Only files of keys' records ('h' in the live generation 'a'): the
    // sessions and counters the state machine reads when it opens stay
    // readable, as they would in a node whose damage is in its user data.
    int corrupted = 0;
    for (const auto& f : *files) {
      auto range = storage::testing::SstKeyRange(f);
      ASSERT_TRUE(range.ok()) << range.status();
      if (range->first.rfind("ah", 0) != 0 || range->second.rfind("ah", 0) != 0) continue;
      ASSERT_TRUE(storage::testing::CorruptDataBlocks(f).ok());
      ++corrupted;
    }
    ASSERT_GT(corrupted, 0);
    Open();
  }

  void ExpectDataLoss(const absl::Status& s) {
    EXPECT_TRUE(absl::IsDataLoss(s)) << s;
    EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("Corruption"));
  }
};

TEST_F(CorruptStateMachineTest, ScanFailsInsteadOfSkippingKeys) {
  auto all = sm_->Scan("", "", 100000, 1 << 30);
  ASSERT_FALSE(all.ok()) << all->kvs.size() << " of " << kKeys << " keys and no error";
  ExpectDataLoss(all.status());
  auto prefix = sm_->Scan("p/", "", 100000, 1 << 30);
  ASSERT_FALSE(prefix.ok());
  ExpectDataLoss(prefix.status());
}

TEST_F(CorruptStateMachineTest, PagedScanFails) {
  std::string after;
  absl::Status failed;
  int seen = 0;
  while (true) {
    auto page = sm_->Scan("p/", after, 100);
    if (!page.ok()) {
      failed = page.status();
      break;
    }
    for (const auto& kv : page->kvs) EXPECT_EQ(kv.key(), KeyOf(seen++));
    if (!page->more) break;
    after = page->kvs.back().key();
  }
  EXPECT_LT(seen, kKeys);
  ExpectDataLoss(failed);
}

TEST_F(CorruptStateMachineTest, GetAndDigestFail) {
  int failed = 0;
  for (int i = 0; i < kKeys; ++i) {
    auto kv = sm_->Get(KeyOf(i));
    if (kv.ok()) {
      EXPECT_EQ(kv->value(), ValueOf(i));
    } else {
      ExpectDataLoss(kv.status());
      ++failed;
    }
  }
  EXPECT_GT(failed, 0);
  ExpectDataLoss(sm_->Digest().status());
}

TEST_F(CorruptStateMachineTest, ApplyThatMustReadACorruptKeyFailsAndWritesNothing) {
  int failed = 0;
  for (int i = 0; i < kKeys; i += 7) {
    kvpb::Command cas;
    cas.mutable_cas()->set_key(KeyOf(i));
    cas.mutable_cas()->set_expected_value(ValueOf(i));
    cas.mutable_cas()->set_new_value("new");
    kvpb::Command del;
    del.mutable_delete_()->set_key(KeyOf(i + 1));
    const uint64_t before = sm_->applied_index();
    for (const kvpb::Command& c : {cas, del}) {
      raftpb::Entry e = Cmd(c);
      auto r = sm_->Apply({e});
      if (r.ok()) {
        ASSERT_TRUE((*r)[0].result.ok()) << (*r)[0].result.status();
        continue;
      }
      ExpectDataLoss(r.status());
      EXPECT_THAT(std::string(r.status().message()),
                  ::testing::HasSubstr(absl::StrCat("applying entry ", e.index())));
      EXPECT_EQ(sm_->applied_index(), before) << "nothing written";
      ++failed;
      break;
    }
    if (sm_->applied_index() == before) break;  // the state machine cannot go on
  }
  EXPECT_GT(failed, 0);
}

}  // namespace
}  // namespace raftkv::server

namespace raftkv::server {
namespace {

// The incarnation records: one per member, the first one stands, gone with
// the member's removal, and kept across a restart (they live in `data`, so
// snapshots carry them too).
class IncarnationRecordTest : public StateMachineTest {
 protected:
  void SetUp() override {
    StateMachineTest::SetUp();
    storagepb::NodeIdentity id;
    id.set_cluster_id(1);
    id.set_node_id(1);
    raftpb::ConfState conf;  // the founding members 1..3
    for (uint64_t v : {1, 2, 3}) conf.add_voters(v);
    ASSERT_TRUE(store_->Bootstrap(id, conf).ok());
    Open();  // as a node does: the state machine opens a bootstrapped store
  }
  void Record(uint64_t node, uint64_t incarnation, uint64_t conf_index = 0) {
    raftpb::Entry e;
    e.set_index(++index_);
    e.set_term(1);
    e.set_data(KvStateMachine::IncarnationCommand(node, incarnation, conf_index));
    auto r = sm_->Apply({e});
    ASSERT_TRUE(r.ok()) << r.status();
  }
  void Remove(uint64_t node) {
    raftpb::ConfChange cc;
    cc.set_type(raftpb::CONF_REMOVE_NODE);
    cc.set_node_id(node);
    for (uint64_t v : {1, 2, 3}) {
      if (v != node) cc.mutable_result()->add_voters(v);
    }
    raftpb::Entry e;
    e.set_index(++index_);
    e.set_term(1);
    e.set_type(raftpb::ENTRY_CONF_CHANGE);
    e.set_data(cc.SerializeAsString());
    ASSERT_TRUE(sm_->Apply({e}).ok());
  }
};

TEST_F(IncarnationRecordTest, TheFirstRecordOfAMemberStands) {
  Record(2, 22);
  Record(2, 99);  // a later incarnation does not replace it
  Record(3, 33, /*conf_index=*/5);  // proposed at another membership: ignored
  EXPECT_EQ(sm_->Incarnation(2), 22u);
  EXPECT_FALSE(sm_->Incarnation(3).has_value());
  EXPECT_EQ(sm_->Membership().first, 0u);
  EXPECT_EQ(sm_->Membership().second.voters_size(), 3);
  Open();
  EXPECT_EQ(sm_->Incarnation(2), 22u) << "lost across a restart";
}

TEST_F(IncarnationRecordTest, RemovalForgetsTheRecord) {
  Record(3, 33);
  Remove(3);  // entry 2
  EXPECT_FALSE(sm_->Incarnation(3).has_value());
  Record(3, 34, /*conf_index=*/0);  // proposed before the removal: ignored
  EXPECT_FALSE(sm_->Incarnation(3).has_value());
  Record(2, 22, /*conf_index=*/2);
  Open();
  EXPECT_EQ(sm_->Membership().first, 2u) << "the membership index was not kept";
  EXPECT_EQ(sm_->Membership().second.voters_size(), 2);
  EXPECT_EQ(sm_->Incarnations(), (std::map<uint64_t, uint64_t>{{2, 22}}));
}

}  // namespace
}  // namespace raftkv::server

namespace raftkv::server {
namespace {

// A hash check entry hands the checker the state exactly as of that entry,
// however the entries around it are batched.
TEST_F(StateMachineTest, AHashCheckSeesTheStateAsOfItsEntry) {
  uint64_t seen_index = 0;
  uint64_t seen_hash = 0;
  sm_->set_checkpoint_hook([&](uint64_t index, std::unique_ptr<storage::DataSnapshot> view) {
    seen_index = index;
    auto h = KvStateMachine::StateHash(*view);
    ASSERT_TRUE(h.ok()) << h.status();
    seen_hash = *h;
  });
  kvpb::Command check;
  check.mutable_hash_check();
  auto r = sm_->Apply({Cmd(Put("a", "1")), Cmd(check), Cmd(Put("a", "2"))});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(seen_index, 2u);
  EXPECT_EQ(sm_->applied_index(), 3u);
  EXPECT_EQ(sm_->Get("a")->value(), "2");

  // The same two first entries, applied one by one elsewhere: same hash.
  const std::string first_dir = dir_;
  dir_ += "-other";
  index_ = 0;
  Open();
  uint64_t other_hash = 0;
  sm_->set_checkpoint_hook([&](uint64_t, std::unique_ptr<storage::DataSnapshot> view) {
    other_hash = *KvStateMachine::StateHash(*view);
  });
  ASSERT_TRUE(sm_->Apply({Cmd(Put("a", "1"))}).ok());
  ASSERT_TRUE(sm_->Apply({Cmd(check)}).ok());
  EXPECT_EQ(other_hash, seen_hash);

  // A different value at the same index: a different hash.
  dir_ = first_dir + "-third";
  index_ = 0;
  Open();
  uint64_t third_hash = 0;
  sm_->set_checkpoint_hook([&](uint64_t, std::unique_ptr<storage::DataSnapshot> view) {
    third_hash = *KvStateMachine::StateHash(*view);
  });
  ASSERT_TRUE(sm_->Apply({Cmd(Put("a", "x")), Cmd(check)}).ok());
  EXPECT_NE(third_hash, seen_hash);
}

// The hash check's scan goes at its pacer's rate, over every byte of the
// state, and its hash does not depend on the pacing.
TEST_F(StateMachineTest, AHashScanIsPacedAndHashesTheSame) {
  std::unique_ptr<storage::DataSnapshot> view;
  sm_->set_checkpoint_hook(
      [&](uint64_t, std::unique_ptr<storage::DataSnapshot> v) { view = std::move(v); });
  std::vector<raftpb::Entry> entries;
  for (int i = 0; i < 100; ++i) {
    entries.push_back(Cmd(Put("k" + std::to_string(i), std::string(1000, 'v'))));
  }
  kvpb::Command check;
  check.mutable_hash_check();
  entries.push_back(Cmd(check));
  ASSERT_TRUE(sm_->Apply(entries).ok());
  ASSERT_NE(view, nullptr);
  auto unpaced = KvStateMachine::StateHash(*view);
  ASSERT_TRUE(unpaced.ok()) << unpaced.status();

  absl::Time now = absl::UnixEpoch();  // moves only when the pacer waits
  storage::PacerClock clock;
  clock.now = [&now] { return now; };
  clock.sleep = [&now](absl::Duration d) {
    now += d;
    return true;
  };
  storage::BytePacer pacer(64 << 10, clock);
  uint64_t bytes = 0;
  auto paced = KvStateMachine::StateHash(*view, nullptr, [&](size_t n) {
    bytes += n;
    return pacer.Account(n);
  });
  ASSERT_TRUE(paced.ok()) << paced.status();
  EXPECT_EQ(*paced, *unpaced);
  EXPECT_GT(bytes, 100u * 1000);
  // At 64 KiB/s: the bytes' time, but for the first chunk and the last
  // (partial) one.
  EXPECT_GE(now - absl::UnixEpoch(),
            absl::Seconds(static_cast<double>(bytes - 2 * pacer.chunk()) / (64 << 10)));

  // A pacer that says stop cancels the hash.
  auto stopped = KvStateMachine::StateHash(*view, nullptr, [](size_t) { return false; });
  EXPECT_TRUE(absl::IsCancelled(stopped.status())) << stopped.status();
}

}  // namespace
}  // namespace raftkv::server
