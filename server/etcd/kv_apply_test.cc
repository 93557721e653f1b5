// etcd's KV semantics, case by case, against the in-memory mvcc model. Each
// case names the etcd function it follows (etcd v3.4: etcdserver/apply.go,
// etcdserver/api/v3rpc/key.go); the cases marked "etcd 3.4.23" were also
// run against Debian's etcd (etcdctl and its JSON gateway) with the same
// answers.
#include "server/etcd/kv_apply.h"

#include <string>
#include <vector>

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "mvcc/model.h"
#include "server/etcd/errors.h"

namespace raftkv::server::etcd {
namespace {

using etcdserverpb::DeleteRangeRequest;
using etcdserverpb::PutRequest;
using etcdserverpb::RangeRequest;
using etcdserverpb::RangeResponse;
using etcdserverpb::TxnRequest;
using etcdserverpb::TxnResponse;

template <typename T>
T Parse(const std::string& text) {
  T msg;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &msg)) << text;
  return msg;
}

const std::string kZero("\0", 1);  // etcd's range_end "\0"

std::vector<std::string> Keys(const RangeResponse& r) {
  std::vector<std::string> keys;
  for (const auto& kv : r.kvs()) keys.push_back(kv.key());
  return keys;
}

// No lease exists (the caller's answer until leases come).
bool NoLease(int64_t) { return false; }
// Only lease 7 exists.
bool Lease7(int64_t id) { return id == 7; }

class KvApplyTest : public testing::Test {
 protected:
  // Runs `fn` in one write txn of the model, committed when it succeeds (as
  // the state machine does with one log entry).
  template <typename Fn>
  auto Write(Fn fn) {
    auto txn = model_.Write(++index_);
    auto result = fn(txn.get());
    if (result.ok()) txn->Commit();
    return result;
  }
  absl::StatusOr<etcdserverpb::PutResponse> DoPut(const std::string& text,
                                                  const LeaseExists& leases = NoLease) {
    PutRequest req = Parse<PutRequest>(text);
    EXPECT_TRUE(CheckPutRequest(req).ok()) << text;
    return Write([&](mvcc::WriteTxn* t) { return Put(t, req, leases); });
  }
  void PutKv(const std::string& key, const std::string& value) {
    PutRequest req;
    req.set_key(key);
    req.set_value(value);
    ASSERT_TRUE(Write([&](mvcc::WriteTxn* t) { return Put(t, req, NoLease); }).ok());
  }
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> DoDelete(const DeleteRangeRequest& req) {
    return Write([&](mvcc::WriteTxn* t) { return DeleteRange(t, req); });
  }
  absl::StatusOr<TxnResponse> DoTxn(const std::string& text, const LeaseExists& leases = NoLease) {
    TxnRequest req = Parse<TxnRequest>(text);
    EXPECT_TRUE(CheckTxnRequest(req, kDefaultMaxTxnOps).ok()) << text;
    return Write([&](mvcc::WriteTxn* t) { return Txn(t, req, leases); });
  }
  absl::StatusOr<RangeResponse> Get(const RangeRequest& req) { return Range(*model_.Read(), req); }
  absl::StatusOr<RangeResponse> Get(const std::string& text) {
    return Get(Parse<RangeRequest>(text));
  }

  // The store of the etcdctl run: t/a=3 (version 1), t/b=1 (2), t/c=2 (3),
  // t/d=0 (1); revisions 2..8 (a@2, b@3-4, c@5-7, d@8).
  void FourKeys() {
    PutKv("t/a", "3");
    PutKv("t/b", "1");
    PutKv("t/b", "1");
    PutKv("t/c", "2");
    PutKv("t/c", "2");
    PutKv("t/c", "2");
    PutKv("t/d", "0");
    ASSERT_EQ(model_.revision(), 8);
  }

  mvcc::Model model_;
  uint64_t index_ = 0;
};

// ---- checks (v3rpc/key.go) ----

TEST(KvChecksTest, RangePutDelete) {
  EXPECT_TRUE(IsEtcdError(CheckRangeRequest(RangeRequest()), Error::kEmptyKey));
  EXPECT_TRUE(CheckRangeRequest(Parse<RangeRequest>(R"(key: "a" sort_order: DESCEND)")).ok());
  // etcd 3.6's check (3.4 ignores a bad order and crashes on a bad target).
  EXPECT_TRUE(IsEtcdError(CheckRangeRequest(Parse<RangeRequest>(R"(key: "a" sort_order: 7)")),
                          Error::kInvalidSortOption));
  EXPECT_TRUE(IsEtcdError(CheckRangeRequest(Parse<RangeRequest>(R"(key: "a" sort_target: 9)")),
                          Error::kInvalidSortOption));

  EXPECT_TRUE(IsEtcdError(CheckPutRequest(Parse<PutRequest>(R"(value: "v")")), Error::kEmptyKey));
  EXPECT_TRUE(
      IsEtcdError(CheckPutRequest(Parse<PutRequest>(R"(key: "a" value: "v" ignore_value: true)")),
                  Error::kValueProvided));
  EXPECT_TRUE(
      IsEtcdError(CheckPutRequest(Parse<PutRequest>(R"(key: "a" lease: 7 ignore_lease: true)")),
                  Error::kLeaseProvided));
  EXPECT_TRUE(
      CheckPutRequest(Parse<PutRequest>(R"(key: "a" ignore_value: true ignore_lease: true)")).ok());

  EXPECT_TRUE(IsEtcdError(CheckDeleteRangeRequest(DeleteRangeRequest()), Error::kEmptyKey));
  EXPECT_TRUE(CheckDeleteRangeRequest(Parse<DeleteRangeRequest>(R"(key: "a")")).ok());
}

