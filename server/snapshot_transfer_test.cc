// SnapshotReceiver without sockets: chunk streams built here the way
// SnapshotSender builds them, fed through Receive's `next` function, staged
// into a real LogStore and installed with LogStore::InstallStaged.
//
// Every broken stream must be refused without touching the live data, and
// leave nothing behind that a later good transfer would install.
#include "server/snapshot_transfer.h"

#include <zlib.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/data_batch.h"
#include "storage/log_store.h"

namespace raftkv::server {
namespace {

using Data = std::map<std::string, std::string>;

uint32_t Crc(uint32_t crc, const std::string& data) {
  return static_cast<uint32_t>(
      crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

raftpb::Message Announce(uint64_t index, uint64_t term) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_SNAPSHOT);
  m.set_from(1);
  m.set_to(2);
  m.set_term(term);
  auto* meta = m.mutable_snapshot()->mutable_metadata();
  meta->set_index(index);
  meta->set_term(term);
  for (uint64_t v : {1, 2, 3}) meta->mutable_conf_state()->add_voters(v);
  return m;
}

// The chunks SnapshotSender would send for `image`: at most `per_chunk`
// pairs in each, the announcement in the first, checksums as specified.
std::vector<peerpb::SnapshotChunk> Chunks(const Data& image, const raftpb::Message& announce,
                                          size_t per_chunk) {
  std::vector<peerpb::SnapshotChunk> out;
  peerpb::SnapshotData batch;
  uint32_t total_crc = Crc(0, "");
  uint64_t total_bytes = 0;
  auto flush = [&](bool last) {
    peerpb::SnapshotChunk c;
    if (out.empty()) *c.mutable_message() = announce;
    c.set_seq(out.size());
    batch.SerializeToString(c.mutable_data());
    batch.Clear();
    c.set_crc32(Crc(0, c.data()));
    total_crc = Crc(total_crc, c.data());
    total_bytes += c.data().size();
    if (last) {
      c.set_last(true);
      c.set_total_crc32(total_crc);
      c.set_total_bytes(total_bytes);
    }
    out.push_back(std::move(c));
  };
  for (const auto& [k, v] : image) {
    batch.add_keys(k);
    batch.add_values(v);
    if (static_cast<size_t>(batch.keys_size()) >= per_chunk) flush(false);
  }
  flush(true);
  return out;
}

// A `next` function over `chunks`; counts the chunks handed out.
struct Feed {
  explicit Feed(std::vector<peerpb::SnapshotChunk> c) : chunks(std::move(c)) {}
  std::function<bool(peerpb::SnapshotChunk*)> fn() {
    return [this](peerpb::SnapshotChunk* out) {
      if (pos >= chunks.size()) return false;
      *out = chunks[pos++];
      return true;
    };
  }
  std::vector<peerpb::SnapshotChunk> chunks;
  size_t pos = 0;
};

Data MakeImage(const std::string& prefix, int n) {
  Data d;
  for (int i = 0; i < n; ++i) {
    d[absl::StrCat(prefix, i / 10, i % 10)] = absl::StrCat("value of ", prefix, i);
  }
  return d;
}

class SnapshotReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = std::getenv("TEST_TMPDIR");
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = absl::StrCat(base != nullptr ? base : "/tmp", "/", info->test_suite_name(), ".",
                        info->name());
    std::filesystem::remove_all(dir_);
    Reopen();
    // The live state before any transfer: data applied through index 5.
    storage::DataBatch b;
    for (const auto& [k, v] : live_) b.Put(k, v);
    ASSERT_TRUE(store_->ApplyBatch(b, 5).ok());
  }

  void Reopen() {
    receiver_.reset();
    store_.reset();
    storage::Options o;
    o.dir = dir_;
    o.sync = false;  // no crash here; keeps the test fast
    auto s = storage::LogStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    receiver_ = std::make_unique<SnapshotReceiver>(store_.get());
  }

  Data LiveData() {
    Data d;
    EXPECT_TRUE(store_
                    ->ScanData("",
                               [&](absl::string_view k, absl::string_view v) {
                                 d.emplace(std::string(k), std::string(v));
                                 return true;
                               })
                    .ok());
    return d;
  }

  // Receives `image` as a good stream and installs it.
  void ReceiveAndInstall(const Data& image, uint64_t index, uint64_t term) {
    Feed feed(Chunks(image, Announce(index, term), 7));
    auto m = receiver_->Receive(feed.fn());
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->snapshot().metadata().index(), index);
    EXPECT_EQ(receiver_->staged_index(), index);
    ASSERT_TRUE(store_->InstallStaged(m->snapshot().metadata()).ok());
    receiver_->Release();
    EXPECT_EQ(LiveData(), image);
    EXPECT_EQ(store_->applied_index(), index);
    EXPECT_EQ(store_->FirstIndex(), index + 1);
  }

  std::string dir_;
  Data live_ = MakeImage("live-", 25);
  std::unique_ptr<storage::LogStore> store_;
  std::unique_ptr<SnapshotReceiver> receiver_;
};

