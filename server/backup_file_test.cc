#include "server/backup_file.h"

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good());
}

backuppb::BackupHeader Header() {
  backuppb::BackupHeader h;
  h.set_cluster_id(0x1234567890abcdefull);
  h.set_member_id(2);
  h.set_applied_index(4711);
  h.set_term(7);
  h.set_created_unix_micros(1700000000123456);
  h.add_voters(1);
  h.add_voters(2);
  h.add_voters(3);
  return h;
}

using Records = std::vector<std::pair<std::string, std::string>>;

Records SomeRecords() {
  return {{"c", std::string(8, '\0')},
          {"kalpha", std::string("\0\0\0\0\0\0\0\x05value", 13)},
          {"kbeta", std::string(8, '\0') + std::string(300, 'x')},
          {"kempty", ""},
          {std::string("s\0\0\0\0\0\0\0\x01", 9), "session"}};
}

std::string Encode(const Records& records, uint64_t keys) {
  std::string out;
  BackupWriter w(Header(), &out);
  for (const auto& [k, v] : records) w.Add(k, v);
  w.Finish(keys);
  EXPECT_EQ(w.records(), records.size());
  EXPECT_EQ(w.bytes(), out.size());
  return out;
}

TEST(BackupFileTest, RoundTrip) {
  const Records records = SomeRecords();
  const std::string bytes = Encode(records, 3);
  const std::string path = TempPath("round_trip.backup");
  WriteFile(path, bytes);

  auto info = VerifyBackup(path);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->header.SerializeAsString(), Header().SerializeAsString());
  EXPECT_EQ(info->records, records.size());
  EXPECT_EQ(info->keys, 3u);
  EXPECT_EQ(info->bytes, bytes.size());
  EXPECT_EQ(info->sha256_hex.size(), 64u);

  Records read;
  auto again = ReadBackup(path, [&](absl::string_view k, absl::string_view v) {
    read.emplace_back(std::string(k), std::string(v));
    return absl::OkStatus();
  });
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(read, records);
  EXPECT_EQ(again->sha256_hex, info->sha256_hex);
}

TEST(BackupFileTest, EmptyStateMachine) {
  const std::string path = TempPath("empty.backup");
  WriteFile(path, Encode({}, 0));
  auto info = VerifyBackup(path);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->records, 0u);
  EXPECT_EQ(info->header.applied_index(), 4711u);
}

TEST(BackupFileTest, FnErrorStopsTheRead) {
  const std::string path = TempPath("fn_error.backup");
  WriteFile(path, Encode(SomeRecords(), 3));
  int calls = 0;
  auto r = ReadBackup(path, [&](absl::string_view, absl::string_view) {
    return ++calls == 2 ? absl::InternalError("disk full") : absl::OkStatus();
  });
  EXPECT_EQ(r.status(), absl::InternalError("disk full"));
  EXPECT_EQ(calls, 2);
}

// Every prefix of a backup is refused, as truncated, and a read hands no
// record of it to its caller.
TEST(BackupFileTest, EveryTruncationIsRefused) {
  const std::string bytes = Encode(SomeRecords(), 3);
  const std::string path = TempPath("truncated.backup");
  for (size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE(absl::StrCat("first ", n, " of ", bytes.size(), " bytes"));
    WriteFile(path, bytes.substr(0, n));
    auto info = VerifyBackup(path);
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.status().code(), absl::StatusCode::kDataLoss) << info.status();
    EXPECT_THAT(info.status().message(), HasSubstr("truncated")) << info.status();
    EXPECT_THAT(info.status().message(), HasSubstr(path));
    int calls = 0;
    EXPECT_FALSE(ReadBackup(path, [&](absl::string_view, absl::string_view) {
                   ++calls;
                   return absl::OkStatus();
                 }).ok());
    EXPECT_EQ(calls, 0);
  }
}

// Any one byte changed anywhere is refused (one bit of each, in turn).
TEST(BackupFileTest, EveryFlippedBitIsRefused) {
  const std::string bytes = Encode(SomeRecords(), 3);
  const std::string path = TempPath("flipped.backup");
  for (size_t i = 0; i < bytes.size(); ++i) {
    {
      const int bit = i % 8;
      std::string damaged = bytes;
      damaged[i] = static_cast<char>(damaged[i] ^ (1 << bit));
      WriteFile(path, damaged);
      auto info = VerifyBackup(path);
      ASSERT_FALSE(info.ok()) << "byte " << i << " bit " << bit;
      // A bit of the magic makes it "not a backup"; of the version, an
      // unknown version; everything else is damage.
      if (i >= 12) {
        EXPECT_EQ(info.status().code(), absl::StatusCode::kDataLoss)
            << "byte " << i << ": " << info.status();
      }
    }
  }
}

TEST(BackupFileTest, NamesWhatIsWrong) {
  const std::string bytes = Encode(SomeRecords(), 3);
  const std::string path = TempPath("named.backup");
  auto refused = [&](const std::string& content) {
    WriteFile(path, content);
    auto info = VerifyBackup(path);
    EXPECT_FALSE(info.ok());
    return std::string(info.status().message());
  };
  EXPECT_THAT(refused(""), HasSubstr("truncated: the file is empty"));
  EXPECT_THAT(refused("hello world, this is not a backup"),
              HasSubstr("not a raftkv backup (it does not start with RAFTKVBK)"));
  std::string v1 = bytes;
  v1[8] = 1;  // a backup of raftkv before revisions
  EXPECT_THAT(refused(v1), HasSubstr("backup format version 1; this build reads version 2"));
  EXPECT_THAT(refused(bytes + "x"), HasSubstr("1 unexpected bytes after the trailer"));
  std::string flipped = bytes;
  flipped[bytes.size() - 100] ^= 0x20;  // inside the 300-byte value
  EXPECT_THAT(refused(flipped), HasSubstr("corrupt: checksum mismatch"));
  EXPECT_THAT(refused(bytes.substr(0, bytes.size() - 10)),
              HasSubstr("truncated: the trailer at byte"));
  // A writer that miscounts (the checksum is right, the counts are not).
  EXPECT_THAT(refused(Encode(SomeRecords(), 6)), HasSubstr("the trailer counts 5 records (6 keys)"));
  auto missing = VerifyBackup(TempPath("no_such.backup"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("cannot open"));
}

// A length field damaged to claim more than the file holds is refused
// without allocating it.
TEST(BackupFileTest, HugeLengthIsRefusedCheaply) {
  std::string bytes = Encode(SomeRecords(), 3);
  const size_t header_len = bytes[12] & 0xff;  // small header: one byte
  const size_t first_record = 16 + header_len;
  ASSERT_EQ(bytes[first_record], 0x01);
  for (int i = 0; i < 4; ++i) bytes[first_record + 5 + i] = '\xff';  // value bytes: 4 GiB
  const std::string path = TempPath("huge.backup");
  WriteFile(path, bytes);
  auto info = VerifyBackup(path);
  EXPECT_THAT(info.status().message(), HasSubstr("record 1 at byte"));
  EXPECT_THAT(info.status().message(), HasSubstr("runs past the end of the file"));
}

}  // namespace
}  // namespace raftkv::server
