// Key and value encodings of the LogStore's column families.
//
// `log`:  key = entry index as 8-byte big-endian, so RocksDB's bytewise order
//         is index order; value = serialized raftpb::Entry.
// `meta`: fixed ASCII keys (below); protobuf values, except the fixed64
//         big-endian applied index and format version.
// `data`: the replicated key-value data: key = generation byte + key as
//         given, value as given.
//
// Pure functions; thread-safe.
#ifndef RAFTKV_STORAGE_ENCODING_H_
#define RAFTKV_STORAGE_ENCODING_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace raftkv::storage {

inline constexpr size_t kIndexKeySize = 8;

// Column family names.
inline constexpr char kLogColumnFamily[] = "log";
inline constexpr char kMetaColumnFamily[] = "meta";
inline constexpr char kDataColumnFamily[] = "data";

// Keys in the `meta` column family.
inline constexpr char kFormatVersionKey[] = "format_version";  // fixed64
inline constexpr char kIdentityKey[] = "identity";       // NodeIdentity
inline constexpr char kHardStateKey[] = "hard_state";    // raftpb::HardState
inline constexpr char kSnapshotKey[] = "snapshot";       // SnapshotMetadata
inline constexpr char kAppliedIndexKey[] = "applied_index";  // fixed64
inline constexpr char kAppliedConfKey[] = "applied_conf";    // ConfState
// Prefix of the incarnation recorded for a peer: + 8-byte big-endian node
// id -> fixed64 incarnation.
inline constexpr char kPeerIncarnationPrefix[] = "peer_incarnation/";
// Which of the two key spaces of `data` is live: "a" or "b" (absent: "a").
inline constexpr char kDataGenerationKey[] = "data_generation";

// `data` keys are prefixed by a one-byte generation: the live one, and the
// other one, where a snapshot received from the leader is staged before it
// replaces the live one in a single write.
inline constexpr char kDataGenerationA = 'a';
inline constexpr char kDataGenerationB = 'b';
inline char OtherGeneration(char g) {
  return g == kDataGenerationA ? kDataGenerationB : kDataGenerationA;
}

// The on-disk layout version this code reads and writes.
inline constexpr uint64_t kFormatVersion = 2;  // 2: generation-prefixed data keys

// 8-byte big-endian encoding of v (the `log` key of index v).
std::string EncodeFixed64BE(uint64_t v);

// Writes the 8-byte big-endian encoding of v to out[0..7].
void EncodeFixed64BE(uint64_t v, char* out);

// Inverse of EncodeFixed64BE; nullopt unless `s` is exactly 8 bytes.
std::optional<uint64_t> DecodeFixed64BE(absl::string_view s);

// Log keys: aliases that read better at call sites.
inline std::string LogKey(uint64_t index) { return EncodeFixed64BE(index); }
inline std::optional<uint64_t> DecodeLogKey(absl::string_view key) {
  return DecodeFixed64BE(key);
}

}  // namespace raftkv::storage

#endif  // RAFTKV_STORAGE_ENCODING_H_