TEST_F(SnapshotReceiverTest, GoodStreamIsStagedThenInstalled) {
  const Data image = MakeImage("snap-", 40);
  const raftpb::Message announce = Announce(100, 3);
  Feed feed(Chunks(image, announce, 7));
  ASSERT_EQ(feed.chunks.size(), 6u);  // 40 pairs, 7 a chunk
  auto m = receiver_->Receive(feed.fn());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->SerializeAsString(), announce.SerializeAsString());
  EXPECT_EQ(feed.pos, feed.chunks.size());
  EXPECT_EQ(receiver_->staged_index(), 100u);
  EXPECT_THAT(receiver_->State(), ::testing::HasSubstr("staged at 100"));
  // Staged, not live: readers still see the old data and applied index.
  EXPECT_EQ(LiveData(), live_);
  EXPECT_EQ(store_->applied_index(), 5u);

  ASSERT_TRUE(store_->InstallStaged(m->snapshot().metadata()).ok());
  receiver_->Release();
  EXPECT_EQ(receiver_->staged_index(), std::nullopt);
  EXPECT_EQ(receiver_->State(), "");
  EXPECT_EQ(LiveData(), image);
  EXPECT_EQ(store_->applied_index(), 100u);
  auto snap = store_->GetSnapshot();
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->metadata().index(), 100u);
  EXPECT_EQ(snap->metadata().term(), 3u);
  ASSERT_TRUE(store_->applied_conf().has_value());
  EXPECT_EQ(store_->applied_conf()->voters_size(), 3);

  // Survives a restart as installed.
  Reopen();
  EXPECT_EQ(LiveData(), image);
  EXPECT_EQ(store_->applied_index(), 100u);
}

TEST_F(SnapshotReceiverTest, EmptyImageInstallsEmptyData) {
  ReceiveAndInstall(Data(), 50, 2);
}

// A broken stream, how it is broken, and the status it must get.
struct Breakage {
  std::string name;
  std::function<void(std::vector<peerpb::SnapshotChunk>*)> corrupt;
  absl::StatusCode code;
};

class BrokenStreamTest : public SnapshotReceiverTest,
                         public ::testing::WithParamInterface<Breakage> {};

TEST_P(BrokenStreamTest, IsRefusedLeavesLiveDataAndAllowsAGoodTransfer) {
  // The bad stream's keys differ from the good one's: any of them seen
  // after the good install leaked from the refused transfer's staging.
  const Data bad_image = MakeImage("bad-", 40);
  std::vector<peerpb::SnapshotChunk> chunks = Chunks(bad_image, Announce(100, 3), 7);
  ASSERT_GE(chunks.size(), 4u);
  GetParam().corrupt(&chunks);
  Feed feed(std::move(chunks));
  auto m = receiver_->Receive(feed.fn());
  ASSERT_FALSE(m.ok()) << "a broken stream was accepted";
  EXPECT_EQ(m.status().code(), GetParam().code) << m.status();
  EXPECT_EQ(receiver_->staged_index(), std::nullopt);
  EXPECT_EQ(receiver_->State(), "");
  EXPECT_EQ(LiveData(), live_);
  EXPECT_EQ(store_->applied_index(), 5u);

  // The node retries: a good transfer (of another image) goes through.
  const Data good = MakeImage("good-", 33);
  ReceiveAndInstall(good, 120, 4);

  // And after a restart nothing of the refused stream shows up either.
  Reopen();
  EXPECT_EQ(LiveData(), good);
}

TEST_P(BrokenStreamTest, RefusedThenRestartedStoreIsUnchanged) {
  std::vector<peerpb::SnapshotChunk> chunks = Chunks(MakeImage("bad-", 40), Announce(100, 3), 7);
  GetParam().corrupt(&chunks);
  Feed feed(std::move(chunks));
  ASSERT_FALSE(receiver_->Receive(feed.fn()).ok());
  // A crash right after the refusal: the half-staged generation is dropped
  // at open, the old state is intact, and a new transfer installs cleanly.
  Reopen();
  EXPECT_EQ(LiveData(), live_);
  EXPECT_EQ(store_->applied_index(), 5u);
  ReceiveAndInstall(MakeImage("good-", 12), 130, 4);
}