// checkTxnRequest: the largest of compares, success and failure is the
// txn's op count; a nested txn has what its parent leaves.
TEST(KvChecksTest, TxnOpLimits) {
  auto ops = [](const char* field, int n, const std::string& op) {
    std::string text;
    for (int i = 0; i < n; ++i) text += std::string(field) + " { " + op + " } ";
    return text;
  };
  const std::string get = R"(request_range { key: "a" })";
  EXPECT_TRUE(CheckTxnRequest(Parse<TxnRequest>(ops("success", 128, get)), 128).ok());
  EXPECT_TRUE(IsEtcdError(CheckTxnRequest(Parse<TxnRequest>(ops("success", 129, get)), 128),
                          Error::kTooManyOps));
  EXPECT_TRUE(IsEtcdError(CheckTxnRequest(Parse<TxnRequest>(ops("failure", 129, get)), 128),
                          Error::kTooManyOps));
  EXPECT_TRUE(IsEtcdError(CheckTxnRequest(Parse<TxnRequest>(ops("compare", 3, R"(key: "a")")), 2),
                          Error::kTooManyOps));
  // 100 compares and 100 ops in each branch: 100, not 300.
  EXPECT_TRUE(
      CheckTxnRequest(Parse<TxnRequest>(ops("compare", 100, R"(key: "a")") +
                                        ops("success", 100, get) + ops("failure", 100, get)),
                      128)
          .ok());
  // Nested: the parent's 3 ops leave 1 to a nested txn of 1 op, not 2.
  const std::string nested1 = R"(request_txn { success { request_range { key: "a" } } })";
  const std::string nested2 =
      R"(request_txn { success { request_range { key: "a" } } success { request_range { key: "b" } } })";
  EXPECT_TRUE(
      CheckTxnRequest(Parse<TxnRequest>(ops("success", 2, get) + ops("success", 1, nested1)), 4)
          .ok());
  EXPECT_TRUE(IsEtcdError(
      CheckTxnRequest(Parse<TxnRequest>(ops("success", 2, get) + ops("success", 1, nested2)), 4),
      Error::kTooManyOps));
}

TEST(KvChecksTest, TxnKeysAndEmptyOps) {
  struct Case {
    const char* txn;
    absl::StatusCode code;  // kOk or the etcd error's
    Error error;
  } cases[] = {
      {R"(compare { key: "a" } success { request_put { key: "a" } })", absl::StatusCode::kOk,
       Error::kEmptyKey},
      {R"(compare { result: EQUAL target: VALUE })", absl::StatusCode::kInvalidArgument,
       Error::kEmptyKey},
      {R"(success { request_put { value: "v" } })", absl::StatusCode::kInvalidArgument,
       Error::kEmptyKey},
      {R"(failure { request_delete_range { range_end: "z" } })", absl::StatusCode::kInvalidArgument,
       Error::kEmptyKey},
      {R"(success { request_range { } })", absl::StatusCode::kInvalidArgument, Error::kEmptyKey},
      {R"(success { request_txn { compare { target: VERSION } } })",
       absl::StatusCode::kInvalidArgument, Error::kEmptyKey},
      // etcd 3.4.23: an op with no request is "key not found".
      {R"(success { })", absl::StatusCode::kInvalidArgument, Error::kKeyNotFound},
      {R"(success { request_put { key: "a" value: "v" ignore_value: true } })",
       absl::StatusCode::kInvalidArgument, Error::kValueProvided},
  };
  for (const Case& c : cases) {
    absl::Status s = CheckTxnRequest(Parse<TxnRequest>(c.txn), kDefaultMaxTxnOps);
    if (c.code == absl::StatusCode::kOk) {
      EXPECT_TRUE(s.ok()) << c.txn << ": " << s;
    } else {
      EXPECT_TRUE(IsEtcdError(s, c.error)) << c.txn << ": " << s;
    }
  }
}

