#include "server/storage_failure.h"

#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "server/disk_space.h"

namespace raftkv::server {

std::string WriteFailureMessage(const std::string& dir, const absl::Status& error) {
  absl::StatusOr<uint64_t> free = FreeBytes(dir);
  return absl::StrCat(
      "stopping: a write to data dir ", dir, " failed (",
      free.ok() ? absl::StrCat(FormatBytes(*free), " free on its filesystem")
                : std::string(free.status().message()),
      "): ", absl::StatusCodeToString(error.code()), ": ", error.message(),
      ". Nothing acknowledged is lost; free space (or repair the disk) and restart the node");
}

void ExitOnWriteFailure(const std::string& dir, const absl::Status& error) {
  static std::atomic<bool> exiting{false};
  if (exiting.exchange(true)) {
    // Another thread is exiting: never return into RocksDB.
    while (true) pause();
  }
  LOG(ERROR) << WriteFailureMessage(dir, error);
  google::FlushLogFiles(google::GLOG_INFO);
  _exit(kStorageFailureExit);
}

void StoreWriteFailed(const storage::LogStore& store, absl::string_view what,
                      const absl::Status& s) {
  if (!store.write_failure().ok()) {
    ExitOnWriteFailure(store.dir(), absl::Status(s.code(), absl::StrCat(what, ": ", s.message())));
  }
  LOG(FATAL) << what << ": " << s;
}

}  // namespace raftkv::server
