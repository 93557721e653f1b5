// Fuzz target: the WAL tail repair (storage/wal_repair.h) reads the bytes of
// a WAL file left on disk. Any bytes: no crash; a cut, when found, lies in
// the file and leaves a WAL with no damage, also when the space after it is
// preallocated zeros (which is how RocksDB then sees it).
#include <cstddef>
#include <cstdint>
#include <string>

#include "glog/logging.h"
#include "storage/wal_repair.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string wal(reinterpret_cast<const char*>(data), size);
  const std::optional<uint64_t> cut = raftkv::storage::FindTornTail(wal);
  if (!cut.has_value()) return 0;
  CHECK_LE(*cut, wal.size());
  const std::string kept = wal.substr(0, *cut);
  CHECK(!raftkv::storage::FindTornTail(kept).has_value())
      << "the cut WAL (" << *cut << " of " << size << " bytes) still has a torn tail";
  CHECK(!raftkv::storage::FindTornTail(kept + std::string(size - *cut, '\0')).has_value())
      << "the cut WAL followed by preallocated zeros has a torn tail";
  return 0;
}