INSTANTIATE_TEST_SUITE_P(
    Breakages, BrokenStreamTest,
    ::testing::Values(
        Breakage{"BadChunkCrc",
                 [](std::vector<peerpb::SnapshotChunk>* c) {
                   // Flip a byte of chunk 2's data; its crc32 no longer fits.
                   std::string& d = *(*c)[2].mutable_data();
                   d[d.size() / 2] ^= 0x20;
                 },
                 absl::StatusCode::kDataLoss},
        Breakage{"BadCrcOnLastChunk",
                 [](std::vector<peerpb::SnapshotChunk>* c) {
                   c->back().set_crc32(c->back().crc32() ^ 1);
                 },
                 absl::StatusCode::kDataLoss},
        Breakage{"ChunksSwapped",
                 [](std::vector<peerpb::SnapshotChunk>* c) { std::swap((*c)[1], (*c)[2]); },
                 absl::StatusCode::kDataLoss},
        Breakage{"ChunkMissing",
                 [](std::vector<peerpb::SnapshotChunk>* c) { c->erase(c->begin() + 2); },
                 absl::StatusCode::kDataLoss},
        Breakage{"ChunkRepeated",
                 [](std::vector<peerpb::SnapshotChunk>* c) { c->insert(c->begin() + 2, (*c)[1]); },
                 absl::StatusCode::kDataLoss},
        Breakage{"BadWholeImageCrc",
                 [](std::vector<peerpb::SnapshotChunk>* c) {
                   c->back().set_total_crc32(c->back().total_crc32() ^ 0x80000000u);
                 },
                 absl::StatusCode::kDataLoss},
        Breakage{"BadWholeImageSize",
                 [](std::vector<peerpb::SnapshotChunk>* c) {
                   c->back().set_total_bytes(c->back().total_bytes() + 1);
                 },
                 absl::StatusCode::kDataLoss},
        Breakage{"ConsistentlyRewrittenChunk",
                 [](std::vector<peerpb::SnapshotChunk>* c) {
                   // A chunk altered with its own crc32 recomputed: only the
                   // whole-image checksum can catch it.
                   peerpb::SnapshotChunk& k = (*c)[1];
                   peerpb::SnapshotData d;
                   ASSERT_TRUE(d.ParseFromString(k.data()));
                   d.set_values(0, "forged");
                   d.SerializeToString(k.mutable_data());
                   k.set_crc32(Crc(0, k.data()));
                 },
                 absl::StatusCode::kDataLoss},
        Breakage{"MalformedChunkWithGoodCrc",
                 [](std::vector<peerpb::SnapshotChunk>* c) {
                   peerpb::SnapshotChunk& k = (*c)[1];
                   k.set_data("\xff\xff\xff not a SnapshotData");
                   k.set_crc32(Crc(0, k.data()));
                 },
                 absl::StatusCode::kDataLoss},
        Breakage{"FirstChunkAnnouncesNothing",
                 [](std::vector<peerpb::SnapshotChunk>* c) {
                   (*c)[0].mutable_message()->set_type(raftpb::MSG_APPEND);
                 },
                 absl::StatusCode::kDataLoss},
        Breakage{"CutBeforeLast",
                 [](std::vector<peerpb::SnapshotChunk>* c) { c->pop_back(); },
                 absl::StatusCode::kUnavailable},
        Breakage{"CutAfterFirst", [](std::vector<peerpb::SnapshotChunk>* c) { c->resize(1); },
                 absl::StatusCode::kUnavailable},
        Breakage{"EmptyStream", [](std::vector<peerpb::SnapshotChunk>* c) { c->clear(); },
                 absl::StatusCode::kUnavailable}),
    [](const ::testing::TestParamInfo<Breakage>& info) { return info.param.name; });

TEST_F(SnapshotReceiverTest, SecondReceiveWhileOneIsStagedIsUnavailable) {
  Feed first(Chunks(MakeImage("one-", 20), Announce(100, 3), 7));
  auto m = receiver_->Receive(first.fn());
  ASSERT_TRUE(m.ok()) << m.status();

  Feed second(Chunks(MakeImage("two-", 20), Announce(110, 3), 7));
  auto refused = receiver_->Receive(second.fn());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_EQ(second.pos, 0u) << "the refused stream was read";
  // The staged image is untouched by the refused transfer.
  EXPECT_EQ(receiver_->staged_index(), 100u);
  ASSERT_TRUE(store_->InstallStaged(m->snapshot().metadata()).ok());
  receiver_->Release();
  EXPECT_EQ(LiveData(), MakeImage("one-", 20));

  // Released: the next transfer is accepted.
  ReceiveAndInstall(MakeImage("two-", 20), 110, 3);
}

