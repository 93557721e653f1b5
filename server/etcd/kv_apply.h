// etcd's KV semantics over mvcc's Reader and WriteTxn, as etcd's server runs
// them (v3.4, the etcd Debian ships and our tests compare against):
//  - the checks its gRPC layer makes before proposing a request (etcd's
//    v3rpc/key.go: checkRangeRequest ... checkIntervals), and
//  - the apply of Range, Put, DeleteRange and Txn (etcd's etcdserver/apply.go,
//    applierV3backend).
// Pure functions of the request and the store view: no node, no gRPC server.
//
// Errors are etcd's gRPC errors (server/etcd/errors.h); other statuses are
// the store's (storage failures), passed unchanged. Response headers: only
// `revision` is set, as etcd sets it; cluster_id, member_id and raft_term are
// the caller's.
//
// Thread safety: pure functions; a Reader or WriteTxn is used only from the
// calling thread during the call.
#ifndef RAFTKV_SERVER_ETCD_KV_APPLY_H_
#define RAFTKV_SERVER_ETCD_KV_APPLY_H_

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "mvcc/kv.h"
#include "proto/etcd/kv.pb.h"
#include "proto/etcd/rpc.pb.h"

namespace raftkv::server::etcd {

// etcd's --max-txn-ops default.
inline constexpr int64_t kDefaultMaxTxnOps = 128;

// ---- Checks before proposing (etcd's v3rpc/key.go) ----

// Empty key: kEmptyKey. An unknown sort order or target: kInvalidSortOption
// (etcd 3.6's check; older etcds crash on these).
absl::Status CheckRangeRequest(const etcdserverpb::RangeRequest& req);
// Empty key: kEmptyKey; ignore_value with a value: kValueProvided;
// ignore_lease with a lease: kLeaseProvided.
absl::Status CheckPutRequest(const etcdserverpb::PutRequest& req);
// Empty key: kEmptyKey.
absl::Status CheckDeleteRangeRequest(const etcdserverpb::DeleteRangeRequest& req);
// etcd's checkTxnRequest then checkIntervals of both branches:
//  - more than `max_txn_ops` compares, success ops or failure ops (a nested
//    txn gets what its parent's largest list leaves): kTooManyOps;
//  - an empty compare key, or an op's own check failing (an op with no
//    request: kKeyNotFound);
//  - a branch that writes a key twice, or puts a key inside a range it
//    deletes, counting nested txns (whose success and failure branches may
//    put the same key): kDuplicateKey. As etcd's interval check, a delete
//    whose range_end is "\0" (from the key on) or not above its key
//    overlaps no put.
absl::Status CheckTxnRequest(const etcdserverpb::TxnRequest& req, int64_t max_txn_ops);

// ---- Apply ----

// Whether lease `id` exists (for Put's lease); called only for id != 0.
using LeaseExists = std::function<bool(int64_t id)>;

// etcd's Range against `view`: revision (<= 0: the latest), limit with
// `more`, `count` of every key in the range (before the revision filters),
// keys_only, count_only, min/max mod/create revision filters, sort order and
// target (a target other than KEY with order NONE sorts ascending; a sort or
// a filter reads the whole range, then applies the limit; equal sort values
// stay in key order). header.revision is view.revision() (the latest, not
// the revision asked for). Errors: kCompacted, kFutureRev,
// kInvalidSortOption.
absl::StatusOr<etcdserverpb::RangeResponse> Range(const mvcc::Reader& view,
                                                  const etcdserverpb::RangeRequest& req);

// etcd's Put: a lease != 0 that `lease_exists` denies: kLeaseNotFound;
// ignore_value/ignore_lease keep the key's current value/lease and need the
// key to exist (else kKeyNotFound); prev_kv returns the key's previous value.
// header.revision is the revision written. REQUIRES: req passed
// CheckPutRequest. On any error the caller discards `txn`.
absl::StatusOr<etcdserverpb::PutResponse> Put(mvcc::WriteTxn* txn,
                                              const etcdserverpb::PutRequest& req,
                                              const LeaseExists& lease_exists);

// etcd's DeleteRange: `deleted` keys, their last values in prev_kvs when
// asked. header.revision is the txn's revision after it (unchanged when
// nothing was deleted). REQUIRES: req passed CheckDeleteRangeRequest. On any
// error the caller discards `txn`.
absl::StatusOr<etcdserverpb::DeleteRangeResponse> DeleteRange(
    mvcc::WriteTxn* txn, const etcdserverpb::DeleteRangeRequest& req);

// etcd's Txn: every compare of the branches taken (nested ones too) is
// evaluated first, against the store before the txn; then, before anything
// is written, the puts of the taken path are checked (ignore_* need the key:
// kKeyNotFound; a lease must exist: kLeaseNotFound) and its ranges'
// revisions (kFutureRev, kCompacted); then the ops run in order, each seeing
// the ones before it. A compare holds when every key in [key, range_end)
// satisfies it; with no such key, a VALUE compare fails and the others
// compare against zero (etcd's applyCompare). header.revision: the txn's
// revision after it; a nested txn's header is empty, as etcd's.
// REQUIRES: req passed CheckTxnRequest. On any error the caller discards
// `txn` (nothing was written unless the store failed).
absl::StatusOr<etcdserverpb::TxnResponse> Txn(mvcc::WriteTxn* txn,
                                              const etcdserverpb::TxnRequest& req,
                                              const LeaseExists& lease_exists);

// Whether every op of both branches is a Range (no nested txn): etcd serves
// such a txn without the log, from a read view (etcd's isTxnReadonly).
bool IsReadOnly(const etcdserverpb::TxnRequest& req);
// Whether every op of both branches is a serializable Range (etcd's
// isTxnSerializable): no linearizable read needed first.
bool IsSerializable(const etcdserverpb::TxnRequest& req);

// Txn of a read-only request against a read view; header.revision is
// view.revision(). InvalidArgument when !IsReadOnly(req).
absl::StatusOr<etcdserverpb::TxnResponse> ReadOnlyTxn(const mvcc::Reader& view,
                                                      const etcdserverpb::TxnRequest& req);

// mvcc's KeyValue as etcd's (Raft index dropped).
void ToProto(const mvcc::KeyValue& kv, mvccpb::KeyValue* out);

}  // namespace raftkv::server::etcd

#endif  // RAFTKV_SERVER_ETCD_KV_APPLY_H_
