#include "storage/rocks_status.h"

#include "gtest/gtest.h"

namespace raftkv::storage {
namespace {

TEST(RocksStatusTest, OkStaysOk) {
  EXPECT_TRUE(FromRocks(rocksdb::Status::OK(), "ctx").ok());
}

TEST(RocksStatusTest, MapsCodesAndKeepsMessage) {
  absl::Status s = FromRocks(rocksdb::Status::Corruption("bad block"), "Get");
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("Get: "), absl::string_view::npos);
  EXPECT_NE(s.message().find("bad block"), absl::string_view::npos);
  EXPECT_EQ(FromRocks(rocksdb::Status::NotFound(), "x").code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(FromRocks(rocksdb::Status::IOError("disk"), "x").code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(FromRocks(rocksdb::Status::Busy(), "x").code(),
            absl::StatusCode::kUnavailable);
}

TEST(RocksStatusTest, FullDiskIsResourceExhausted) {
  absl::Status s = FromRocks(
      rocksdb::Status::NoSpace("While appending to file: /d/000012.log", "No space left on device"),
      "Append");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("No space left on device"), absl::string_view::npos);
}

TEST(RocksStatusTest, LockErrorIsFailedPrecondition) {
  rocksdb::Status lock = rocksdb::Status::IOError(
      "While lock file: /tmp/x/LOCK", "Resource temporarily unavailable");
  EXPECT_TRUE(IsLockError(lock));
  absl::Status s = FromRocks(lock, "open");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("locked"), absl::string_view::npos);
  EXPECT_FALSE(IsLockError(rocksdb::Status::IOError("disk full")));
}

}  // namespace
}  // namespace raftkv::storage
