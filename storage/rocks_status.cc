#include "storage/rocks_status.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace raftkv::storage {

bool IsLockError(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  const std::string msg = s.ToString();
  // "While lock file: <dir>/LOCK: Resource temporarily unavailable" (another
  // process) or "lock hold by current process ... <dir>/LOCK: ..." (this one).
  return absl::StrContains(msg, "/LOCK") &&
         absl::StrContains(absl::AsciiStrToLower(msg), "lock");
}

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = absl::StrCat(context, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  if (s.IsNotSupported()) return absl::UnimplementedError(msg);
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) {
    return absl::UnavailableError(msg);
  }
  if (s.IsAborted()) return absl::AbortedError(msg);
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(msg);
  if (IsLockError(s)) {
    return absl::FailedPreconditionError(
        absl::StrCat(msg, " (the directory is locked: another process or LogStore has it open)"));
  }
  return absl::InternalError(msg);
}

}  // namespace raftkv::storage
