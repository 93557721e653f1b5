// etcd's gRPC errors (etcd's api/v3rpc/rpctypes): the code and the exact
// message of each, since etcd's clients match on the message text (clientv3
// turns it back into its error values) and retry by the code. One table, so
// every etcd service answers with the same words.
//
// Thread safety: pure functions.
#ifndef RAFTKV_SERVER_ETCD_ERRORS_H_
#define RAFTKV_SERVER_ETCD_ERRORS_H_

#include "absl/status/status.h"

namespace raftkv::server::etcd {

enum class Error {
  // Request checks (InvalidArgument).
  kEmptyKey,           // "etcdserver: key is not provided"
  kKeyNotFound,        // "etcdserver: key not found"
  kValueProvided,      // "etcdserver: value is provided"
  kLeaseProvided,      // "etcdserver: lease is provided"
  kTooManyOps,         // "etcdserver: too many operations in txn request"
  kDuplicateKey,       // "etcdserver: duplicate key given in txn request"
  kInvalidSortOption,  // "etcdserver: invalid sort option" (etcd 3.6)
  kRequestTooLarge,    // "etcdserver: request is too large"
  // MVCC.
  kCompacted,        // OutOfRange "etcdserver: mvcc: required revision has been compacted"
  kFutureRev,        // OutOfRange "etcdserver: mvcc: required revision is a future revision"
  kNoSpace,          // ResourceExhausted "etcdserver: mvcc: database space exceeded"
  kTooManyRequests,  // ResourceExhausted "etcdserver: too many requests"
  // Leases.
  kLeaseNotFound,     // NotFound "etcdserver: requested lease not found"
  kLeaseExist,        // FailedPrecondition "etcdserver: lease already exists"
  kLeaseTTLTooLarge,  // OutOfRange "etcdserver: too large lease TTL"
  // Membership.
  kMemberExist,             // FailedPrecondition
  kPeerURLExist,            // FailedPrecondition
  kMemberNotEnoughStarted,  // FailedPrecondition
  kMemberBadURLs,           // InvalidArgument
  kMemberNotFound,          // NotFound
  kMemberNotLearner,        // FailedPrecondition
  kLearnerNotReady,         // FailedPrecondition
  kTooManyLearners,         // FailedPrecondition
  // The cluster: Unavailable, except kNotLeader (FailedPrecondition).
  kNoLeader,
  kNotLeader,
  kLeaderChanged,
  kStopped,
  kTimeout,
  kTimeoutDueToLeaderFail,
  kTimeoutDueToConnectionLost,
  kUnhealthy,
  kNotSupportedForLearner,
  kCorrupt,              // DataLoss "etcdserver: corrupt cluster"
  kBadLeaderTransferee,  // FailedPrecondition
  // Auth (etcd's messages; codes as rpctypes).
  kRootUserNotExist,       // FailedPrecondition "etcdserver: root user does not exist"
  kRootRoleNotExist,       // FailedPrecondition "etcdserver: root user does not have root role"
  kUserAlreadyExist,       // FailedPrecondition "etcdserver: user name already exists"
  kUserEmpty,              // InvalidArgument "etcdserver: user name is empty"
  kUserNotFound,           // FailedPrecondition "etcdserver: user name not found"
  kRoleAlreadyExist,       // FailedPrecondition "etcdserver: role name already exists"
  kRoleNotFound,           // FailedPrecondition "etcdserver: role name not found"
  kRoleEmpty,              // InvalidArgument "etcdserver: role name is empty"
  kAuthFailed,             // InvalidArgument "etcdserver: authentication failed, ..."
  kPermissionDenied,       // PermissionDenied "etcdserver: permission denied"
  kRoleNotGranted,         // FailedPrecondition "etcdserver: role is not granted to the user"
  kPermissionNotGranted,   // FailedPrecondition "etcdserver: permission is not granted to the role"
  kAuthNotEnabled,         // FailedPrecondition "etcdserver: authentication is not enabled"
  kInvalidAuthToken,       // Unauthenticated "etcdserver: invalid auth token"
  kInvalidAuthMgmt,        // InvalidArgument "etcdserver: invalid auth management"
  kAuthOldRevision,        // InvalidArgument "etcdserver: revision of auth store is old"
  kPermissionNotGiven,     // InvalidArgument "etcdserver: permission not given" (etcd 3.5)
};

// The Status etcd's server answers for `e`: its gRPC code and message.
absl::Status EtcdError(Error e);

// True when `s` is exactly EtcdError(e) (code and message).
bool IsEtcdError(const absl::Status& s, Error e);
// True when `s` is one of etcd's errors (an answer for the client), false for
// OK and for every other status (e.g. a storage failure).
bool IsEtcdError(const absl::Status& s);

// An error of the mvcc store as etcd's server answers it: mvcc's compacted
// and future-revision errors become kCompacted and kFutureRev; OK and every
// other status (storage errors) pass unchanged.
absl::Status FromMvcc(const absl::Status& s);

}  // namespace raftkv::server::etcd

#endif  // RAFTKV_SERVER_ETCD_ERRORS_H_
