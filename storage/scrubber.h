// Scrubber: verifies the checksum of every block of every live SST file of a
// LogStore, in the background and at a bounded rate, so that corruption in
// data no one reads (cold keys, the log's and meta's files) is found too,
// not only when a read meets it.
//
// A pass lists the store's live SST files (LogStore::LiveSstFiles) and reads
// each one whole through a reader of its own (rocksdb::SstFileReader::
// VerifyChecksum), outside RocksDB's block cache and, where the file system
// supports it, with direct I/O (so the bytes checked are the disk's, not the
// page cache's, and the scrub does not evict the workload's pages). Every
// read is paced to ScrubOptions::bytes_per_sec first. A file a compaction
// deleted meanwhile is skipped. A corrupt file is logged, and the pass's
// first one is reported to on_corruption as DataLoss naming the file, its
// column family and RocksDB's message; the pass goes on through the rest.
//
// Passes: the first start_delay after Start(), then one every interval
// (measured from the start of the previous pass).
//
// Thread safety: Start and Stop from one thread; RunPass must not run
// concurrently with itself or with a started scrubber. on_corruption runs on
// the thread running the pass.
#ifndef RAFTKV_STORAGE_SCRUBBER_H_
#define RAFTKV_STORAGE_SCRUBBER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "storage/log_store.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace raftkv::storage {

struct ScrubOptions {
  // Between the starts of two passes. Zero: no scrubbing (Start does
  // nothing).
  absl::Duration interval = absl::Hours(24);
  // From Start() to the first pass.
  absl::Duration start_delay = absl::Seconds(10);
  // Read rate of a pass (averaged over each read). At least 64 KiB/s.
  uint64_t bytes_per_sec = 16 << 20;

  // OK, or InvalidArgument naming the bad field.
  absl::Status Validate() const;
};

struct ScrubResult {
  int files = 0;          // verified whole
  uint64_t bytes = 0;     // their sizes
  int skipped = 0;        // deleted by a compaction before they were read
  bool stopped = false;   // Stop() cut the pass short
  // One line per corrupt (or unreadable) file.
  std::vector<std::string> corrupt;
  absl::Duration elapsed;
};

class Scrubber {
 public:
  // `store` is not owned and must outlive the scrubber. REQUIRES:
  // options.Validate() is OK.
  Scrubber(ScrubOptions options, const LogStore* store,
           std::function<void(const absl::Status&)> on_corruption);
  ~Scrubber();  // Stop()s
  Scrubber(const Scrubber&) = delete;
  Scrubber& operator=(const Scrubber&) = delete;

  // Starts the background passes (none if options.interval is zero).
  void Start();
  // Ends the background thread, cutting a pass in progress short at its
  // next read. Idempotent.
  void Stop();

  // One pass on the calling thread.
  ScrubResult RunPass();

  // Passes finished (not stopped) so far.
  int passes() const { return passes_.load(); }

 private:
  class Pacer;
  class PacedFileSystem;

  void Run();
  // Verifies one file; OK, NotFound (deleted meanwhile), Aborted (stopped),
  // or the error naming the file.
  absl::Status VerifyFile(const LogStore::SstFile& file);

  const ScrubOptions options_;
  const LogStore* const store_;
  const std::function<void(const absl::Status&)> on_corruption_;
  absl::Notification stop_;
  std::unique_ptr<Pacer> pacer_;
  std::unique_ptr<rocksdb::Env> env_;  // over PacedFileSystem
  std::atomic<int> passes_{0};
  std::thread thread_;
};

}  // namespace raftkv::storage

#endif  // RAFTKV_STORAGE_SCRUBBER_H_