// checkIntervals: no key written twice in one branch, no put inside a range
// the same branch deletes, nested txns included.
TEST(KvChecksTest, TxnDuplicateKeys) {
  struct Case {
    const char* txn;
    bool duplicate;
  } cases[] = {
      {R"(success { request_put { key: "a" } } success { request_put { key: "a" } })", true},
      {R"(failure { request_put { key: "a" } } failure { request_put { key: "a" } })", true},
      {R"(success { request_put { key: "a" } } success { request_put { key: "b" } })", false},
      // One put per branch: the branches exclude each other.
      {R"(success { request_put { key: "a" } } failure { request_put { key: "a" } })", false},
      // A put and a delete of the key, in either order.
      {R"(success { request_put { key: "a" } } success { request_delete_range { key: "a" } })",
       true},
      {R"(success { request_delete_range { key: "a" } } success { request_put { key: "a" } })",
       true},
      // A put inside a deleted range [a, c), and just outside it.
      {R"(success { request_delete_range { key: "a" range_end: "c" } } success { request_put { key: "b" } })",
       true},
      {R"(success { request_delete_range { key: "a" range_end: "c" } } success { request_put { key: "c" } })",
       false},
      // etcd 3.4.23: del --prefix t/ then put t/x is a duplicate.
      {R"(success { request_delete_range { key: "t/" range_end: "t0" } } success { request_put { key: "t/x" } })",
       true},
      // etcd 3.4.23: del --from-key (range_end "\0") overlaps no put.
      {R"(success { request_delete_range { key: "a" range_end: "\000" } } success { request_put { key: "b" } })",
       false},
      // Deletes may overlap deletes; reads overlap anything.
      {R"(success { request_delete_range { key: "a" } } success { request_delete_range { key: "a" range_end: "z" } })",
       false},
      {R"(success { request_range { key: "a" } } success { request_put { key: "a" } })", false},
      // Nested: a parent's put and a nested put of the same key.
      {R"(success { request_put { key: "a" } } success { request_txn { success { request_put { key: "a" } } } })",
       true},
      {R"(success { request_txn { failure { request_put { key: "a" } } } } success { request_put { key: "a" } })",
       true},
      // Nested: one key in both branches of a nested txn is fine.
      {R"(success { request_txn { success { request_put { key: "a" } } failure { request_put { key: "a" } } } })",
       false},
      // Nested: two nested txns putting one key.
      {R"(success { request_txn { success { request_put { key: "a" } } } } success { request_txn { failure { request_put { key: "a" } } } })",
       true},
      // Nested: a parent's delete and a nested put.
      {R"(success { request_delete_range { key: "a" range_end: "b" } } success { request_txn { success { request_put { key: "ab" } } } })",
       true},
      // Nested: a nested delete and a later parent put.
      {R"(success { request_txn { success { request_delete_range { key: "a" } } } } success { request_put { key: "a" } })",
       true},
      // etcd's order: a nested txn's puts are checked against the deletes of
      // the nested txns before it, not after it.
      {R"(success { request_txn { success { request_put { key: "a" } } } } success { request_txn { success { request_delete_range { key: "a" } } } })",
       false},
      {R"(success { request_txn { success { request_delete_range { key: "a" } } } } success { request_txn { success { request_put { key: "a" } } } })",
       true},
      // Inside one nested branch, the same rules.
      {R"(failure { request_txn { success { request_put { key: "a" } } success { request_put { key: "a" } } } })",
       true},
  };
  for (const auto& c : cases) {
    absl::Status s = CheckTxnRequest(Parse<TxnRequest>(c.txn), kDefaultMaxTxnOps);
    if (c.duplicate) {
      EXPECT_TRUE(IsEtcdError(s, Error::kDuplicateKey)) << c.txn << ": " << s;
    } else {
      EXPECT_TRUE(s.ok()) << c.txn << ": " << s;
    }
  }
}

// ---- Range (applierV3backend.Range) ----

TEST_F(KvApplyTest, RangeSortLimitMoreCount) {
  FourKeys();
  struct Case {
    const char* req;
    std::vector<std::string> keys;
    bool more;
  } cases[] = {
      {R"(key: "t/" range_end: "t0")", {"t/a", "t/b", "t/c", "t/d"}, false},
      {R"(key: "t/" range_end: "t0" limit: 2)", {"t/a", "t/b"}, true},
      {R"(key: "t/" range_end: "t0" limit: 4)", {"t/a", "t/b", "t/c", "t/d"}, false},
      {R"(key: "t/" range_end: "t0" limit: 9)", {"t/a", "t/b", "t/c", "t/d"}, false},
      {R"(key: "t/" range_end: "t0" limit: -1)", {"t/a", "t/b", "t/c", "t/d"}, false},
      // etcd 3.4.23: --sort-by=VERSION --order=DESCEND --limit=2.
      {R"(key: "t/" range_end: "t0" sort_order: DESCEND sort_target: VERSION limit: 2)",
       {"t/c", "t/b"},
       true},
      // etcd 3.4.23: --sort-by=VALUE --limit=3 (ascending by default).
      {R"(key: "t/" range_end: "t0" sort_target: VALUE limit: 3)", {"t/d", "t/b", "t/c"}, true},
      // A target other than KEY with order NONE sorts ascending; equal
      // versions (t/a, t/d) stay in key order.
      {R"(key: "t/" range_end: "t0" sort_target: VERSION)", {"t/a", "t/d", "t/b", "t/c"}, false},
      {R"(key: "t/" range_end: "t0" sort_order: DESCEND sort_target: VERSION)",
       {"t/c", "t/b", "t/a", "t/d"},
       false},
      {R"(key: "t/" range_end: "t0" sort_order: DESCEND)", {"t/d", "t/c", "t/b", "t/a"}, false},
      {R"(key: "t/" range_end: "t0" sort_order: DESCEND limit: 1)", {"t/d"}, true},
      {R"(key: "t/" range_end: "t0" sort_order: ASCEND sort_target: CREATE limit: 3)",
       {"t/a", "t/b", "t/c"},
       true},
      {R"(key: "t/" range_end: "t0" sort_order: DESCEND sort_target: MOD)",
       {"t/d", "t/c", "t/b", "t/a"},
       false},
      // Filters prune after the read; `more` counts what is left (etcd
      // 3.4.23: min_mod_revision 7 is t/c and t/d, and limit 1 has more).
      {R"(key: "t/" range_end: "t0" min_mod_revision: 7 limit: 1)", {"t/c"}, true},
      {R"(key: "t/" range_end: "t0" min_mod_revision: 7 limit: 2)", {"t/c", "t/d"}, false},
      {R"(key: "t/" range_end: "t0" max_mod_revision: 4)", {"t/a", "t/b"}, false},
      {R"(key: "t/" range_end: "t0" min_create_revision: 3 max_create_revision: 5)",
       {"t/b", "t/c"},
       false},
      {R"(key: "t/" range_end: "t0" max_create_revision: 1)", {}, false},
      // From a key on, and every key.
      {R"(key: "t/c" range_end: "\000")", {"t/c", "t/d"}, false},
      {R"(key: "\000" range_end: "\000" limit: 1)", {"t/a"}, true},
      {R"(key: "t/b")", {"t/b"}, false},
      {R"(key: "t/x")", {}, false},
  };
  for (const auto& c : cases) {
    absl::StatusOr<RangeResponse> r = Get(c.req);
    ASSERT_TRUE(r.ok()) << c.req << ": " << r.status();
    EXPECT_EQ(Keys(*r), c.keys) << c.req;
    EXPECT_EQ(r->more(), c.more) << c.req;
    EXPECT_EQ(r->header().revision(), 8) << c.req;
  }
  // count is every key in the range whatever the filters and the limit
  // (etcd 3.4.23: 4 with min_mod_revision 7 and limit 1).
  EXPECT_EQ(Get(R"(key: "t/" range_end: "t0" min_mod_revision: 7 limit: 1)")->count(), 4);
  EXPECT_EQ(Get(R"(key: "t/" range_end: "t0" max_create_revision: 1)")->count(), 4);
  EXPECT_EQ(Get(R"(key: "t/" range_end: "t0" limit: 2)")->count(), 4);
  EXPECT_EQ(Get(R"(key: "t/c" range_end: "\000")")->count(), 2);
  EXPECT_EQ(Get(R"(key: "t/x")")->count(), 0);
}

