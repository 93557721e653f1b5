#include "server/disk_space.h"

#include <pthread.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "glog/logging.h"

namespace raftkv::server {

absl::StatusOr<uint64_t> FreeBytes(const std::string& path) {
  struct statvfs st;
  if (statvfs(path.c_str(), &st) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot read the free space of ", path, ": ", strerror(errno)));
  }
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

std::string FormatBytes(uint64_t bytes) {
  return absl::StrFormat("%d bytes (%.1f MiB)", bytes, bytes / 1048576.0);
}

absl::Status DiskSpaceOptions::Validate() const {
  if (dir.empty()) return absl::InvalidArgumentError("DiskSpaceOptions.dir is empty");
  if (interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("DiskSpaceOptions.interval must be positive");
  }
  return absl::OkStatus();
}

DiskSpace::DiskSpace(DiskSpaceOptions options) : options_(std::move(options)) { Check(); }

DiskSpace::~DiskSpace() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void DiskSpace::Start() {
  if (options_.min_free_bytes == 0 || thread_.joinable()) return;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "disk-space");
    while (!stop_.WaitForNotificationWithTimeout(options_.interval)) Check();
  });
}

std::string DiskSpace::Reason(uint64_t free) const {
  return absl::StrCat("data dir ", options_.dir, " has ", FormatBytes(free),
                      " free on its filesystem, below --min_free_bytes=", options_.min_free_bytes,
                      ": writes are refused until space is freed (reads are served)");
}

void DiskSpace::Check() {
  if (options_.min_free_bytes == 0) return;
  absl::StatusOr<uint64_t> free =
      options_.free_bytes ? options_.free_bytes(options_.dir) : FreeBytes(options_.dir);
  if (!free.ok()) {
    LOG_EVERY_N(WARNING, 100) << free.status();
    return;
  }
  free_.store(*free);
  const uint64_t margin = options_.min_free_bytes / 16;
  const bool was_low = low_.load();
  const bool low = was_low ? *free < options_.min_free_bytes + margin
                           : *free < options_.min_free_bytes;
  if (low == was_low) return;
  low_.store(low);
  if (low) {
    if (options_.alarms != nullptr) {
      options_.alarms->Raise(AlarmType::kNoSpace, Reason(*free));  // logs the reason once
    } else {
      LOG(ERROR) << Reason(*free);
    }
  } else {
    LOG(WARNING) << "data dir " << options_.dir << " has " << FormatBytes(*free)
                 << " free again (--min_free_bytes=" << options_.min_free_bytes
                 << "): writes are accepted";
    if (options_.alarms != nullptr) options_.alarms->Clear(AlarmType::kNoSpace);
  }
}

absl::Status DiskSpace::WriteRefusal() const {
  if (!low()) return absl::OkStatus();
  return absl::ResourceExhaustedError(Reason(free_.load()));
}

}  // namespace raftkv::server
