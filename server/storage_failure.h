// How a node stops when a write to its store fails (ENOSPC, EIO, ...): one
// line naming the data dir, the free space on its filesystem and the error,
// then exit status 74 (EX_IOERR). Not an abort: a full disk is an operating
// condition, not a bug. Nothing is unwound: destructors would call into
// RocksDB again after its failed write, which RocksDB 7.8 answers with an
// assertion failure; and nothing needs saving, since every acknowledged
// write is durable already (a node acknowledges only what it synced).
//
// Thread safety: any thread. When several threads fail at once, the first
// prints the line and exits; the others wait for it, never returning to
// their caller.
#ifndef RAFTKV_SERVER_STORAGE_FAILURE_H_
#define RAFTKV_SERVER_STORAGE_FAILURE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "storage/log_store.h"

namespace raftkv::server {

// The exit status of a node stopped by a storage failure.
inline constexpr int kStorageFailureExit = 74;  // EX_IOERR (sysexits.h)

// The line ExitOnWriteFailure prints.
std::string WriteFailureMessage(const std::string& dir, const absl::Status& error);

// Prints WriteFailureMessage and exits. For storage::Options::on_write_failure
// (it runs before RocksDB sees the error) and for a store write that failed.
[[noreturn]] void ExitOnWriteFailure(const std::string& dir, const absl::Status& error);

// A store write `what` failed with `s`: ExitOnWriteFailure if the store
// failed a write (an I/O error: store.write_failure() is set); anything else
// is a bug (a broken invariant) and is fatal as such (LOG(FATAL)).
[[noreturn]] void StoreWriteFailed(const storage::LogStore& store, absl::string_view what,
                                   const absl::Status& s);

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_STORAGE_FAILURE_H_