TEST_F(KvApplyTest, RangeValuesKeysOnlyCountOnly) {
  FourKeys();
  absl::StatusOr<RangeResponse> r = Get(R"(key: "t/c")");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs_size(), 1);
  EXPECT_EQ(r->kvs(0).value(), "2");
  EXPECT_EQ(r->kvs(0).create_revision(), 5);
  EXPECT_EQ(r->kvs(0).mod_revision(), 7);
  EXPECT_EQ(r->kvs(0).version(), 3);
  EXPECT_EQ(r->kvs(0).lease(), 0);

  // keys_only: no values, also when sorting by value (etcd 3.4.23).
  for (const char* req : {R"(key: "t/" range_end: "t0" keys_only: true)",
                          R"(key: "t/" range_end: "t0" keys_only: true sort_target: VALUE)"}) {
    r = Get(req);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->kvs_size(), 4) << req;
    for (const auto& kv : r->kvs()) {
      EXPECT_EQ(kv.value(), "") << req;
      EXPECT_GT(kv.mod_revision(), 0) << req;
    }
  }
  EXPECT_EQ(Keys(*Get(R"(key: "t/" range_end: "t0" keys_only: true sort_target: VALUE)")),
            (std::vector<std::string>{"t/d", "t/b", "t/c", "t/a"}));

  // count_only: the count, no kvs, no more (etcd 3.4.23, with limit 1 and
  // with a filter too).
  for (const char* req : {R"(key: "t/" range_end: "t0" count_only: true limit: 1)",
                          R"(key: "t/" range_end: "t0" count_only: true min_mod_revision: 7)"}) {
    r = Get(req);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->kvs_size(), 0) << req;
    EXPECT_EQ(r->count(), 4) << req;
    EXPECT_FALSE(r->more()) << req;
  }
}

TEST_F(KvApplyTest, RangeAtARevision) {
  FourKeys();
  // At revision 4: t/a and t/b (version 2); the header still says 8.
  absl::StatusOr<RangeResponse> r = Get(R"(key: "t/" range_end: "t0" revision: 4)");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Keys(*r), (std::vector<std::string>{"t/a", "t/b"}));
  EXPECT_EQ(r->kvs(1).version(), 2);
  EXPECT_EQ(r->count(), 2);
  EXPECT_EQ(r->header().revision(), 8);
  // Future and compacted revisions: etcd's OUT_OF_RANGE errors.
  EXPECT_TRUE(IsEtcdError(Get(R"(key: "t/a" revision: 9)").status(), Error::kFutureRev));
  ASSERT_TRUE(model_.Compact(5).ok());
  EXPECT_TRUE(IsEtcdError(Get(R"(key: "t/a" revision: 4)").status(), Error::kCompacted));
  EXPECT_TRUE(Get(R"(key: "t/a" revision: 5)").ok());
  EXPECT_TRUE(Get(R"(key: "t/a" revision: -3)").ok());  // <= 0: the latest
  EXPECT_TRUE(
      IsEtcdError(Get(R"(key: "t/a" sort_target: 12)").status(), Error::kInvalidSortOption));
}

// ---- Put (applierV3backend.Put) ----

