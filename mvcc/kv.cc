#include "mvcc/kv.h"

namespace raftkv::mvcc {
namespace {
// etcd's texts (mvcc.ErrCompacted, mvcc.ErrFutureRev).
constexpr absl::string_view kCompacted = "mvcc: required revision has been compacted";
constexpr absl::string_view kFuture = "mvcc: required revision is a future revision";
constexpr absl::string_view kTooLarge = "mvcc: range holds more bytes than the read may";
}  // namespace

absl::Status CompactedError() { return absl::OutOfRangeError(kCompacted); }
absl::Status FutureRevisionError() { return absl::OutOfRangeError(kFuture); }
bool IsCompacted(const absl::Status& s) {
  return s.code() == absl::StatusCode::kOutOfRange && s.message() == kCompacted;
}
bool IsFutureRevision(const absl::Status& s) {
  return s.code() == absl::StatusCode::kOutOfRange && s.message() == kFuture;
}

absl::Status TooLargeError() { return absl::ResourceExhaustedError(kTooLarge); }
bool IsTooLarge(const absl::Status& s) {
  return s.code() == absl::StatusCode::kResourceExhausted && s.message() == kTooLarge;
}

}  // namespace raftkv::mvcc
