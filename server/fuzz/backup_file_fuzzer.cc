// Fuzz target: backup files (server/backup_file.h), which kvctl snapshot
// status / restore read from wherever the user points them. Two kinds of
// input: any bytes as a file, and a well-formed backup (header, records,
// counts) written by BackupWriter and then damaged in place (bytes changed,
// cut short, extended). Never a crash; a file is refused with DataLoss or
// InvalidArgument (not a backup, another version) or read whole: a damaged
// file is always refused, an undamaged one always read back with exactly
// its header, records (in order) and counts; ReadBackup's pass agrees with
// VerifyBackup's, and an error from the caller's function ends it.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "fuzz/fuzz_input.h"
#include "fuzz/temp_dir.h"
#include "glog/logging.h"
#include "proto/backup.pb.h"
#include "server/backup_file.h"

namespace {

using raftkv::fuzz::FuzzInput;
using Records = std::vector<std::pair<std::string, std::string>>;

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  CHECK(f.good()) << "writing " << path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace raftkv::server;
  FuzzInput in(data, size);
  const std::string path = raftkv::fuzz::ProcessTempDir("backup_file") + "/backup";
  const uint8_t mode = in.U8();

  std::string file;
  bool intact = false;  // a well-formed backup, undamaged
  raftkv::backuppb::BackupHeader header;
  Records records;
  uint64_t keys = 0;
  if (mode % 4 == 0) {
    file = in.Rest();
  } else {
    header.set_cluster_id(in.U8());
    header.set_member_id(in.U8());
    header.set_applied_index(in.U16());
    header.set_term(in.U8());
    for (int v = in.Range(0, 3); v > 0; --v) header.add_voters(v);
    for (int n = in.Range(0, 6); n > 0; --n) records.emplace_back(in.Bytes(8), in.Bytes(24));
    keys = in.Range(0, records.size() + 1);  // one past the records now and then
    BackupWriter w(header, &file);
    for (const auto& [k, v] : records) w.Add(k, v);
    w.Finish(keys);
    const std::string written = file;
    for (int n = in.Range(0, 3); n > 0; --n) {
      const uint8_t op = in.U8() % 4;
      if (op == 0) {
        file.resize(in.Range(0, file.size()));
      } else if (op == 1) {
        file += in.Bytes(4);
      } else if (!file.empty()) {
        file[in.Range(0, file.size() - 1)] = static_cast<char>(in.U8());
      }
    }
    intact = file == written && keys <= records.size();
  }
  WriteFile(path, file);

  const absl::StatusOr<BackupInfo> info = VerifyBackup(path);
  if (!info.ok()) {
    CHECK(info.status().code() == absl::StatusCode::kDataLoss ||
          info.status().code() == absl::StatusCode::kInvalidArgument)
        << info.status();
    CHECK(!intact) << "an intact backup was refused: " << info.status();
    return 0;
  }
  CHECK(mode % 4 == 0 || intact) << "a damaged backup was accepted";
  CHECK_EQ(info->bytes, file.size());
  CHECK_LE(info->keys, info->records);
  Records read;
  const absl::StatusOr<BackupInfo> again =
      ReadBackup(path, [&](absl::string_view k, absl::string_view v) {
        read.emplace_back(std::string(k), std::string(v));
        return absl::OkStatus();
      });
  CHECK(again.ok()) << again.status();
  CHECK_EQ(again->records, info->records);
  CHECK_EQ(again->keys, info->keys);
  CHECK_EQ(again->sha256_hex, info->sha256_hex);
  CHECK_EQ(read.size(), info->records);
  if (intact) {
    CHECK_EQ(info->header.SerializeAsString(), header.SerializeAsString());
    CHECK(read == records) << "records read back differ from those written";
    CHECK_EQ(info->keys, keys);
  }
  if (!read.empty()) {  // the caller's error ends the read with it
    size_t calls = 0;
    const absl::StatusOr<BackupInfo> stopped =
        ReadBackup(path, [&](absl::string_view, absl::string_view) {
          return ++calls == read.size() ? absl::CancelledError("stop") : absl::OkStatus();
        });
    CHECK(stopped.status().code() == absl::StatusCode::kCancelled) << stopped.status();
    CHECK_EQ(calls, read.size());
  }
  return 0;
}
