// DiskSpace: the free-space reserve of a node's data dir (--min_free_bytes).
//
// A background thread reads the free space of the data dir's filesystem
// (statvfs: the bytes available to unprivileged users) every `interval`.
// Below `min_free_bytes` the node is "low": it raises the NOSPACE alarm
// (server/alarms.h, with a one-line reason naming the dir, the free bytes
// and the flag), and the node refuses what it would have to store: a leader
// refuses proposals, a follower drops appends that carry entries
// (server/node.h). Reads go on. Once the free space is back at
// min_free_bytes plus a margin (1/16 of it, so a compaction that frees and
// takes back a little does not flap the alarm) the alarm clears by itself.
//
// The reserve exists so that a node never reaches ENOSPC: what it still
// writes while low (the entries it already took, their application, memtable
// flushes, compactions, hard state) must fit in it. A write that fails
// anyway stops the node (server/storage_failure.h).
//
// Thread safety: every method may be called from any thread.
#ifndef RAFTKV_SERVER_DISK_SPACE_H_
#define RAFTKV_SERVER_DISK_SPACE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/alarms.h"

namespace raftkv::server {

// The bytes an unprivileged user may still write on the filesystem of
// `path` (statvfs f_bavail * f_frsize). Errors name the path.
absl::StatusOr<uint64_t> FreeBytes(const std::string& path);

// "123456789 bytes (117.7 MiB)".
std::string FormatBytes(uint64_t bytes);

struct DiskSpaceOptions {
  // The directory whose filesystem is watched. Required.
  std::string dir;
  // The reserve; 0: none (never low).
  uint64_t min_free_bytes = 256 << 20;
  absl::Duration interval = absl::Milliseconds(200);
  // Where NOSPACE is raised and cleared (not owned; outlives the
  // DiskSpace). Null: none.
  Alarms* alarms = nullptr;
  // How free space is read; empty: FreeBytes. For tests.
  std::function<absl::StatusOr<uint64_t>(const std::string&)> free_bytes;

  absl::Status Validate() const;
};

class DiskSpace {
 public:
  // Checks once before returning, so low() is right from the start.
  explicit DiskSpace(DiskSpaceOptions options);
  ~DiskSpace();  // stops the thread
  DiskSpace(const DiskSpace&) = delete;
  DiskSpace& operator=(const DiskSpace&) = delete;

  // Starts checking every options.interval.
  void Start();

  // Reads the free space now; raises or clears the alarm. A failed read
  // keeps the previous verdict (logged).
  void Check();

  // Below the reserve as of the last check.
  bool low() const { return low_.load(); }
  // Free bytes as of the last successful check.
  uint64_t free_bytes() const { return free_.load(); }
  uint64_t min_free_bytes() const { return options_.min_free_bytes; }
  const std::string& dir() const { return options_.dir; }

  // OK while not low; else RESOURCE_EXHAUSTED saying why writes are refused
  // (dir, free bytes, the flag).
  absl::Status WriteRefusal() const;

 private:
  std::string Reason(uint64_t free) const;

  const DiskSpaceOptions options_;
  std::atomic<bool> low_{false};
  std::atomic<uint64_t> free_{0};
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_DISK_SPACE_H_