// Below its free-space reserve a node stages no image, and stops staging
// one whose transfer is under way; the next transfer is accepted.
TEST_F(SnapshotReceiverTest, RefusedWhileTheDiskIsBelowItsReserve) {
  std::atomic<int> allowed_checks{0};
  receiver_ = std::make_unique<SnapshotReceiver>(store_.get(), [&]() -> absl::Status {
    if (allowed_checks.load() > 0) {
      allowed_checks.fetch_sub(1);
      return absl::OkStatus();
    }
    return absl::ResourceExhaustedError("below --min_free_bytes");
  });
  Feed none(Chunks(MakeImage("one-", 20), Announce(100, 3), 7));
  auto refused = receiver_->Receive(none.fn());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_EQ(none.pos, 0u);

  allowed_checks = 2;  // begin and the first chunk
  Feed cut(Chunks(MakeImage("one-", 20), Announce(100, 3), 7));
  refused = receiver_->Receive(cut.fn());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_EQ(cut.pos, 2u) << "staging went on below the reserve";
  EXPECT_EQ(receiver_->staged_index(), std::nullopt);
  EXPECT_EQ(LiveData(), live_);

  allowed_checks = 1000;
  ReceiveAndInstall(MakeImage("two-", 15), 110, 3);
}

TEST_F(SnapshotReceiverTest, ReleasedWithoutInstallAcceptsTheNext) {
  // The core refused the staged image (e.g. it had caught up meanwhile).
  Feed first(Chunks(MakeImage("one-", 20), Announce(100, 3), 7));
  ASSERT_TRUE(receiver_->Receive(first.fn()).ok());
  receiver_->Release();
  EXPECT_EQ(LiveData(), live_);
  ReceiveAndInstall(MakeImage("two-", 15), 110, 3);
}

TEST_F(SnapshotReceiverTest, SecondReceiveWhileOneIsStreamingIsUnavailable) {
  // The first transfer blocks inside its stream after chunk 1.
  std::vector<peerpb::SnapshotChunk> chunks = Chunks(MakeImage("one-", 30), Announce(100, 3), 7);
  absl::Notification mid_stream, resume;
  size_t pos = 0;
  auto next = [&](peerpb::SnapshotChunk* out) {
    if (pos == 2) {
      mid_stream.Notify();
      resume.WaitForNotification();
    }
    if (pos >= chunks.size()) return false;
    *out = chunks[pos++];
    return true;
  };
  absl::StatusOr<raftpb::Message> first = absl::UnknownError("not run");
  std::thread t([&] { first = receiver_->Receive(next); });
  mid_stream.WaitForNotification();
  EXPECT_THAT(receiver_->State(), ::testing::HasSubstr("receiving"));

  Feed second(Chunks(MakeImage("two-", 20), Announce(110, 3), 7));
  auto refused = receiver_->Receive(second.fn());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_EQ(second.pos, 0u);

  resume.Notify();
  t.join();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(store_->InstallStaged(first->snapshot().metadata()).ok());
  receiver_->Release();
  EXPECT_EQ(LiveData(), MakeImage("one-", 30));
}

TEST_F(SnapshotReceiverTest, InstallKeepsTheLogAfterTheSnapshotWhenItMatches) {
  // A follower holding entries 6..20 of term 2 gets a snapshot at 12 (term 2):
  // it keeps 13..20; a snapshot at 15 of another term discards the log.
  std::vector<raftpb::Entry> entries;
  for (uint64_t i = 1; i <= 20; ++i) {
    raftpb::Entry e;
    e.set_index(i);
    e.set_term(2);
    entries.push_back(e);
  }
  ASSERT_TRUE(store_->Append(entries, nullptr).ok());
  Feed feed(Chunks(MakeImage("s-", 5), Announce(12, 2), 7));
  auto m = receiver_->Receive(feed.fn());
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE(store_->InstallStaged(m->snapshot().metadata()).ok());
  receiver_->Release();
  EXPECT_EQ(store_->FirstIndex(), 13u);
  EXPECT_EQ(store_->LastIndex(), 20u);

  Feed other(Chunks(MakeImage("t-", 5), Announce(15, 3), 7));
  m = receiver_->Receive(other.fn());
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE(store_->InstallStaged(m->snapshot().metadata()).ok());
  receiver_->Release();
  EXPECT_EQ(store_->FirstIndex(), 16u);
  EXPECT_EQ(store_->LastIndex(), 15u);
  EXPECT_EQ(LiveData(), MakeImage("t-", 5));
}

}  // namespace
}  // namespace raftkv::server
