// The store a fuzz target works on: a LogStore that is unsynced, small and on
// the scratch Env (fuzz/scratch_env.h), opened once and reused across inputs.
#ifndef RAFTKV_SERVER_FUZZ_SCRATCH_STORE_H_
#define RAFTKV_SERVER_FUZZ_SCRATCH_STORE_H_

#include <string>

#include "storage/log_store.h"

namespace raftkv::fuzz {

// Opens a store in `dir` (CHECKs that it opens). Owned by the caller; the
// targets leave theirs open at exit, as RocksDB prefers.
storage::LogStore* OpenScratchStore(const std::string& dir);

// Deletes every record in the store's data, as one applied batch.
void ClearData(storage::LogStore& store);

}  // namespace raftkv::fuzz

#endif  // RAFTKV_SERVER_FUZZ_SCRATCH_STORE_H_