TEST_F(KvApplyTest, PutRevisionsAndPrevKv) {
  absl::StatusOr<etcdserverpb::PutResponse> r = DoPut(R"(key: "a" value: "1" prev_kv: true)");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->header().revision(), 2);  // etcd's first write is revision 2
  EXPECT_FALSE(r->has_prev_kv());        // no previous value

  r = DoPut(R"(key: "a" value: "2" prev_kv: true)");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->header().revision(), 3);
  ASSERT_TRUE(r->has_prev_kv());
  EXPECT_EQ(r->prev_kv().value(), "1");
  EXPECT_EQ(r->prev_kv().mod_revision(), 2);
  EXPECT_EQ(r->prev_kv().version(), 1);

  r = DoPut(R"(key: "a" value: "3")");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_prev_kv());  // not asked for
  auto kv = Get(R"(key: "a")")->kvs(0);
  EXPECT_EQ(kv.value(), "3");
  EXPECT_EQ(kv.create_revision(), 2);
  EXPECT_EQ(kv.mod_revision(), 4);
  EXPECT_EQ(kv.version(), 3);
}

TEST_F(KvApplyTest, PutIgnoreValueAndLease) {
  // ignore_* need the key (etcd 3.4.23: "etcdserver: key not found"),
  // and nothing is written.
  EXPECT_TRUE(IsEtcdError(DoPut(R"(key: "a" ignore_value: true)").status(), Error::kKeyNotFound));
  EXPECT_TRUE(IsEtcdError(DoPut(R"(key: "a" value: "v" ignore_lease: true)").status(),
                          Error::kKeyNotFound));
  EXPECT_EQ(model_.revision(), 1);

  ASSERT_TRUE(DoPut(R"(key: "a" value: "1" lease: 7)", Lease7).ok());
  // ignore_value keeps the value, the lease is the request's.
  absl::StatusOr<etcdserverpb::PutResponse> r =
      DoPut(R"(key: "a" ignore_value: true prev_kv: true)");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->prev_kv().lease(), 7);
  auto kv = Get(R"(key: "a")")->kvs(0);
  EXPECT_EQ(kv.value(), "1");
  EXPECT_EQ(kv.lease(), 0);
  EXPECT_EQ(kv.version(), 2);
  EXPECT_EQ(kv.mod_revision(), 3);
  // ignore_lease keeps the lease, the value is the request's.
  ASSERT_TRUE(DoPut(R"(key: "a" value: "2" lease: 7)", Lease7).ok());
  ASSERT_TRUE(DoPut(R"(key: "a" value: "3" ignore_lease: true)").ok());
  kv = Get(R"(key: "a")")->kvs(0);
  EXPECT_EQ(kv.value(), "3");
  EXPECT_EQ(kv.lease(), 7);
}

TEST_F(KvApplyTest, PutLease) {
  // A lease that does not exist (etcd 3.4.23: "etcdserver: requested lease
  // not found", checked before ignore_value's key).
  EXPECT_TRUE(
      IsEtcdError(DoPut(R"(key: "a" value: "v" lease: 5)").status(), Error::kLeaseNotFound));
  EXPECT_TRUE(IsEtcdError(DoPut(R"(key: "a" lease: 5 ignore_value: true)").status(),
                          Error::kLeaseNotFound));
  EXPECT_TRUE(IsEtcdError(DoPut(R"(key: "a" value: "v" lease: 5)", nullptr).status(),
                          Error::kLeaseNotFound));
  EXPECT_EQ(model_.revision(), 1);
  ASSERT_TRUE(DoPut(R"(key: "a" value: "v" lease: 7)", Lease7).ok());
  EXPECT_EQ(Get(R"(key: "a")")->kvs(0).lease(), 7);
}

// ---- DeleteRange (applierV3backend.DeleteRange) ----

