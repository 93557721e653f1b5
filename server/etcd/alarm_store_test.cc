#include "server/etcd/alarm_store.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/etcd/errors.h"

namespace raftkv::server::etcd {
namespace {

etcdserverpb::AlarmRequest Req(etcdserverpb::AlarmRequest::AlarmAction action, uint64_t member,
                               etcdserverpb::AlarmType type) {
  etcdserverpb::AlarmRequest r;
  r.set_action(action);
  r.set_memberid(member);
  r.set_alarm(type);
  return r;
}

kvpb::EtcdWrite PutWrite() {
  kvpb::EtcdWrite w;
  w.mutable_put()->set_key("k");
  return w;
}

class AlarmStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::Options o;
    o.dir = std::string(getenv("TEST_TMPDIR")) + "/alarms_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto s = storage::LogStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  // Applies `req` and writes its batch as entry ++index_.
  absl::StatusOr<etcdserverpb::AlarmResponse> Apply(AlarmStore* a,
                                                    const etcdserverpb::AlarmRequest& req) {
    storage::DataBatch batch;
    auto r = a->Apply(req, &batch);
    EXPECT_TRUE(store_->ApplyBatch(batch, ++index_).ok());
    return r;
  }

  std::unique_ptr<storage::LogStore> store_;
  uint64_t index_ = 0;
};

TEST_F(AlarmStoreTest, NoSpaceCapsWritesThatAddDataUntilEveryMemberClearsIt) {
  AlarmStore a;
  ASSERT_TRUE(a.Load(*store_).ok());
  EXPECT_TRUE(a.AdmitWrite(PutWrite()).ok());

  auto r = Apply(&a, Req(etcdserverpb::AlarmRequest::ACTIVATE, 7, etcdserverpb::NOSPACE));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->alarms_size(), 1);
  EXPECT_EQ(r->alarms(0).memberid(), 7u);
  EXPECT_EQ(r->alarms(0).alarm(), etcdserverpb::NOSPACE);
  // Again: answered the same, nothing new.
  EXPECT_EQ(Apply(&a, Req(etcdserverpb::AlarmRequest::ACTIVATE, 7, etcdserverpb::NOSPACE))
                ->alarms_size(),
            1);
  ASSERT_TRUE(Apply(&a, Req(etcdserverpb::AlarmRequest::ACTIVATE, 9, etcdserverpb::NOSPACE)).ok());
  EXPECT_TRUE(a.Active(etcdserverpb::NOSPACE));
  EXPECT_EQ(a.List().size(), 2u);
  EXPECT_TRUE(a.List(etcdserverpb::CORRUPT).empty());

  // etcd's capped applier: Put and a Txn that writes are refused; reads,
  // deletes, compaction and read-only txns are not.
  EXPECT_TRUE(IsEtcdError(a.AdmitWrite(PutWrite()), Error::kNoSpace));
  kvpb::EtcdWrite txn;
  txn.mutable_txn()->add_success()->mutable_request_range()->set_key("k");
  txn.mutable_txn()->add_failure()->mutable_request_range()->set_key("k");
  EXPECT_TRUE(a.AdmitWrite(txn).ok());
  kvpb::EtcdWrite txn_delete = txn;
  txn_delete.mutable_txn()->add_failure()->mutable_request_delete_range()->set_key("k");
  EXPECT_TRUE(IsEtcdError(a.AdmitWrite(txn_delete), Error::kNoSpace));
  kvpb::EtcdWrite nested = txn;
  nested.mutable_txn()->add_success()->mutable_request_txn();
  EXPECT_TRUE(IsEtcdError(a.AdmitWrite(nested), Error::kNoSpace));
  kvpb::EtcdWrite del;
  del.mutable_delete_range()->set_key("k");
  EXPECT_TRUE(a.AdmitWrite(del).ok());
  kvpb::EtcdWrite compact;
  compact.mutable_compaction()->set_revision(1);
  EXPECT_TRUE(a.AdmitWrite(compact).ok());

  // Survives a reload from the data (restart, snapshot install).
  AlarmStore reloaded;
  ASSERT_TRUE(reloaded.Load(*store_).ok());
  EXPECT_EQ(reloaded.List().size(), 2u);
  EXPECT_TRUE(reloaded.Active(etcdserverpb::NOSPACE));

  // Cleared member by member; a clear of an inactive alarm answers none.
  r = Apply(&a, Req(etcdserverpb::AlarmRequest::DEACTIVATE, 7, etcdserverpb::NOSPACE));
  ASSERT_EQ(r->alarms_size(), 1);
  EXPECT_TRUE(a.Active(etcdserverpb::NOSPACE));
  EXPECT_EQ(Apply(&a, Req(etcdserverpb::AlarmRequest::DEACTIVATE, 7, etcdserverpb::NOSPACE))
                ->alarms_size(),
            0);
  ASSERT_TRUE(Apply(&a, Req(etcdserverpb::AlarmRequest::DEACTIVATE, 9, etcdserverpb::NOSPACE)).ok());
  EXPECT_FALSE(a.Active(etcdserverpb::NOSPACE));
  EXPECT_TRUE(a.AdmitWrite(PutWrite()).ok());
  ASSERT_TRUE(reloaded.Load(*store_).ok());
  EXPECT_TRUE(reloaded.List().empty());
}

TEST_F(AlarmStoreTest, CorruptIsKeptButCapsNothingAndBadRequestsChangeNothing) {
  AlarmStore a;
  ASSERT_TRUE(Apply(&a, Req(etcdserverpb::AlarmRequest::ACTIVATE, 3, etcdserverpb::CORRUPT)).ok());
  EXPECT_EQ(a.List(etcdserverpb::CORRUPT).size(), 1u);
  EXPECT_FALSE(a.Active(etcdserverpb::NOSPACE));
  EXPECT_TRUE(a.AdmitWrite(PutWrite()).ok());
  for (const auto& bad : {Req(etcdserverpb::AlarmRequest::ACTIVATE, 0, etcdserverpb::NOSPACE),
                          Req(etcdserverpb::AlarmRequest::ACTIVATE, 3, etcdserverpb::NONE),
                          Req(etcdserverpb::AlarmRequest::GET, 3, etcdserverpb::NOSPACE)}) {
    EXPECT_EQ(Apply(&a, bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad.ShortDebugString();
  }
  EXPECT_EQ(a.List().size(), 1u);
  EXPECT_TRUE(AlarmStore::IsAlarmKey(std::string("a\0\0\0\0\0\0\0\3\2", 10)));
  EXPECT_FALSE(AlarmStore::IsAlarmKey("abc"));
}

}  // namespace
}  // namespace raftkv::server::etcd
