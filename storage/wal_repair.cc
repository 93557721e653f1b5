#include "storage/wal_repair.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace raftkv::storage {
namespace {

// RocksDB's WAL format (db/log_format.h): 32 KiB blocks of physical records,
// each a 7-byte header (masked CRC32C of type and payload, little-endian
// length, type) and its payload; a block's last < 7 bytes are zero padding.
constexpr uint64_t kBlockSize = 32768;
constexpr uint64_t kHeaderSize = 7;
enum RecordType : uint8_t { kZeroType = 0, kFullType = 1, kFirstType = 2, kMiddleType = 3,
                            kLastType = 4 };

uint32_t Crc32c(const char* p, size_t n, uint32_t crc = 0) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ static_cast<uint8_t>(p[i])) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t Unmask(uint32_t masked) {
  const uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

bool AllZero(absl::string_view s) {
  for (char c : s) {
    if (c != 0) return false;
  }
  return true;
}

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

std::optional<uint64_t> FindTornTail(absl::string_view wal) {
  const uint64_t size = wal.size();
  uint64_t pos = 0;
  uint64_t logical_start = 0;  // where the record being assembled began
  bool in_fragments = false;
  while (pos < size) {
    const uint64_t left = kBlockSize - pos % kBlockSize;
    if (left < kHeaderSize) {
      pos += left;  // trailer padding
      continue;
    }
    if (pos + kHeaderSize > size) return std::nullopt;  // a cut header: RocksDB's EOF case
    const char* h = wal.data() + pos;
    const uint64_t length = static_cast<uint8_t>(h[4]) | (static_cast<uint64_t>(static_cast<uint8_t>(h[5])) << 8);
    const uint8_t type = static_cast<uint8_t>(h[6]);
    if (type == kZeroType && length == 0) {
      // Preallocated space: no damage, unless a record begun in fragments
      // stops here (its last fragments never reached the disk), which
      // RocksDB refuses as "error in middle of record".
      if (in_fragments && AllZero(wal.substr(pos))) return logical_start;
      return std::nullopt;
    }
    bool bad = kHeaderSize + length > left || pos + kHeaderSize + length > size ||
               type < kFullType || type > kLastType;
    if (!bad) {
      uint32_t stored;
      std::memcpy(&stored, h, sizeof(stored));  // little-endian, as written
      bad = Unmask(stored) != Crc32c(h + kHeaderSize, length, Crc32c(h + 6, 1));
    }
    if (bad) {
      const uint64_t extent = pos + kHeaderSize + (kHeaderSize + length <= left ? length : 0);
      if (extent < size && !AllZero(wal.substr(extent))) return std::nullopt;  // not the tail
      return in_fragments ? logical_start : pos;
    }
    if (type == kFullType || type == kFirstType) logical_start = pos;
    in_fragments = type == kFirstType || type == kMiddleType;
    pos += kHeaderSize + length;
  }
  return std::nullopt;
}

absl::StatusOr<std::optional<TornWalTail>> RepairTornWalTail(const std::string& dir) {
  std::error_code ec;
  std::string newest;
  for (const auto& f : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = f.path().filename().string();
    // RocksDB names WALs NNNNNN.log, zero-padded: the newest sorts last.
    if (f.path().extension() == ".log" && name.size() > newest.size()) newest = name;
    if (f.path().extension() == ".log" && name.size() == newest.size() && name > newest) {
      newest = name;
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("listing ", dir, ": ", ec.message()));
  if (newest.empty()) return std::nullopt;
  const std::string path = dir + "/" + newest;
  std::ifstream in(path, std::ios::binary);
  if (!in) return Errno(absl::StrCat("reading ", path));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  const std::string wal = bytes.str();
  std::optional<uint64_t> cut = FindTornTail(wal);
  if (!cut.has_value()) return std::nullopt;
  TornWalTail torn;
  torn.wal = path;
  torn.cut_at = *cut;
  uint64_t end = wal.size();
  while (end > *cut && wal[end - 1] == 0) --end;
  torn.dropped = end - *cut;
  const int fd = ::open(path.c_str(), O_WRONLY);
  if (fd < 0) return Errno(absl::StrCat("opening ", path));
  const bool ok = ::ftruncate(fd, static_cast<off_t>(*cut)) == 0 && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) {
    errno = saved;
    return Errno(absl::StrCat("cutting ", path));
  }
  return torn;
}

}  // namespace raftkv::storage