TEST_F(KvApplyTest, DeleteRange) {
  FourKeys();
  // Nothing to delete: no revision; the header is the current one.
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> r =
      DoDelete(Parse<DeleteRangeRequest>(R"(key: "nothing" prev_kv: true)"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->deleted(), 0);
  EXPECT_EQ(r->prev_kvs_size(), 0);
  EXPECT_EQ(r->header().revision(), 8);
  EXPECT_EQ(model_.revision(), 8);

  r = DoDelete(Parse<DeleteRangeRequest>(R"(key: "t/b" range_end: "t/d" prev_kv: true)"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->deleted(), 2);
  ASSERT_EQ(r->prev_kvs_size(), 2);
  EXPECT_EQ(r->prev_kvs(0).key(), "t/b");
  EXPECT_EQ(r->prev_kvs(0).version(), 2);
  EXPECT_EQ(r->prev_kvs(1).key(), "t/c");
  EXPECT_EQ(r->prev_kvs(1).value(), "2");
  EXPECT_EQ(r->header().revision(), 9);  // one revision for both keys

  r = DoDelete(Parse<DeleteRangeRequest>(R"(key: "t/" range_end: "\000")"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->deleted(), 2);
  EXPECT_EQ(r->prev_kvs_size(), 0);  // not asked for
  EXPECT_EQ(r->header().revision(), 10);
  EXPECT_EQ(Get(R"(key: "\000" range_end: "\000")")->count(), 0);
}

// ---- Txn (applierV3backend.Txn, applyCompare, compareKV) ----

// t/a: value "3", create 2, mod 2, version 1, lease 7; t/b: value "1",
// create 3, mod 4, version 2, no lease.
TEST_F(KvApplyTest, TxnCompares) {
  ASSERT_TRUE(DoPut(R"(key: "t/a" value: "3" lease: 7)", Lease7).ok());
  PutKv("t/b", "1");
  PutKv("t/b", "1");
  struct Case {
    const char* compare;
    bool holds;
  } cases[] = {
      {R"(key: "t/a" target: VALUE result: EQUAL value: "3")", true},
      {R"(key: "t/a" target: VALUE result: NOT_EQUAL value: "3")", false},
      {R"(key: "t/a" target: VALUE result: GREATER value: "2")", true},
      {R"(key: "t/a" target: VALUE result: LESS value: "30")", true},
      {R"(key: "t/a" target: VALUE result: GREATER value: "")", true},
      {R"(key: "t/a" target: VERSION result: EQUAL version: 1)", true},
      {R"(key: "t/a" target: VERSION result: GREATER version: 0)", true},
      {R"(key: "t/a" target: VERSION result: LESS version: 1)", false},
      {R"(key: "t/a" target: CREATE result: EQUAL create_revision: 2)", true},
      {R"(key: "t/a" target: CREATE result: LESS create_revision: 2)", false},
      {R"(key: "t/b" target: MOD result: EQUAL mod_revision: 4)", true},
      {R"(key: "t/b" target: MOD result: NOT_EQUAL mod_revision: 3)", true},
      {R"(key: "t/b" target: MOD result: GREATER mod_revision: 4)", false},
      {R"(key: "t/a" target: LEASE result: EQUAL lease: 7)", true},
      {R"(key: "t/b" target: LEASE result: EQUAL lease: 0)", true},
      {R"(key: "t/b" target: LEASE result: GREATER lease: 0)", false},
      // An operand of another kind than the target counts as zero.
      {R"(key: "t/a" target: VERSION result: GREATER value: "9")", true},
      {R"(key: "t/a" target: VALUE result: GREATER version: 9)", true},
      // A missing key (etcd 3.4.23): VALUE always fails, even against "";
      // the others compare against zero.
      {R"(key: "zz" target: VALUE result: EQUAL value: "")", false},
      {R"(key: "zz" target: VALUE result: NOT_EQUAL value: "x")", false},
      {R"(key: "zz" target: VERSION result: EQUAL version: 0)", true},
      {R"(key: "zz" target: VERSION result: GREATER version: 0)", false},
      {R"(key: "zz" target: CREATE result: LESS create_revision: 5)", true},
      {R"(key: "zz" target: MOD result: EQUAL mod_revision: 0)", true},
      {R"(key: "zz" target: LEASE result: EQUAL lease: 0)", true},
      // Ranges (etcd 3.4.23 through its JSON gateway): every key must hold.
      {R"(key: "t/" range_end: "t0" target: VERSION result: GREATER version: 0)", true},
      {R"(key: "t/" range_end: "t0" target: VERSION result: GREATER version: 1)", false},
      {R"(key: "t/" range_end: "t0" target: MOD result: LESS mod_revision: 5)", true},
      {R"(key: "t/a" range_end: "\000" target: VALUE result: NOT_EQUAL value: "3")", false},
      // An empty range compares zero values, VALUE fails.
      {R"(key: "t/x" range_end: "t/z" target: VERSION result: EQUAL version: 0)", true},
      {R"(key: "t/x" range_end: "t/z" target: VALUE result: EQUAL value: "")", false},
  };
  for (const auto& c : cases) {
    const std::string txn =
        std::string("compare { ") + c.compare + R"( } success { request_range { key: "t/a" } })";
    absl::StatusOr<TxnResponse> r = DoTxn(txn);
    ASSERT_TRUE(r.ok()) << c.compare << ": " << r.status();
    EXPECT_EQ(r->succeeded(), c.holds) << c.compare;
    EXPECT_EQ(r->responses_size(), c.holds ? 1 : 0) << c.compare;
  }
  // Several compares: all must hold.
  auto r = DoTxn(R"(compare { key: "t/a" target: VERSION result: EQUAL version: 1 }
                    compare { key: "t/b" target: VERSION result: EQUAL version: 1 })");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded());
  r = DoTxn(R"(compare { key: "t/a" target: VERSION result: EQUAL version: 1 }
               compare { key: "t/b" target: VERSION result: EQUAL version: 2 })");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->succeeded());
  EXPECT_EQ(model_.revision(), 4);  // compares and reads write nothing
}

TEST_F(KvApplyTest, TxnBranchesResponsesAndRevisions) {
  PutKv("a", "1");  // 2
  // Success: ops in order, each seeing the ones before; one revision.
  absl::StatusOr<TxnResponse> r = DoTxn(R"(
      compare { key: "a" target: VALUE result: EQUAL value: "1" }
      success { request_delete_range { key: "nothing" } }
      success { request_put { key: "b" value: "2" } }
      success { request_range { key: "\000" range_end: "\000" } }
      success { request_delete_range { key: "a" prev_kv: true } }
      success { request_range { key: "a" } }
      failure { request_put { key: "c" value: "3" } })");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->succeeded());
  EXPECT_EQ(r->header().revision(), 3);
  ASSERT_EQ(r->responses_size(), 5);
  // Each op's header has the txn's revision as it stood after the op
  // (mvcc's storeTxnWrite): nothing written yet, then 3.
  EXPECT_EQ(r->responses(0).response_delete_range().deleted(), 0);
  EXPECT_EQ(r->responses(0).response_delete_range().header().revision(), 2);
  EXPECT_EQ(r->responses(1).response_put().header().revision(), 3);
  EXPECT_EQ(Keys(r->responses(2).response_range()), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r->responses(2).response_range().header().revision(), 3);
  EXPECT_EQ(r->responses(3).response_delete_range().deleted(), 1);
  EXPECT_EQ(r->responses(3).response_delete_range().prev_kvs(0).value(), "1");
  EXPECT_EQ(r->responses(4).response_range().count(), 0);
  // The inner headers carry only the revision (cluster ids are the caller's
  // for the outer header only).
  EXPECT_EQ(r->responses(1).response_put().header().cluster_id(), 0u);
  EXPECT_EQ(model_.revision(), 3);
  EXPECT_EQ(Get(R"(key: "b")")->kvs(0).mod_revision(), 3);

  // Failure branch.
  r = DoTxn(R"(
      compare { key: "a" target: VERSION result: GREATER version: 0 }
      success { request_put { key: "s" } }
      failure { request_put { key: "f" value: "x" } }
      failure { request_range { key: "f" } })");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded());
  ASSERT_EQ(r->responses_size(), 2);
  EXPECT_TRUE(r->responses(0).has_response_put());
  EXPECT_EQ(r->responses(1).response_range().kvs(0).value(), "x");
  EXPECT_EQ(r->header().revision(), 4);
  EXPECT_EQ(Get(R"(key: "s")")->count(), 0);

  // A write txn that writes nothing (the branch taken is empty, or only
  // deletes nothing) takes no revision; its header is the current one.
  r = DoTxn(R"(
      compare { key: "a" target: VERSION result: GREATER version: 0 }
      success { request_put { key: "s" } }
      failure { request_delete_range { key: "nothing" } })");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->header().revision(), 4);
  EXPECT_EQ(model_.revision(), 4);
  r = DoTxn(R"(compare { key: "a" target: VERSION result: GREATER version: 0 }
               success { request_put { key: "s" } })");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded());
  EXPECT_EQ(r->responses_size(), 0);
  EXPECT_EQ(r->header().revision(), 4);
}

// etcd 3.4.23 (JSON gateway): the nested compare sees the store before the
// txn (n/1 absent though the parent put it first), the nested txn's header
// is empty, its range sees the parent's put.
TEST_F(KvApplyTest, TxnNested) {
  absl::StatusOr<TxnResponse> r = DoTxn(R"(
      success { request_put { key: "n/1" value: "v" } }
      success { request_txn {
        compare { key: "n/1" target: VERSION result: EQUAL version: 0 }
        success { request_range { key: "n/1" } }
        failure { request_put { key: "n/2" } } } })");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->succeeded());
  EXPECT_EQ(r->header().revision(), 2);
  ASSERT_EQ(r->responses_size(), 2);
  const TxnResponse& nested = r->responses(1).response_txn();
  EXPECT_TRUE(nested.succeeded());
  EXPECT_TRUE(nested.has_header());
  EXPECT_EQ(nested.header().revision(), 0);
  ASSERT_EQ(nested.responses_size(), 1);
  EXPECT_EQ(nested.responses(0).response_range().kvs(0).value(), "v");
  EXPECT_EQ(nested.responses(0).response_range().header().revision(), 2);

  // Two levels, failure branches: the path is followed in order.
  r = DoTxn(R"(
      compare { key: "n/1" target: VALUE result: EQUAL value: "no" }
      failure { request_txn {
        compare { key: "n/1" target: VALUE result: EQUAL value: "v" }
        success { request_txn {
          compare { key: "zz" target: VALUE result: EQUAL value: "" }
          failure { request_put { key: "n/3" value: "deep" } } } }
        success { request_put { key: "n/4" } } } }
      failure { request_txn {
        compare { key: "n/1" target: VERSION result: EQUAL version: 1 }
        success { request_put { key: "n/5" } } } })");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->succeeded());
  ASSERT_EQ(r->responses_size(), 2);
  const TxnResponse& first = r->responses(0).response_txn();
  EXPECT_TRUE(first.succeeded());
  ASSERT_EQ(first.responses_size(), 2);
  EXPECT_FALSE(first.responses(0).response_txn().succeeded());
  EXPECT_TRUE(first.responses(0).response_txn().responses(0).has_response_put());
  EXPECT_TRUE(first.responses(1).has_response_put());
  EXPECT_TRUE(r->responses(1).response_txn().succeeded());
  EXPECT_EQ(Keys(*Get(R"(key: "n/" range_end: "n0")")),
            (std::vector<std::string>{"n/1", "n/3", "n/4", "n/5"}));
  EXPECT_EQ(Get(R"(key: "n/3")")->kvs(0).value(), "deep");
  EXPECT_EQ(model_.revision(), 3);
}

// Before anything is written, etcd checks the taken path's puts (ignore_*
// need the key, a lease must exist) and its ranges' revisions; a failing
// check fails the whole txn (etcd 3.4.23 for each error below).
TEST_F(KvApplyTest, TxnChecksBeforeWriting) {
  PutKv("a", "1");  // 2
  PutKv("a", "2");  // 3
  PutKv("a", "3");  // 4
  ASSERT_TRUE(model_.Compact(3).ok());
  struct Case {
    const char* txn;
    Error error;
  } cases[] = {
      {R"(success { request_put { key: "w" } } success { request_range { key: "a" revision: 2 } })",
       Error::kCompacted},
      {R"(success { request_put { key: "w" } } success { request_range { key: "a" revision: 5 } })",
       Error::kFutureRev},
      {R"(success { request_put { key: "w" } } success { request_range { key: "a" revision: -1 } })",
       Error::kCompacted},
      {R"(success { request_put { key: "w" lease: 5 } } success { request_range { key: "a" revision: 2 } })",
       Error::kLeaseNotFound},
      {R"(success { request_put { key: "w" ignore_value: true } })", Error::kKeyNotFound},
      {R"(success { request_put { key: "w" } } success { request_txn { success { request_put { key: "x" ignore_lease: true } } } })",
       Error::kKeyNotFound},
      {R"(success { request_txn { success { request_range { key: "a" revision: 2 } } } } success { request_put { key: "w" } })",
       Error::kCompacted},
  };
  for (const auto& c : cases) {
    absl::StatusOr<TxnResponse> r = DoTxn(c.txn);
    EXPECT_TRUE(IsEtcdError(r.status(), c.error)) << c.txn << ": " << r.status();
    EXPECT_EQ(model_.revision(), 4) << c.txn;
    EXPECT_EQ(Get(R"(key: "w")")->count(), 0) << c.txn;
  }
  // Only the taken path is checked.
  absl::StatusOr<TxnResponse> r = DoTxn(R"(
      success { request_put { key: "w" } }
      failure { request_put { key: "f" lease: 5 } }
      failure { request_range { key: "a" revision: 2 } })");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(model_.revision(), 5);
  // Revision 3 (the compaction's) and the latest are readable.
  r = DoTxn(R"(success { request_range { key: "a" revision: 3 } }
               success { request_range { key: "a" revision: 5 } })");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->responses(0).response_range().kvs(0).value(), "2");
  EXPECT_EQ(r->responses(1).response_range().kvs(0).value(), "3");
  // A lease that exists.
  r = DoTxn(R"(success { request_put { key: "l" lease: 7 } })", Lease7);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Get(R"(key: "l")")->kvs(0).lease(), 7);
}

// Before any compaction etcd's first revision is -1: a txn range at -1
// passes (the latest), at -2 fails.
TEST_F(KvApplyTest, TxnNegativeRevisionBeforeCompaction) {
  PutKv("a", "1");
  EXPECT_TRUE(DoTxn(R"(success { request_range { key: "a" revision: -1 } })").ok());
  EXPECT_TRUE(IsEtcdError(DoTxn(R"(success { request_range { key: "a" revision: -2 } })").status(),
                          Error::kCompacted));
}

TEST_F(KvApplyTest, ReadOnlyTxn) {
  PutKv("a", "1");
  PutKv("b", "2");
  TxnRequest ro = Parse<TxnRequest>(R"(
      compare { key: "a" target: VALUE result: EQUAL value: "1" }
      success { request_range { key: "a" serializable: true } }
      failure { request_range { key: "b" serializable: true } })");
  EXPECT_TRUE(IsReadOnly(ro));
  EXPECT_TRUE(IsSerializable(ro));
  auto view = model_.Read();
  PutKv("a", "changed");  // after the view: not seen by it
  absl::StatusOr<TxnResponse> r = ReadOnlyTxn(*view, ro);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->succeeded());
  EXPECT_EQ(r->header().revision(), 3);
  EXPECT_EQ(r->responses(0).response_range().kvs(0).value(), "1");
  r = ReadOnlyTxn(*model_.Read(), ro);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded());
  EXPECT_EQ(r->responses(0).response_range().kvs(0).value(), "2");
  EXPECT_EQ(r->header().revision(), 4);
  // The same txn through the write path answers the same, writes nothing.
  r = DoTxn(R"(failure { request_range { key: "a" } })");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(model_.revision(), 4);
  // Revision checks hold on the read path too.
  EXPECT_TRUE(IsEtcdError(
      ReadOnlyTxn(*model_.Read(),
                  Parse<TxnRequest>(R"(success { request_range { key: "a" revision: 9 } })"))
          .status(),
      Error::kFutureRev));

  EXPECT_FALSE(IsSerializable(Parse<TxnRequest>(R"(success { request_range { key: "a" } })")));
  EXPECT_TRUE(IsReadOnly(Parse<TxnRequest>(R"(compare { key: "a" })")));
  for (const char* text :
       {R"(success { request_put { key: "a" } })",
        R"(failure { request_delete_range { key: "a" } })",
        R"(success { request_txn { success { request_range { key: "a" } } } })"}) {
    TxnRequest req = Parse<TxnRequest>(text);
    EXPECT_FALSE(IsReadOnly(req)) << text;
    EXPECT_FALSE(IsSerializable(req)) << text;
    EXPECT_EQ(ReadOnlyTxn(*model_.Read(), req).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace raftkv::server::etcd
