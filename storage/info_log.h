// InfoLog: RocksDB's info log (the LOG file in a store's directory), written
// so that a full disk cannot crash the process.
//
// RocksDB's own logger writes through a WritableFileWriter, which remembers
// a failed write; with RocksDB 7.8 the next line then aborts the process on
// an assertion (`sync_without_flush_called_`). On a full disk that happens
// at the second line RocksDB logs, e.g. in DB::Open. This logger writes each
// line with one write(2) and drops a line that cannot be written (counted,
// see dropped()): the info log is a diagnostic, never data.
//
// Same file and line format as RocksDB's ("YYYY/MM/DD-hh:mm:ss.uuuuuu TID
// message"). Opening one moves an existing LOG to LOG.old.<microseconds> and
// keeps the newest `keep_old` of those (RocksDB's keep_log_file_num).
//
// Thread safety: RocksDB calls Logv from any thread; lines are written
// whole (O_APPEND).
#ifndef RAFTKV_STORAGE_INFO_LOG_H_
#define RAFTKV_STORAGE_INFO_LOG_H_

#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <memory>
#include <string>

#include "rocksdb/env.h"

namespace raftkv::storage {

class InfoLog final : public rocksdb::Logger {
 public:
  // Never fails: if the file cannot be created, every line is dropped.
  static std::shared_ptr<InfoLog> Open(const std::string& dir, int keep_old = 3);
  // Appends to `path` as is (no LOG.old rotation).
  static std::shared_ptr<InfoLog> OpenFile(const std::string& path);
  ~InfoLog() override;

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override;

  // Lines that could not be written (a full disk, an unwritable directory).
  uint64_t dropped() const { return dropped_.load(); }

 protected:
  rocksdb::Status CloseImpl() override;

 private:
  explicit InfoLog(int fd) : fd_(fd) {}

  int fd_;  // -1: none
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace raftkv::storage

#endif  // RAFTKV_STORAGE_INFO_LOG_H_
