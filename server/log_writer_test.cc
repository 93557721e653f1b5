#include "server/log_writer.h"

#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "storage/test_util.h"

namespace raftkv::server {
namespace {

using storage::testing::MakeEntries;
using storage::testing::MakeHardState;

std::vector<uint64_t> Indexes(const std::vector<raftpb::Entry>& es) {
  std::vector<uint64_t> out;
  for (const auto& e : es) out.push_back(e.index());
  return out;
}

TEST(MergeEntriesTest, AppendsReplacesASuffixOrEverything) {
  std::vector<raftpb::Entry> merged;
  MergeEntries(&merged, MakeEntries(3, 6, 1));
  MergeEntries(&merged, MakeEntries(6, 8, 1));
  EXPECT_EQ(Indexes(merged), (std::vector<uint64_t>{3, 4, 5, 6, 7}));
  MergeEntries(&merged, MakeEntries(5, 6, 2));  // a new leader's entry at 5
  EXPECT_EQ(Indexes(merged), (std::vector<uint64_t>{3, 4, 5}));
  EXPECT_EQ(merged.back().term(), 2u);
  MergeEntries(&merged, MakeEntries(2, 3, 3));  // replaces from below
  EXPECT_EQ(Indexes(merged), (std::vector<uint64_t>{2}));
  MergeEntries(&merged, {});
  EXPECT_EQ(Indexes(merged), (std::vector<uint64_t>{2}));
}

// Records what was sent with the store's last index at that moment; the
// first Send can be held to keep the writer busy.
class RecordingSender final : public MessageSender {
 public:
  explicit RecordingSender(storage::LogStore* store) : store_(store) {}
  struct Sent {
    uint64_t index;       // the message's index
    uint64_t last_index;  // the store's last index when it was sent
    std::thread::id thread;
  };

  void Send(std::vector<raftpb::Message> msgs) override {
    absl::MutexLock l(&mu_);
    if (hold_) {
      held_ = true;
      mu_.Await(absl::Condition(+[](bool* hold) { return !*hold; }, &hold_));
    }
    for (const auto& m : msgs) {
      sent_.push_back(Sent{m.index(), store_->LastIndex(), std::this_thread::get_id()});
    }
  }
  void Hold() {
    absl::MutexLock l(&mu_);
    hold_ = true;
  }
  void WaitHeld() {
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(&held_));
  }
  void Release() {
    absl::MutexLock l(&mu_);
    hold_ = false;
  }
  std::vector<Sent> sent() {
    absl::MutexLock l(&mu_);
    return sent_;
  }

 private:
  storage::LogStore* const store_;
  absl::Mutex mu_;
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Sent> sent_ ABSL_GUARDED_BY(mu_);
};

raftpb::Message Ack(uint64_t index) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_APPEND_RESP);
  m.set_to(2);
  m.set_index(index);
  return m;
}

class LogWriterTest : public storage::testing::LogStoreTest {
 protected:
  void SetUp() override {
    LogStoreTest::SetUp();
    ASSERT_TRUE(store_->Bootstrap(storage::testing::MakeIdentity(1, 1),
                                  storage::testing::Voters({1, 2, 3}))
                    .ok());
    sender_ = std::make_unique<RecordingSender>(store_.get());
    writer_ = std::make_unique<LogWriter>(store_.get(), sender_.get(),
                                          [this](uint64_t index, uint64_t term, int writes) {
                                            absl::MutexLock l(&mu_);
                                            persisted_.emplace_back(index, term);
                                            entry_writes_ += writes;
                                          });
  }
  void TearDown() override { writer_.reset(); }

  std::vector<std::pair<uint64_t, uint64_t>> persisted() {
    absl::MutexLock l(&mu_);
    return persisted_;
  }

