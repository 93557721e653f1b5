#include "server/etcd/errors.h"

#include "gtest/gtest.h"
#include "mvcc/kv.h"

namespace raftkv::server::etcd {
namespace {

// Spot checks against etcd's rpctypes/error.go: the texts clients match on.
TEST(EtcdErrorsTest, CodesAndMessagesAreEtcds) {
  struct Case {
    Error e;
    absl::StatusCode code;
    const char* message;
  } cases[] = {
      {Error::kEmptyKey, absl::StatusCode::kInvalidArgument, "etcdserver: key is not provided"},
      {Error::kTooManyOps, absl::StatusCode::kInvalidArgument,
       "etcdserver: too many operations in txn request"},
      {Error::kDuplicateKey, absl::StatusCode::kInvalidArgument,
       "etcdserver: duplicate key given in txn request"},
      {Error::kKeyNotFound, absl::StatusCode::kInvalidArgument, "etcdserver: key not found"},
      {Error::kCompacted, absl::StatusCode::kOutOfRange,
       "etcdserver: mvcc: required revision has been compacted"},
      {Error::kFutureRev, absl::StatusCode::kOutOfRange,
       "etcdserver: mvcc: required revision is a future revision"},
      {Error::kNoSpace, absl::StatusCode::kResourceExhausted,
       "etcdserver: mvcc: database space exceeded"},
      {Error::kLeaseNotFound, absl::StatusCode::kNotFound, "etcdserver: requested lease not found"},
      {Error::kRequestTooLarge, absl::StatusCode::kInvalidArgument,
       "etcdserver: request is too large"},
      {Error::kNoLeader, absl::StatusCode::kUnavailable, "etcdserver: no leader"},
      {Error::kNotLeader, absl::StatusCode::kFailedPrecondition, "etcdserver: not leader"},
      {Error::kTimeout, absl::StatusCode::kUnavailable, "etcdserver: request timed out"},
      {Error::kMemberNotFound, absl::StatusCode::kNotFound, "etcdserver: member not found"},
      {Error::kPermissionDenied, absl::StatusCode::kPermissionDenied,
       "etcdserver: permission denied"},
      {Error::kInvalidAuthToken, absl::StatusCode::kUnauthenticated,
       "etcdserver: invalid auth token"},
      {Error::kAuthFailed, absl::StatusCode::kInvalidArgument,
       "etcdserver: authentication failed, invalid user ID or password"},
      {Error::kRootUserNotExist, absl::StatusCode::kFailedPrecondition,
       "etcdserver: root user does not exist"},
      {Error::kAuthOldRevision, absl::StatusCode::kInvalidArgument,
       "etcdserver: revision of auth store is old"},
  };
  for (const Case& c : cases) {
    absl::Status s = EtcdError(c.e);
    EXPECT_EQ(s.code(), c.code) << c.message;
    EXPECT_EQ(s.message(), c.message);
    EXPECT_TRUE(IsEtcdError(s, c.e));
  }
  EXPECT_FALSE(IsEtcdError(EtcdError(Error::kNoLeader), Error::kNotLeader));
  EXPECT_FALSE(IsEtcdError(absl::UnavailableError("etcdserver: not leader"), Error::kNotLeader));
}

TEST(EtcdErrorsTest, FromMvcc) {
  EXPECT_TRUE(IsEtcdError(FromMvcc(mvcc::CompactedError()), Error::kCompacted));
  EXPECT_TRUE(IsEtcdError(FromMvcc(mvcc::FutureRevisionError()), Error::kFutureRev));
  EXPECT_EQ(FromMvcc(absl::DataLossError("corrupt block")), absl::DataLossError("corrupt block"));
  EXPECT_TRUE(FromMvcc(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace raftkv::server::etcd
