// Test-only: damaging a stopped store's SST files as a failing disk would,
// for the corruption tests (storage/, server/, tests/).
#ifndef RAFTKV_STORAGE_SST_CORRUPTION_H_
#define RAFTKV_STORAGE_SST_CORRUPTION_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace raftkv::storage::testing {

// The SST files in `dir` (a store's directory, the store closed) that
// belong to column family `cf` ("log", "meta", "data"), from each file's
// own properties.
absl::StatusOr<std::vector<std::string>> SstFilesOf(const std::string& dir, const std::string& cf);

// The smallest and largest keys of the SST file at `path` (as the column
// family holds them: a `data` key starts with its generation byte).
absl::StatusOr<std::pair<std::string, std::string>> SstKeyRange(const std::string& path);

// Flips one byte every `stride` bytes of the SST file at `path` between
// fractions `from` and `to` of its data-block region (0 and 1: all of it).
// Within [0, 1] the file's index, filters, properties and footer are left
// intact, so it still opens and only reads of those blocks fail; past 1
// (up to the end of the file) they are damaged. Returns the bytes flipped.
absl::StatusOr<uint64_t> CorruptDataBlocks(const std::string& path, double from = 0.25,
                                           double to = 0.75, uint64_t stride = 512);

}  // namespace raftkv::storage::testing

#endif  // RAFTKV_STORAGE_SST_CORRUPTION_H_
