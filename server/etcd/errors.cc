#include "server/etcd/errors.h"

#include "absl/strings/match.h"

#include "absl/strings/string_view.h"
#include "mvcc/kv.h"

namespace raftkv::server::etcd {
namespace {

struct Entry {
  absl::StatusCode code;
  absl::string_view message;
};

// Codes and messages as etcd's rpctypes/error.go (v3.4; the sort option
// error from v3.6, permission not given from v3.5).
Entry Lookup(Error e) {
  using C = absl::StatusCode;
  switch (e) {
    case Error::kEmptyKey:
      return {C::kInvalidArgument, "etcdserver: key is not provided"};
    case Error::kKeyNotFound:
      return {C::kInvalidArgument, "etcdserver: key not found"};
    case Error::kValueProvided:
      return {C::kInvalidArgument, "etcdserver: value is provided"};
    case Error::kLeaseProvided:
      return {C::kInvalidArgument, "etcdserver: lease is provided"};
    case Error::kTooManyOps:
      return {C::kInvalidArgument, "etcdserver: too many operations in txn request"};
    case Error::kDuplicateKey:
      return {C::kInvalidArgument, "etcdserver: duplicate key given in txn request"};
    case Error::kInvalidSortOption:
      return {C::kInvalidArgument, "etcdserver: invalid sort option"};
    case Error::kRequestTooLarge:
      return {C::kInvalidArgument, "etcdserver: request is too large"};
    case Error::kCompacted:
      return {C::kOutOfRange, "etcdserver: mvcc: required revision has been compacted"};
    case Error::kFutureRev:
      return {C::kOutOfRange, "etcdserver: mvcc: required revision is a future revision"};
    case Error::kNoSpace:
      return {C::kResourceExhausted, "etcdserver: mvcc: database space exceeded"};
    case Error::kTooManyRequests:
      return {C::kResourceExhausted, "etcdserver: too many requests"};
    case Error::kLeaseNotFound:
      return {C::kNotFound, "etcdserver: requested lease not found"};
    case Error::kLeaseExist:
      return {C::kFailedPrecondition, "etcdserver: lease already exists"};
    case Error::kLeaseTTLTooLarge:
      return {C::kOutOfRange, "etcdserver: too large lease TTL"};
    case Error::kMemberExist:
      return {C::kFailedPrecondition, "etcdserver: member ID already exist"};
    case Error::kPeerURLExist:
      return {C::kFailedPrecondition, "etcdserver: Peer URLs already exists"};
    case Error::kMemberNotEnoughStarted:
      return {C::kFailedPrecondition,
              "etcdserver: re-configuration failed due to not enough started members"};
    case Error::kMemberBadURLs:
      return {C::kInvalidArgument, "etcdserver: given member URLs are invalid"};
    case Error::kMemberNotFound:
      return {C::kNotFound, "etcdserver: member not found"};
    case Error::kMemberNotLearner:
      return {C::kFailedPrecondition, "etcdserver: can only promote a learner member"};
    case Error::kLearnerNotReady:
      return {C::kFailedPrecondition,
              "etcdserver: can only promote a learner member which is in sync with leader"};
    case Error::kTooManyLearners:
      return {C::kFailedPrecondition, "etcdserver: too many learner members in cluster"};
    case Error::kNoLeader:
      return {C::kUnavailable, "etcdserver: no leader"};
    case Error::kNotLeader:
      return {C::kFailedPrecondition, "etcdserver: not leader"};
    case Error::kLeaderChanged:
      return {C::kUnavailable, "etcdserver: leader changed"};
    case Error::kStopped:
      return {C::kUnavailable, "etcdserver: server stopped"};
    case Error::kTimeout:
      return {C::kUnavailable, "etcdserver: request timed out"};
    case Error::kTimeoutDueToLeaderFail:
      return {C::kUnavailable,
              "etcdserver: request timed out, possibly due to previous leader failure"};
    case Error::kTimeoutDueToConnectionLost:
      return {C::kUnavailable, "etcdserver: request timed out, possibly due to connection lost"};
    case Error::kUnhealthy:
      return {C::kUnavailable, "etcdserver: unhealthy cluster"};
    case Error::kNotSupportedForLearner:
      return {C::kUnavailable, "etcdserver: rpc not supported for learner"};
    case Error::kCorrupt:
      return {C::kDataLoss, "etcdserver: corrupt cluster"};
    case Error::kBadLeaderTransferee:
      return {C::kFailedPrecondition, "etcdserver: bad leader transferee"};
    case Error::kRootUserNotExist:
      return {C::kFailedPrecondition, "etcdserver: root user does not exist"};
    case Error::kRootRoleNotExist:
      return {C::kFailedPrecondition, "etcdserver: root user does not have root role"};
    case Error::kUserAlreadyExist:
      return {C::kFailedPrecondition, "etcdserver: user name already exists"};
    case Error::kUserEmpty:
      return {C::kInvalidArgument, "etcdserver: user name is empty"};
    case Error::kUserNotFound:
      return {C::kFailedPrecondition, "etcdserver: user name not found"};
    case Error::kRoleAlreadyExist:
      return {C::kFailedPrecondition, "etcdserver: role name already exists"};
    case Error::kRoleNotFound:
      return {C::kFailedPrecondition, "etcdserver: role name not found"};
    case Error::kRoleEmpty:
      return {C::kInvalidArgument, "etcdserver: role name is empty"};
    case Error::kAuthFailed:
      return {C::kInvalidArgument, "etcdserver: authentication failed, invalid user ID or password"};
    case Error::kPermissionDenied:
      return {C::kPermissionDenied, "etcdserver: permission denied"};
    case Error::kRoleNotGranted:
      return {C::kFailedPrecondition, "etcdserver: role is not granted to the user"};
    case Error::kPermissionNotGranted:
      return {C::kFailedPrecondition, "etcdserver: permission is not granted to the role"};
    case Error::kAuthNotEnabled:
      return {C::kFailedPrecondition, "etcdserver: authentication is not enabled"};
    case Error::kInvalidAuthToken:
      return {C::kUnauthenticated, "etcdserver: invalid auth token"};
    case Error::kInvalidAuthMgmt:
      return {C::kInvalidArgument, "etcdserver: invalid auth management"};
    case Error::kAuthOldRevision:
      return {C::kInvalidArgument, "etcdserver: revision of auth store is old"};
    case Error::kPermissionNotGiven:
      return {C::kInvalidArgument, "etcdserver: permission not given"};
  }
  return {C::kInternal, "etcdserver: unknown error"};  // unreachable: every enumerator above
}

}  // namespace

absl::Status EtcdError(Error e) {
  Entry entry = Lookup(e);
  return absl::Status(entry.code, entry.message);
}

bool IsEtcdError(const absl::Status& s, Error e) {
  Entry entry = Lookup(e);
  return s.code() == entry.code && s.message() == entry.message;
}

bool IsEtcdError(const absl::Status& s) {
  return !s.ok() && absl::StartsWith(s.message(), "etcdserver: ");
}

absl::Status FromMvcc(const absl::Status& s) {
  if (mvcc::IsCompacted(s)) return EtcdError(Error::kCompacted);
  if (mvcc::IsFutureRevision(s)) return EtcdError(Error::kFutureRev);
  return s;
}

}  // namespace raftkv::server::etcd
