#include "server/etcd/context.h"

#include "absl/strings/match.h"
#include "server/etcd/errors.h"

namespace raftkv::server::etcd {

absl::Status EtcdContext::Validate() const {
  if (member_id == 0) return absl::InvalidArgumentError("member id must not be 0");
  if (node == nullptr || sm == nullptr) {
    return absl::InvalidArgumentError("the etcd services need a node and a state machine");
  }
  if (!propose || !change_membership || !member_addresses) {
    return absl::InvalidArgumentError("propose, change_membership and member_addresses are required");
  }
  if (default_deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("default_deadline must be positive");
  }
  if (max_range_bytes <= 0) return absl::InvalidArgumentError("--max_range_bytes must be positive");
  if (max_txn_ops <= 0) return absl::InvalidArgumentError("--max_txn_ops must be positive");
  if (max_request_bytes == 0) {
    return absl::InvalidArgumentError("--max_request_bytes must be positive");
  }
  return absl::OkStatus();
}

void FillHeader(const EtcdContext& c, int64_t revision, etcdserverpb::ResponseHeader* h) {
  h->set_cluster_id(c.cluster_id);
  h->set_member_id(c.member_id);
  h->set_revision(revision);
  h->set_raft_term(c.node->term());
}

absl::Status FromNode(const absl::Status& s) {
  if (s.ok() || IsEtcdError(s)) return s;
  const absl::string_view m = s.message();
  switch (s.code()) {
    case absl::StatusCode::kFailedPrecondition:
      if (absl::StartsWith(m, "not leader")) return EtcdError(Error::kNoLeader);
      break;
    case absl::StatusCode::kUnavailable:
      if (absl::StrContains(m, "shutting down")) return EtcdError(Error::kStopped);
      if (absl::StrContains(m, "leader")) return EtcdError(Error::kLeaderChanged);
      break;
    case absl::StatusCode::kDeadlineExceeded:
      return EtcdError(Error::kTimeout);
    case absl::StatusCode::kResourceExhausted:
      return EtcdError(Error::kNoSpace);
    case absl::StatusCode::kDataLoss:
      return EtcdError(Error::kCorrupt);
    default:
      break;
  }
  return s;
}

absl::Status CheckAdmin(const EtcdContext& c, const grpc::ServerContextBase& ctx) {
  return c.auth != nullptr ? c.auth->CheckAdmin(ctx) : absl::OkStatus();
}

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

absl::Time DeadlineOf(const EtcdContext& c, std::chrono::system_clock::time_point call_deadline) {
  const absl::Time now = absl::Now();
  const absl::Time d = absl::FromChrono(call_deadline);
  if (d > now + absl::Hours(1)) return now + c.default_deadline;
  return d;
}

}  // namespace raftkv::server::etcd
