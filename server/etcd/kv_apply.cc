#include "server/etcd/kv_apply.h"

#include <algorithm>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/etcd/errors.h"

namespace raftkv::server::etcd {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::DeleteRangeRequest;
using etcdserverpb::DeleteRangeResponse;
using etcdserverpb::PutRequest;
using etcdserverpb::PutResponse;
using etcdserverpb::RangeRequest;
using etcdserverpb::RangeResponse;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;
using etcdserverpb::TxnResponse;
using Ops = google::protobuf::RepeatedPtrField<RequestOp>;

// ---- checks ----

// etcd's checkTxnRequest, without the interval check (done once, at the top).
absl::Status CheckTxnOps(const TxnRequest& req, int64_t max_txn_ops);

absl::Status CheckRequestOp(const RequestOp& op, int64_t max_txn_ops) {
  switch (op.request_case()) {
    case RequestOp::kRequestRange:
      return CheckRangeRequest(op.request_range());
    case RequestOp::kRequestPut:
      return CheckPutRequest(op.request_put());
    case RequestOp::kRequestDeleteRange:
      return CheckDeleteRangeRequest(op.request_delete_range());
    case RequestOp::kRequestTxn:
      return CheckTxnOps(op.request_txn(), max_txn_ops);
    case RequestOp::REQUEST_NOT_SET:
      break;
  }
  return EtcdError(Error::kKeyNotFound);  // etcd's answer to an empty op
}

absl::Status CheckTxnOps(const TxnRequest& req, int64_t max_txn_ops) {
  const int64_t opc = std::max({req.compare_size(), req.success_size(), req.failure_size()});
  if (opc > max_txn_ops) return EtcdError(Error::kTooManyOps);
  for (const Compare& c : req.compare()) {
    if (c.key().empty()) return EtcdError(Error::kEmptyKey);
  }
  for (const Ops* ops : {&req.success(), &req.failure()}) {
    for (const RequestOp& op : *ops) {
      absl::Status s = CheckRequestOp(op, max_txn_ops - opc);
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

// A deleted range [begin, end), a single key k as [k, k + "\0"): etcd's
// adt.StringAffineInterval. An interval with end <= begin (range_end "\0",
// or below the key) holds no key.
struct Interval {
  std::string begin, end;
};

bool Intersects(const std::vector<Interval>& dels, const std::string& key) {
  for (const Interval& d : dels) {
    if (d.begin <= key && key < d.end) return true;
  }
  return false;
}

// etcd's checkIntervals: the puts and deletes of `ops` (with their nested
// txns'), or kDuplicateKey.
absl::Status CheckIntervals(const Ops& ops, std::set<std::string>* puts,
                            std::vector<Interval>* dels) {
  for (const RequestOp& op : ops) {
    if (!op.has_request_delete_range()) continue;
    const DeleteRangeRequest& d = op.request_delete_range();
    dels->push_back(d.range_end().empty() ? Interval{d.key(), d.key() + std::string(1, '\0')}
                                          : Interval{d.key(), d.range_end()});
  }
  for (const RequestOp& op : ops) {
    if (!op.has_request_txn()) continue;
    std::set<std::string> puts_then, puts_else;
    std::vector<Interval> dels_then, dels_else;
    absl::Status s = CheckIntervals(op.request_txn().success(), &puts_then, &dels_then);
    if (s.ok()) s = CheckIntervals(op.request_txn().failure(), &puts_else, &dels_else);
    if (!s.ok()) return s;
    for (const std::string& k : puts_then) {
      if (puts->count(k) > 0 || Intersects(*dels, k)) return EtcdError(Error::kDuplicateKey);
      puts->insert(k);
    }
    for (const std::string& k : puts_else) {
      // Then and else exclude each other: the same key in both is fine.
      if (puts->count(k) > 0 && puts_then.count(k) == 0) return EtcdError(Error::kDuplicateKey);
      if (Intersects(*dels, k)) return EtcdError(Error::kDuplicateKey);
      puts->insert(k);
    }
    dels->insert(dels->end(), dels_then.begin(), dels_then.end());
    dels->insert(dels->end(), dels_else.begin(), dels_else.end());
  }
  for (const RequestOp& op : ops) {
    if (!op.has_request_put()) continue;
    const std::string& k = op.request_put().key();
    if (puts->count(k) > 0 || Intersects(*dels, k)) return EtcdError(Error::kDuplicateKey);
    puts->insert(k);
  }
  return absl::OkStatus();
}

// ---- range ----

bool HasRevisionFilters(const RangeRequest& r) {
  return r.min_mod_revision() != 0 || r.max_mod_revision() != 0 || r.min_create_revision() != 0 ||
         r.max_create_revision() != 0;
}

// The sort key comparison of etcd's kvSortBy* types.
bool SortLess(RangeRequest::SortTarget target, const mvcc::KeyValue& a, const mvcc::KeyValue& b) {
  switch (target) {
    case RangeRequest::VERSION:
      return a.version < b.version;
    case RangeRequest::CREATE:
      return a.create_revision < b.create_revision;
    case RangeRequest::MOD:
      return a.mod_revision < b.mod_revision;
    case RangeRequest::VALUE:
      return a.value < b.value;
    default:
      return a.key < b.key;
  }
}

// ---- put, delete ----

// etcd's applierV3backend.Put inside a txn (the lease already checked).
absl::StatusOr<PutResponse> ApplyPut(mvcc::WriteTxn* txn, const PutRequest& req) {
  PutResponse resp;
  std::string value = req.value();
  int64_t lease = req.lease();
  if (req.ignore_value() || req.ignore_lease()) {
    absl::StatusOr<mvcc::RangeResult> rr = txn->Range(req.key(), "", mvcc::RangeOptions());
    if (!rr.ok()) return FromMvcc(rr.status());
    if (rr->kvs.empty()) return EtcdError(Error::kKeyNotFound);
    if (req.ignore_value()) value = rr->kvs[0].value;
    if (req.ignore_lease()) lease = rr->kvs[0].lease;
  }
  absl::StatusOr<std::optional<mvcc::KeyValue>> prev = txn->Put(req.key(), value, lease,
                                                              req.prev_kv() ? mvcc::PrevKv::kReturn : mvcc::PrevKv::kSkip);
  if (!prev.ok()) return FromMvcc(prev.status());
  if (req.prev_kv() && prev->has_value()) ToProto(**prev, resp.mutable_prev_kv());
  resp.mutable_header()->set_revision(txn->revision());
  return resp;
}

// ---- txn ----

// etcd's compareKV: `kv` against the compare's operand.
bool CompareKv(const Compare& c, const mvcc::KeyValue& kv) {
  int result = 0;
  auto cmp = [](int64_t a, int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); };
  switch (c.target()) {
    case Compare::VALUE: {
      absl::string_view v;  // another operand than a value compares as ""
      if (c.target_union_case() == Compare::kValue) v = c.value();
      int r = absl::string_view(kv.value).compare(v);
      result = r < 0 ? -1 : (r > 0 ? 1 : 0);
      break;
    }
    case Compare::CREATE:
      result = cmp(kv.create_revision,
                   c.target_union_case() == Compare::kCreateRevision ? c.create_revision() : 0);
      break;
    case Compare::MOD:
      result = cmp(kv.mod_revision,
                   c.target_union_case() == Compare::kModRevision ? c.mod_revision() : 0);
      break;
    case Compare::VERSION:
      result = cmp(kv.version, c.target_union_case() == Compare::kVersion ? c.version() : 0);
      break;
    case Compare::LEASE:
      result = cmp(kv.lease, c.target_union_case() == Compare::kLease ? c.lease() : 0);
      break;
    default:
      break;
  }
  switch (c.result()) {
    case Compare::EQUAL:
      return result == 0;
    case Compare::NOT_EQUAL:
      return result != 0;
    case Compare::GREATER:
      return result > 0;
    case Compare::LESS:
      return result < 0;
    default:
      return true;
  }
}

// etcd's applyCompare. A store failure fails the txn (etcd reads it as a
// false compare; a read error here is a storage error, not an answer).
absl::StatusOr<bool> ApplyCompare(const mvcc::Reader& view, const Compare& c) {
  absl::StatusOr<mvcc::RangeResult> rr = view.Range(c.key(), c.range_end(), mvcc::RangeOptions());
  if (!rr.ok()) return FromMvcc(rr.status());
  if (rr->kvs.empty()) {
    // A missing value cannot be told from an empty one: always false.
    if (c.target() == Compare::VALUE) return false;
    return CompareKv(c, mvcc::KeyValue());
  }
  for (const mvcc::KeyValue& kv : rr->kvs) {
    if (!CompareKv(c, kv)) return false;
  }
  return true;
}

// etcd's compareToPath: whether each txn of the taken path succeeded, in
// pre-order (the txn, then its taken branch's nested txns).
absl::Status ComparePath(const mvcc::Reader& view, const TxnRequest& req, std::vector<bool>* path) {
  bool ok = true;
  for (const Compare& c : req.compare()) {
    absl::StatusOr<bool> holds = ApplyCompare(view, c);
    if (!holds.ok()) return holds.status();
    if (!*holds) {
      ok = false;
      break;
    }
  }
  path->push_back(ok);
  for (const RequestOp& op : ok ? req.success() : req.failure()) {
    if (!op.has_request_txn()) continue;
    absl::Status s = ComparePath(view, op.request_txn(), path);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// etcd's checkRequests: `check` on every non-txn op of the taken path.
template <typename Check>
absl::Status CheckPath(const TxnRequest& req, const std::vector<bool>& path, size_t* pos,
                       const Check& check) {
  const bool ok = path[(*pos)++];
  for (const RequestOp& op : ok ? req.success() : req.failure()) {
    absl::Status s =
        op.has_request_txn() ? CheckPath(op.request_txn(), path, pos, check) : check(op);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// etcd's applyTxn. `write` is null for a read-only txn; ranges read `write`
// (seeing the txn's earlier ops) when there is one.
absl::Status ApplyPath(const mvcc::Reader& view, mvcc::WriteTxn* write, const TxnRequest& req,
                       const std::vector<bool>& path, size_t* pos, TxnResponse* resp) {
  const bool ok = path[(*pos)++];
  resp->set_succeeded(ok);
  resp->mutable_header();  // etcd sends a nested txn's header, empty
  for (const RequestOp& op : ok ? req.success() : req.failure()) {
    etcdserverpb::ResponseOp* out = resp->add_responses();
    switch (op.request_case()) {
      case RequestOp::kRequestRange: {
        absl::StatusOr<RangeResponse> r =
            Range(write != nullptr ? *write : view, op.request_range());
        if (!r.ok()) return r.status();
        *out->mutable_response_range() = std::move(*r);
        break;
      }
      case RequestOp::kRequestPut: {
        if (write == nullptr)
          return absl::InvalidArgumentError("etcd txn: a put in a read-only txn");
        absl::StatusOr<PutResponse> r = ApplyPut(write, op.request_put());
        if (!r.ok()) return r.status();
        *out->mutable_response_put() = std::move(*r);
        break;
      }
      case RequestOp::kRequestDeleteRange: {
        if (write == nullptr) {
          return absl::InvalidArgumentError("etcd txn: a delete in a read-only txn");
        }
        absl::StatusOr<DeleteRangeResponse> r = DeleteRange(write, op.request_delete_range());
        if (!r.ok()) return r.status();
        *out->mutable_response_delete_range() = std::move(*r);
        break;
      }
      case RequestOp::kRequestTxn: {
        absl::Status s =
            ApplyPath(view, write, op.request_txn(), path, pos, out->mutable_response_txn());
        if (!s.ok()) return s;
        break;
      }
      case RequestOp::REQUEST_NOT_SET:
        break;  // refused by CheckTxnRequest; an empty answer as etcd's
    }
  }
  return absl::OkStatus();
}

// etcd's applierV3backend.Txn over `view` (the txn's reads) and `write`
// (null for a read-only txn).
absl::StatusOr<TxnResponse> RunTxn(const mvcc::Reader& view, mvcc::WriteTxn* write,
                                   const TxnRequest& req, const LeaseExists& lease_exists) {
  std::vector<bool> path;
  absl::Status s = ComparePath(view, req, &path);
  if (!s.ok()) return s;
  if (write != nullptr) {
    size_t pos = 0;
    s = CheckPath(req, path, &pos, [&](const RequestOp& op) -> absl::Status {
      if (!op.has_request_put()) return absl::OkStatus();
      const PutRequest& put = op.request_put();
      if (put.ignore_value() || put.ignore_lease()) {
        absl::StatusOr<mvcc::RangeResult> rr = view.Range(put.key(), "", mvcc::RangeOptions());
        if (!rr.ok()) return FromMvcc(rr.status());
        if (rr->kvs.empty()) return EtcdError(Error::kKeyNotFound);
      }
      if (put.lease() != 0 && !(lease_exists && lease_exists(put.lease()))) {
        return EtcdError(Error::kLeaseNotFound);
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
  }
  size_t pos = 0;
  s = CheckPath(req, path, &pos, [&](const RequestOp& op) -> absl::Status {
    if (!op.has_request_range()) return absl::OkStatus();
    const int64_t rev = op.request_range().revision();
    if (rev == 0) return absl::OkStatus();
    if (rev > view.revision()) return EtcdError(Error::kFutureRev);
    // etcd's first revision is -1 until a compaction: -1 passes, -2 fails.
    const int64_t first = view.compact_revision() == 0 ? -1 : view.compact_revision();
    if (rev < first) return EtcdError(Error::kCompacted);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;

  TxnResponse resp;
  pos = 0;
  s = ApplyPath(view, write, req, path, &pos, &resp);
  if (!s.ok()) return s;
  resp.mutable_header()->set_revision(write != nullptr ? write->revision() : view.revision());
  return resp;
}

}  // namespace

absl::Status CheckRangeRequest(const RangeRequest& req) {
  if (req.key().empty()) return EtcdError(Error::kEmptyKey);
  if (!RangeRequest::SortOrder_IsValid(req.sort_order()) ||
      !RangeRequest::SortTarget_IsValid(req.sort_target())) {
    return EtcdError(Error::kInvalidSortOption);
  }
  return absl::OkStatus();
}

absl::Status CheckPutRequest(const PutRequest& req) {
  if (req.key().empty()) return EtcdError(Error::kEmptyKey);
  if (req.ignore_value() && !req.value().empty()) return EtcdError(Error::kValueProvided);
  if (req.ignore_lease() && req.lease() != 0) return EtcdError(Error::kLeaseProvided);
  return absl::OkStatus();
}

absl::Status CheckDeleteRangeRequest(const DeleteRangeRequest& req) {
  if (req.key().empty()) return EtcdError(Error::kEmptyKey);
  return absl::OkStatus();
}

absl::Status CheckTxnRequest(const TxnRequest& req, int64_t max_txn_ops) {
  absl::Status s = CheckTxnOps(req, max_txn_ops);
  // After the op checks, so the interval check never runs on a huge request.
  for (const Ops* ops : {&req.success(), &req.failure()}) {
    if (!s.ok()) break;
    std::set<std::string> puts;
    std::vector<Interval> dels;
    s = CheckIntervals(*ops, &puts, &dels);
  }
  return s;
}

absl::StatusOr<RangeResponse> Range(const mvcc::Reader& view, const RangeRequest& req) {
  if (!RangeRequest::SortOrder_IsValid(req.sort_order()) ||
      !RangeRequest::SortTarget_IsValid(req.sort_target())) {
    return EtcdError(Error::kInvalidSortOption);
  }
  // A sort or a filter needs the whole range; otherwise one key past the
  // limit tells `more`.
  int64_t limit = req.limit();
  if (req.sort_order() != RangeRequest::NONE || HasRevisionFilters(req)) limit = 0;
  if (limit > 0 && limit < std::numeric_limits<int64_t>::max()) ++limit;

  mvcc::RangeOptions options;
  options.revision = req.revision();
  options.limit = limit;
  options.count_only = req.count_only();
  options.keys_only = req.keys_only() && req.sort_target() != RangeRequest::VALUE;
  absl::StatusOr<mvcc::RangeResult> rr = view.Range(req.key(), req.range_end(), options);
  if (!rr.ok()) return FromMvcc(rr.status());
  std::vector<mvcc::KeyValue>& kvs = rr->kvs;

  if (HasRevisionFilters(req)) {
    kvs.erase(std::remove_if(kvs.begin(), kvs.end(),
                             [&](const mvcc::KeyValue& kv) {
                               return (req.max_mod_revision() != 0 &&
                                       kv.mod_revision > req.max_mod_revision()) ||
                                      (req.min_mod_revision() != 0 &&
                                       kv.mod_revision < req.min_mod_revision()) ||
                                      (req.max_create_revision() != 0 &&
                                       kv.create_revision > req.max_create_revision()) ||
                                      (req.min_create_revision() != 0 &&
                                       kv.create_revision < req.min_create_revision());
                             }),
              kvs.end());
  }

  RangeRequest::SortOrder order = req.sort_order();
  if (req.sort_target() != RangeRequest::KEY && order == RangeRequest::NONE) {
    order = RangeRequest::ASCEND;
  }
  // Stable, so equal values stay in key order (etcd's sort.Sort keeps them so
  // for small ranges, and leaves them unspecified for large ones).
  const RangeRequest::SortTarget target = req.sort_target();
  if (order == RangeRequest::ASCEND) {
    std::stable_sort(kvs.begin(), kvs.end(),
                     [target](const auto& a, const auto& b) { return SortLess(target, a, b); });
  } else if (order == RangeRequest::DESCEND) {
    std::stable_sort(kvs.begin(), kvs.end(),
                     [target](const auto& a, const auto& b) { return SortLess(target, b, a); });
  }

  RangeResponse resp;
  if (req.limit() > 0 && static_cast<int64_t>(kvs.size()) > req.limit()) {
    kvs.resize(req.limit());
    resp.set_more(true);
  }
  resp.mutable_header()->set_revision(view.revision());
  resp.set_count(rr->count);
  for (const mvcc::KeyValue& kv : kvs) {
    mvccpb::KeyValue* out = resp.add_kvs();
    ToProto(kv, out);
    if (req.keys_only()) out->clear_value();
  }
  return resp;
}

absl::StatusOr<PutResponse> Put(mvcc::WriteTxn* txn, const PutRequest& req,
                                const LeaseExists& lease_exists) {
  if (req.lease() != 0 && !(lease_exists && lease_exists(req.lease()))) {
    return EtcdError(Error::kLeaseNotFound);
  }
  return ApplyPut(txn, req);
}

absl::StatusOr<DeleteRangeResponse> DeleteRange(mvcc::WriteTxn* txn,
                                                const DeleteRangeRequest& req) {
  absl::StatusOr<std::vector<mvcc::KeyValue>> deleted =
      txn->DeleteRange(req.key(), req.range_end());
  if (!deleted.ok()) return FromMvcc(deleted.status());
  DeleteRangeResponse resp;
  resp.set_deleted(static_cast<int64_t>(deleted->size()));
  if (req.prev_kv()) {
    for (const mvcc::KeyValue& kv : *deleted) ToProto(kv, resp.add_prev_kvs());
  }
  resp.mutable_header()->set_revision(txn->revision());
  return resp;
}

absl::StatusOr<TxnResponse> Txn(mvcc::WriteTxn* txn, const TxnRequest& req,
                                const LeaseExists& lease_exists) {
  // A read-only txn on a write txn runs as etcd's: no put checks, no writes.
  return RunTxn(*txn, IsReadOnly(req) ? nullptr : txn, req, lease_exists);
}

bool IsReadOnly(const TxnRequest& req) {
  for (const Ops* ops : {&req.success(), &req.failure()}) {
    for (const RequestOp& op : *ops) {
      if (!op.has_request_range()) return false;
    }
  }
  return true;
}

bool IsSerializable(const TxnRequest& req) {
  for (const Ops* ops : {&req.success(), &req.failure()}) {
    for (const RequestOp& op : *ops) {
      if (!op.has_request_range() || !op.request_range().serializable()) return false;
    }
  }
  return true;
}

absl::StatusOr<TxnResponse> ReadOnlyTxn(const mvcc::Reader& view, const TxnRequest& req) {
  if (!IsReadOnly(req)) return absl::InvalidArgumentError("etcd txn: not read-only");
  return RunTxn(view, nullptr, req, nullptr);
}

void ToProto(const mvcc::KeyValue& kv, mvccpb::KeyValue* out) {
  out->set_key(kv.key);
  out->set_value(kv.value);
  out->set_create_revision(kv.create_revision);
  out->set_mod_revision(kv.mod_revision);
  out->set_version(kv.version);
  out->set_lease(kv.lease);
}

}  // namespace raftkv::server::etcd
