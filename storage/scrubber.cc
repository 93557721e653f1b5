#include "storage/scrubber.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <system_error>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "glog/logging.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/options.h"
#include "rocksdb/sst_file_reader.h"
#include "storage/byte_pacer.h"

namespace raftkv::storage {

absl::Status ScrubOptions::Validate() const {
  if (interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ScrubOptions.interval is ", absl::FormatDuration(interval),
                     "; zero (off) or positive"));
  }
  if (start_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ScrubOptions.start_delay is ", absl::FormatDuration(start_delay), "; at least 0"));
  }
  if (bytes_per_sec < (64 << 10)) {
    return absl::InvalidArgumentError(absl::StrCat("ScrubOptions.bytes_per_sec is ",
                                                   bytes_per_sec, "; at least 65536"));
  }
  return absl::OkStatus();
}

// The scrub's reads under its rate (byte_pacer.h). RocksDB may read from
// more than one thread: they take turns.
class Scrubber::Pacer {
 public:
  Pacer(uint64_t bytes_per_sec, const absl::Notification* stop)
      : pacer_(bytes_per_sec,
               PacerClock{[] { return absl::Now(); },
                          [stop](absl::Duration d) {
                            return !stop->WaitForNotificationWithTimeout(d);
                          }}),
        stop_(stop) {}

  // Waits for `bytes`' turn; false if Stop() came first.
  bool Take(uint64_t bytes) const {
    absl::MutexLock l(&mu_);
    return pacer_.Account(bytes) && !stop_->HasBeenNotified();
  }

 private:
  mutable absl::Mutex mu_;
  mutable BytePacer pacer_ ABSL_GUARDED_BY(mu_);
  const absl::Notification* const stop_;
};

// The default file system, except that every read of a file opened for
// random access waits for the pacer first.
class Scrubber::PacedFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  explicit PacedFileSystem(const Pacer* pacer)
      : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()), pacer_(pacer) {}
  const char* Name() const override { return "ScrubPacedFileSystem"; }

  rocksdb::IOStatus NewRandomAccessFile(const std::string& path,
                                        const rocksdb::FileOptions& options,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
                                        rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSRandomAccessFile> file;
    rocksdb::IOStatus s = target()->NewRandomAccessFile(path, options, &file, dbg);
    if (s.ok()) result->reset(new PacedFile(std::move(file), pacer_));
    return s;
  }

 private:
  class PacedFile final : public rocksdb::FSRandomAccessFileOwnerWrapper {
   public:
    PacedFile(std::unique_ptr<rocksdb::FSRandomAccessFile> f, const Pacer* pacer)
        : rocksdb::FSRandomAccessFileOwnerWrapper(std::move(f)), pacer_(pacer) {}

    rocksdb::IOStatus Read(uint64_t offset, size_t n, const rocksdb::IOOptions& options,
                           rocksdb::Slice* result, char* scratch,
                           rocksdb::IODebugContext* dbg) const override {
      if (!pacer_->Take(n)) return rocksdb::IOStatus::Aborted("scrub stopped");
      return target()->Read(offset, n, options, result, scratch, dbg);
    }
    rocksdb::IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs,
                                const rocksdb::IOOptions& options,
                                rocksdb::IODebugContext* dbg) override {
      uint64_t bytes = 0;
      for (size_t i = 0; i < num_reqs; ++i) bytes += reqs[i].len;
      if (!pacer_->Take(bytes)) return rocksdb::IOStatus::Aborted("scrub stopped");
      return target()->MultiRead(reqs, num_reqs, options, dbg);
    }
    // Not forwarded: the base class reads synchronously through Read.
    rocksdb::IOStatus ReadAsync(rocksdb::FSReadRequest& req, const rocksdb::IOOptions& opts,
                                std::function<void(const rocksdb::FSReadRequest&, void*)> cb,
                                void* cb_arg, void** io_handle, rocksdb::IOHandleDeleter* del_fn,
                                rocksdb::IODebugContext* dbg) override {
      return rocksdb::FSRandomAccessFile::ReadAsync(req, opts, cb, cb_arg, io_handle, del_fn, dbg);
    }

   private:
    const Pacer* const pacer_;
  };

  const Pacer* const pacer_;
};

