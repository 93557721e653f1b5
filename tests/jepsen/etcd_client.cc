#include "tests/jepsen/etcd_client.h"

#include "absl/time/clock.h"

namespace raftkv::jepsen {
namespace {

// Runs `call` on the current member's stub with a deadline `timeout` away.
template <typename Resp, typename Call>
absl::StatusOr<Resp> CallOne(etcdserverpb::KV::Stub* stub, absl::Duration timeout, Call call) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  Resp resp;
  grpc::Status s = call(stub, &ctx, &resp);
  if (!s.ok()) return FromGrpc(s);
  return resp;
}

}  // namespace

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

EtcdClient::EtcdClient(const std::vector<std::string>& endpoints,
                       const std::shared_ptr<grpc::ChannelCredentials>& credentials, size_t first)
    : current_(first % endpoints.size()) {
  for (const std::string& e : endpoints) {
    stubs_.push_back(etcdserverpb::KV::NewStub(grpc::CreateChannel(e, credentials)));
  }
}

bool EtcdClient::NoAnswer(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded;
}

void EtcdClient::After(const absl::Status& s) {
  if (NoAnswer(s)) current_ = (current_ + 1) % stubs_.size();
}

absl::StatusOr<etcdserverpb::PutResponse> EtcdClient::Put(const std::string& key,
                                                          const std::string& value,
                                                          absl::Duration timeout) {
  etcdserverpb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  auto r = CallOne<etcdserverpb::PutResponse>(
      stubs_[current_].get(), timeout,
      [&req](etcdserverpb::KV::Stub* st, grpc::ClientContext* ctx,
             etcdserverpb::PutResponse* resp) { return st->Put(ctx, req, resp); });
  After(r.status());
  return r;
}

absl::StatusOr<etcdserverpb::RangeResponse> EtcdClient::Range(
    const etcdserverpb::RangeRequest& req, absl::Duration timeout) {
  auto r = CallOne<etcdserverpb::RangeResponse>(
      stubs_[current_].get(), timeout,
      [&req](etcdserverpb::KV::Stub* st, grpc::ClientContext* ctx,
             etcdserverpb::RangeResponse* resp) { return st->Range(ctx, req, resp); });
  After(r.status());
  return r;
}

absl::StatusOr<etcdserverpb::DeleteRangeResponse> EtcdClient::Delete(const std::string& key,
                                                                     absl::Duration timeout) {
  etcdserverpb::DeleteRangeRequest req;
  req.set_key(key);
  auto r = CallOne<etcdserverpb::DeleteRangeResponse>(
      stubs_[current_].get(), timeout,
      [&req](etcdserverpb::KV::Stub* st, grpc::ClientContext* ctx,
             etcdserverpb::DeleteRangeResponse* resp) { return st->DeleteRange(ctx, req, resp); });
  After(r.status());
  return r;
}

absl::StatusOr<etcdserverpb::TxnResponse> EtcdClient::Txn(const etcdserverpb::TxnRequest& req,
                                                          absl::Duration timeout) {
  auto r = CallOne<etcdserverpb::TxnResponse>(
      stubs_[current_].get(), timeout,
      [&req](etcdserverpb::KV::Stub* st, grpc::ClientContext* ctx,
             etcdserverpb::TxnResponse* resp) { return st->Txn(ctx, req, resp); });
  After(r.status());
  return r;
}

absl::StatusOr<etcdserverpb::RangeResponse> EtcdClient::RangeRetrying(
    const etcdserverpb::RangeRequest& req, absl::Duration attempt, absl::Duration total) {
  const absl::Time end = absl::Now() + total;
  for (;;) {
    const absl::Duration left = end - absl::Now();
    auto r = Range(req, std::min(attempt, std::max(left, absl::Milliseconds(1))));
    if (r.ok() || !NoAnswer(r.status()) || absl::Now() >= end) return r;
    // A short pause, so a member that refuses at once is not hammered.
    absl::SleepFor(std::min(absl::Milliseconds(20), end - absl::Now()));
  }
}

etcdserverpb::TxnRequest CasTxn(const std::string& key, bool by_mod,
                                const std::string& expected_value, int64_t expected_mod,
                                const std::string& value) {
  etcdserverpb::TxnRequest t;
  etcdserverpb::Compare* c = t.add_compare();
  c->set_key(key);
  c->set_result(etcdserverpb::Compare::EQUAL);
  if (by_mod) {
    c->set_target(etcdserverpb::Compare::MOD);
    c->set_mod_revision(expected_mod);
  } else {
    c->set_target(etcdserverpb::Compare::VALUE);
    c->set_value(expected_value);
  }
  etcdserverpb::PutRequest* put = t.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  t.add_failure()->mutable_request_range()->set_key(key);
  return t;
}

etcdserverpb::RangeRequest KeyRange(const std::string& key, bool serializable) {
  etcdserverpb::RangeRequest r;
  r.set_key(key);
  r.set_serializable(serializable);
  return r;
}

etcdserverpb::RangeRequest PrefixRange(const std::string& prefix, bool serializable) {
  etcdserverpb::RangeRequest r = KeyRange(prefix, serializable);
  // etcd's prefix end: the prefix with its last byte below 0xff incremented
  // and what follows dropped; "\0" (every key from it on) if there is none.
  std::string end = prefix;
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) {
    r.set_range_end(std::string(1, '\0'));
  } else {
    end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
    r.set_range_end(end);
  }
  return r;
}

}  // namespace raftkv::jepsen
