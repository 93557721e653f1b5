#include "storage/sst_corruption.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "rocksdb/options.h"
#include "rocksdb/sst_file_reader.h"
#include "rocksdb/table_properties.h"

namespace raftkv::storage::testing {
namespace {

absl::StatusOr<std::shared_ptr<const rocksdb::TableProperties>> PropertiesOf(
    const std::string& path) {
  rocksdb::Options options;
  rocksdb::SstFileReader reader(options);
  rocksdb::Status s = reader.Open(path);
  if (!s.ok()) return absl::InternalError(absl::StrCat(path, ": ", s.ToString()));
  return reader.GetTableProperties();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SstFilesOf(const std::string& dir, const std::string& cf) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".sst") continue;
    auto props = PropertiesOf(entry.path().string());
    if (!props.ok()) return props.status();
    if ((*props)->column_family_name == cf) out.push_back(entry.path().string());
  }
  if (ec) return absl::InternalError(absl::StrCat(dir, ": ", ec.message()));
  return out;
}

absl::StatusOr<std::pair<std::string, std::string>> SstKeyRange(const std::string& path) {
  rocksdb::Options options;
  rocksdb::SstFileReader reader(options);
  rocksdb::Status s = reader.Open(path);
  if (!s.ok()) return absl::InternalError(absl::StrCat(path, ": ", s.ToString()));
  std::unique_ptr<rocksdb::Iterator> it(reader.NewIterator(rocksdb::ReadOptions()));
  std::pair<std::string, std::string> out;
  it->SeekToFirst();
  if (it->Valid()) out.first = it->key().ToString();
  it->SeekToLast();
  if (it->Valid()) out.second = it->key().ToString();
  if (!it->status().ok()) return absl::InternalError(absl::StrCat(path, ": ", it->status().ToString()));
  return out;
}

absl::StatusOr<uint64_t> CorruptDataBlocks(const std::string& path, double from, double to,
                                           uint64_t stride) {
  auto props = PropertiesOf(path);
  if (!props.ok()) return props.status();
  const uint64_t data_size = (*props)->data_size;
  const uint64_t begin = static_cast<uint64_t>(data_size * from);
  const uint64_t end = static_cast<uint64_t>(data_size * to);
  int fd = open(path.c_str(), O_RDWR);
  if (fd < 0) return absl::InternalError(absl::StrCat(path, ": ", std::strerror(errno)));
  uint64_t flipped = 0;
  for (uint64_t off = begin; off < end; off += stride) {
    unsigned char b;
    if (pread(fd, &b, 1, off) != 1) break;
    b ^= 0xff;
    if (pwrite(fd, &b, 1, off) != 1) break;
    ++flipped;
  }
  fsync(fd);
  close(fd);
  return flipped;
}

}  // namespace raftkv::storage::testing