Scrubber::Scrubber(ScrubOptions options, const LogStore* store,
                   std::function<void(const absl::Status&)> on_corruption)
    : options_(std::move(options)),
      store_(store),
      on_corruption_(std::move(on_corruption)),
      pacer_(std::make_unique<Pacer>(options_.bytes_per_sec, &stop_)),
      env_(rocksdb::NewCompositeEnv(std::make_shared<PacedFileSystem>(pacer_.get()))) {
  CHECK(options_.Validate().ok()) << options_.Validate();
}

Scrubber::~Scrubber() { Stop(); }

void Scrubber::Start() {
  CHECK(!thread_.joinable()) << "started twice";
  if (options_.interval == absl::ZeroDuration()) return;
  thread_ = std::thread([this] { Run(); });
}

void Scrubber::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void Scrubber::Run() {
  absl::Time next = absl::Now() + options_.start_delay;
  while (!stop_.WaitForNotificationWithDeadline(next)) {
    const absl::Time began = absl::Now();
    const ScrubResult r = RunPass();
    if (r.stopped) break;
    LOG(INFO) << "scrub of " << store_->dir() << ": " << r.files << " SST files, " << r.bytes
              << " bytes verified in "
              << absl::FormatDuration(absl::Trunc(r.elapsed, absl::Milliseconds(1)))
              << (r.corrupt.empty() ? "; no corruption"
                                    : absl::StrCat("; ", r.corrupt.size(), " CORRUPT"));
    next = began + options_.interval;
  }
}

ScrubResult Scrubber::RunPass() {
  const absl::Time start = absl::Now();
  ScrubResult r;
  absl::Status first_corrupt;
  for (const LogStore::SstFile& f : store_->LiveSstFiles()) {
    absl::Status s = VerifyFile(f);
    if (s.ok()) {
      ++r.files;
      r.bytes += f.bytes;
    } else if (absl::IsNotFound(s)) {
      ++r.skipped;
    } else if (absl::IsAborted(s)) {
      r.stopped = true;
      break;
    } else {
      LOG(ERROR) << s.message();
      r.corrupt.push_back(std::string(s.message()));
      if (first_corrupt.ok()) first_corrupt = s;
    }
  }
  r.elapsed = absl::Now() - start;
  if (!r.stopped) ++passes_;
  if (!first_corrupt.ok() && on_corruption_) on_corruption_(first_corrupt);
  return r;
}

absl::Status Scrubber::VerifyFile(const LogStore::SstFile& file) {
  auto named = [&](const rocksdb::Status& s) {
    return absl::DataLossError(absl::StrCat("scrub: SST file ", file.path, " (column family ",
                                            file.column_family, ", ", file.bytes,
                                            " bytes): ", s.ToString()));
  };
  auto gone = [&] {
    std::error_code ec;
    return !std::filesystem::exists(file.path, ec) && !ec;
  };
  rocksdb::Options options;
  options.env = env_.get();
  // Direct I/O where the file system has it (tmpfs has not: then buffered).
  rocksdb::Status opened;
  std::unique_ptr<rocksdb::SstFileReader> reader;
  for (bool direct : {true, false}) {
    options.use_direct_reads = direct;
    reader = std::make_unique<rocksdb::SstFileReader>(options);
    opened = reader->Open(file.path);
    if (opened.ok() || opened.IsCorruption() || gone()) break;
  }
  if (stop_.HasBeenNotified()) return absl::AbortedError("scrub stopped");
  if (!opened.ok()) return gone() ? absl::NotFoundError(file.path) : named(opened);
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.fill_cache = false;
  rocksdb::Status s = reader->VerifyChecksum(ro);
  if (stop_.HasBeenNotified()) return absl::AbortedError("scrub stopped");
  if (!s.ok()) return named(s);
  return absl::OkStatus();
}

}  // namespace raftkv::storage