  std::unique_ptr<RecordingSender> sender_;
  std::unique_ptr<LogWriter> writer_;
  absl::Mutex mu_;
  std::vector<std::pair<uint64_t, uint64_t>> persisted_ ABSL_GUARDED_BY(mu_);
  int entry_writes_ ABSL_GUARDED_BY(mu_) = 0;  // summed over reports
  int entry_writes() {
    absl::MutexLock l(&mu_);
    return entry_writes_;
  }
};

TEST_F(LogWriterTest, AcknowledgementsLeaveOnlyOnceTheirEntriesAreStored) {
  writer_->Queue(MakeEntries(1, 4, 1), MakeHardState(1, 1, 0), {Ack(3)});
  writer_->Queue(MakeEntries(4, 6, 1), std::nullopt, {Ack(5)});
  writer_->WaitIdle();
  const auto sent = sender_->sent();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].index, 3u);
  EXPECT_GE(sent[0].last_index, 3u);
  EXPECT_EQ(sent[1].index, 5u);
  EXPECT_GE(sent[1].last_index, 5u);
  EXPECT_EQ(store_->LastIndex(), 5u);
  EXPECT_EQ(store_->hard_state().term(), 1u);
  ASSERT_FALSE(persisted().empty());
  EXPECT_EQ(persisted().back(), std::make_pair(uint64_t{5}, uint64_t{1}));
}

TEST_F(LogWriterTest, WritesQueuedDuringAFlushMergeAndKeepTheirOrder) {
  sender_->Hold();
  writer_->Queue(MakeEntries(1, 6, 1), MakeHardState(1, 1, 0), {Ack(5)});
  sender_->WaitHeld();  // the first write is done; the writer is busy
  // A new leader replaces 4-5 while more is queued behind it; a message
  // with nothing to write must still wait for the writes before it.
  writer_->Queue(MakeEntries(6, 8, 1), std::nullopt, {});
  writer_->Queue(MakeEntries(4, 5, 2), MakeHardState(2, 0, 0), {Ack(4)});
  writer_->Queue({}, std::nullopt, {Ack(40)});
  EXPECT_EQ(sender_->sent().size(), 0u) << "nothing may overtake the held write";
  const uint64_t writes_before = writer_->writes();
  sender_->Release();
  writer_->WaitIdle();
  EXPECT_EQ(writer_->writes(), writes_before + 1 + 1) << "the three queued requests are one write";
  const auto sent = sender_->sent();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].index, 5u);
  EXPECT_EQ(sent[1].index, 4u);
  EXPECT_EQ(sent[2].index, 40u);
  EXPECT_NE(sent[2].thread, std::this_thread::get_id()) << "sent by the writer, after its write";
  EXPECT_EQ(store_->LastIndex(), 4u) << "6-7 went with the suffix the new leader replaced";
  EXPECT_EQ(Terms(1, 5), (std::vector<uint64_t>{1, 1, 1, 2}));
  EXPECT_EQ(store_->hard_state().term(), 2u);
  EXPECT_EQ(persisted().back(), std::make_pair(uint64_t{4}, uint64_t{2}));
  EXPECT_EQ(entry_writes(), 3) << "a merged report counts every request with entries it covers";
  EXPECT_EQ(persisted().size(), 2u);
}

TEST_F(LogWriterTest, MessagesWithNothingToWriteGoAtOnceWhenIdle) {
  writer_->Queue({}, std::nullopt, {Ack(7)});
  const auto sent = sender_->sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].thread, std::this_thread::get_id());
  EXPECT_TRUE(persisted().empty());
}

TEST_F(LogWriterTest, DestructionFinishesQueuedWrites) {
  sender_->Hold();
  writer_->Queue(MakeEntries(1, 3, 1), std::nullopt, {Ack(2)});
  sender_->WaitHeld();
  writer_->Queue(MakeEntries(3, 9, 1), std::nullopt, {Ack(8)});
  sender_->Release();
  writer_.reset();
  EXPECT_EQ(store_->LastIndex(), 8u);
  EXPECT_EQ(sender_->sent().size(), 2u);
}

}  // namespace
}  // namespace raftkv::server
