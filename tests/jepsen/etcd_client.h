// EtcdClient: a small client of etcd's KV service (etcdserverpb.KV,
// proto/etcd/rpc.proto) for the fault runs' etcd-API mode (runner.h).
//
// It behaves as etcd's clients do towards a cluster: it talks to one member
// at a time (any member serves any call; followers forward writes to the
// leader) and moves to the next member after a call that got no answer
// (UNAVAILABLE, e.g. the connection closed or "etcdserver: leader changed",
// or DEADLINE_EXCEEDED: a paused or cut-off member). Writes are one call
// each, never retried: a write whose answer was lost may have been applied,
// and the caller must treat it as unknown. Reads may be retried
// (RangeRetrying), since a Range has no effect.
//
// Errors are the server's gRPC status as an absl::Status (same code and
// message, so etcd's texts such as "etcdserver: request timed out" show).
//
// Thread safety: not thread-safe; one client per thread. The stubs from
// member() may be used from the owning thread only, like the client.
#ifndef RAFTKV_TESTS_JEPSEN_ETCD_CLIENT_H_
#define RAFTKV_TESTS_JEPSEN_ETCD_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/etcd/rpc.grpc.pb.h"

namespace raftkv::jepsen {

class EtcdClient {
 public:
  // One channel per endpoint ("host:port"); the first call goes to
  // endpoints[first % size]. REQUIRES: !endpoints.empty().
  EtcdClient(const std::vector<std::string>& endpoints,
             const std::shared_ptr<grpc::ChannelCredentials>& credentials, size_t first = 0);
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // One call each to the current member with deadline now + timeout.
  absl::StatusOr<etcdserverpb::PutResponse> Put(const std::string& key, const std::string& value,
                                                absl::Duration timeout);
  absl::StatusOr<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& req,
                                                    absl::Duration timeout);
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> Delete(const std::string& key,
                                                           absl::Duration timeout);
  absl::StatusOr<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& req,
                                                absl::Duration timeout);

  // Range, retried on the next members after a call with no answer, each
  // attempt at most `attempt` long, until `total` is used up: the last
  // error then.
  absl::StatusOr<etcdserverpb::RangeResponse> RangeRetrying(const etcdserverpb::RangeRequest& req,
                                                            absl::Duration attempt,
                                                            absl::Duration total);

  // The stub of endpoints[i], for calls to one chosen member.
  etcdserverpb::KV::Stub* member(size_t i) { return stubs_.at(i).get(); }
  size_t size() const { return stubs_.size(); }
  size_t current() const { return current_; }

  // Whether `s` means the member gave no answer (UNAVAILABLE or
  // DEADLINE_EXCEEDED): the client then moves on to the next member.
  static bool NoAnswer(const absl::Status& s);

 private:
  // Notes the outcome of a call to the current member.
  void After(const absl::Status& s);

  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs_;
  size_t current_;
};

// The compare-and-swap the fault runs send as a Txn: if `key`'s value is
// `expected_value` (by_mod false; an absent key never matches) or its
// mod_revision is `expected_mod` (by_mod true; 0: the key is absent), put
// `value`; else read the key (the failure branch's one Range shows its
// state at the txn's revision).
etcdserverpb::TxnRequest CasTxn(const std::string& key, bool by_mod,
                                const std::string& expected_value, int64_t expected_mod,
                                const std::string& value);

// A Range of one key, or of every key starting with `prefix`.
etcdserverpb::RangeRequest KeyRange(const std::string& key, bool serializable);
etcdserverpb::RangeRequest PrefixRange(const std::string& prefix, bool serializable);

// `s` as an absl::Status (same code and message).
absl::Status FromGrpc(const grpc::Status& s);

}  // namespace raftkv::jepsen

#endif  // RAFTKV_TESTS_JEPSEN_ETCD_CLIENT_H_
