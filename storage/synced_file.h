// Small files a node keeps beside its store (the durable mark, a stored
// alarm), written so that a crash leaves either the old or the new content,
// and directory syncs that make a rename or removal durable.
//
// A full disk (ENOSPC, EDQUOT) is RESOURCE_EXHAUSTED, as the store reports
// it (rocks_status.h); other failures are INTERNAL, naming the path.
// Thread-safe (no shared state).
#ifndef RAFTKV_STORAGE_SYNCED_FILE_H_
#define RAFTKV_STORAGE_SYNCED_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace raftkv::storage {

// Writes `text` to "<path>.tmp", fdatasyncs it, renames it to `path` and
// syncs the directory.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view text);

// fsyncs the directory holding `path` ("." if it names none).
absl::Status SyncParentDir(const std::string& path);

}  // namespace raftkv::storage

#endif  // RAFTKV_STORAGE_SYNCED_FILE_H_
