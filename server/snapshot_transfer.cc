#include "server/snapshot_transfer.h"

#include <zlib.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"

namespace raftkv::server {
namespace {


uint32_t Crc(uint32_t crc, const std::string& data) {
  return static_cast<uint32_t>(
      crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

}  // namespace

absl::Status SnapshotOptions::Validate() const {
  if (chunk_bytes < 1024) return absl::InvalidArgumentError("snapshot chunk below 1 KiB");
  if (max_concurrent < 1) return absl::InvalidArgumentError("max_concurrent must be >= 1");
  return absl::OkStatus();
}

SnapshotSender::SnapshotSender(SnapshotOptions options,
                               std::function<void(uint64_t, bool)> on_done)
    : options_(std::move(options)), on_done_(std::move(on_done)) {}

SnapshotSender::~SnapshotSender() {
  std::map<uint64_t, std::unique_ptr<Transfer>> transfers;
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    for (auto& [peer, t] : transfers_) {
      if (t->context) t->context->TryCancel();
    }
    transfers.swap(transfers_);
  }
  for (auto& [peer, t] : transfers) t->thread.join();
}

void SnapshotSender::ReapLocked() {
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    if (it->second->done.load()) {
      it->second->thread.join();
      it = transfers_.erase(it);
    } else {
      ++it;
    }
  }
}

bool SnapshotSender::Start(uint64_t peer, const std::string& address, raftpb::Message msg,
                           std::shared_ptr<storage::DataSnapshot> image) {
  absl::MutexLock l(&mu_);
  if (stopping_) return false;
  ReapLocked();
  if (transfers_.count(peer) ||
      static_cast<int>(transfers_.size()) >= options_.max_concurrent) {
    return false;
  }
  auto t = std::make_unique<Transfer>();
  t->context = std::make_shared<grpc::ClientContext>();
  Transfer* raw = t.get();
  transfers_[peer] = std::move(t);
  raw->thread = std::thread([this, peer, address, msg = std::move(msg),
                             image = std::move(image), raw]() mutable {
    Run(peer, std::move(address), std::move(msg), std::move(image), raw);
  });
  return true;
}

void SnapshotSender::Run(uint64_t peer, std::string address, raftpb::Message msg,
                         std::shared_ptr<storage::DataSnapshot> image, Transfer* t) {
  const absl::Time start = absl::Now();
  const bool ok = Stream(address, msg, *image, t);
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  LOG(INFO) << "snapshot at " << msg.snapshot().metadata().index() << " to node " << peer
            << (ok ? " sent: " : " failed after ") << t->bytes.load() << " bytes in " << secs
            << " s (" << (secs > 0 ? t->bytes.load() / secs / 1e6 : 0) << " MB/s)";
  image.reset();  // release the RocksDB snapshot before reporting
  on_done_(peer, ok);
  t->done.store(true);
}

bool SnapshotSender::Stream(const std::string& address, const raftpb::Message& msg,
                            const storage::DataSnapshot& image, Transfer* t) {
  auto stub = peerpb::Peer::NewStub(grpc::CreateChannel(
      address, options_.credentials != nullptr ? options_.credentials
                                               : grpc::InsecureChannelCredentials()));
  t->context->AddMetadata(kClusterIdHeader, absl::StrCat(options_.cluster_id));
  t->context->AddMetadata(kSenderHeader, FormatSender(msg.from(), options_.incarnation));
  t->context->AddMetadata(kRecipientHeader, absl::StrCat(msg.to()));
  peerpb::SnapshotAck ack;
  std::unique_ptr<grpc::ClientWriter<peerpb::SnapshotChunk>> writer =
      stub->InstallSnapshot(t->context.get(), &ack);
  uint64_t seq = 0;
  uint32_t total_crc = Crc(0, "");
  uint64_t total_bytes = 0;
  bool write_ok = true;
  const absl::Time start = absl::Now();
  peerpb::SnapshotData batch;
  size_t batch_bytes = 0;
  auto flush = [&](bool last) {
    peerpb::SnapshotChunk chunk;
    if (seq == 0) *chunk.mutable_message() = msg;
    chunk.set_seq(seq++);
    batch.SerializeToString(chunk.mutable_data());
    batch.Clear();
    batch_bytes = 0;
    chunk.set_crc32(Crc(0, chunk.data()));
    total_crc = Crc(total_crc, chunk.data());
    total_bytes += chunk.data().size();
    if (last) {
      chunk.set_last(true);
      chunk.set_total_crc32(total_crc);
      chunk.set_total_bytes(total_bytes);
    }
    write_ok = writer->Write(chunk);
    t->bytes.store(total_bytes);
    if (options_.max_bytes_per_sec > 0) {
      // Sleep until the average rate is back under the cap.
      const absl::Time due =
          start + absl::Seconds(static_cast<double>(total_bytes) / options_.max_bytes_per_sec);
      const absl::Time now = absl::Now();
      if (due > now) absl::SleepFor(due - now);
    }
  };
  absl::Status scan = image.Scan("", [&](absl::string_view k, absl::string_view v) {
    batch.add_keys(k.data(), k.size());
    batch.add_values(v.data(), v.size());
    batch_bytes += k.size() + v.size() + 8;
    if (batch_bytes >= options_.chunk_bytes) flush(false);
    return write_ok;
  });
  if (!scan.ok()) {
    LOG(WARNING) << "reading the snapshot image: " << scan;
    if (options_.on_read_error) options_.on_read_error(scan);
    t->context->TryCancel();
    writer->Finish();
    return false;
  }
  if (write_ok) flush(true);
  if (write_ok) write_ok = writer->WritesDone();
  grpc::Status st = writer->Finish();
  if (!st.ok()) {
    LOG(WARNING) << "snapshot stream to " << address << ": " << st.error_message();
    return false;
  }
  return write_ok;
}

std::vector<std::string> SnapshotSender::InProgress() const {
  std::vector<std::string> out;
  absl::MutexLock l(&mu_);
  for (const auto& [peer, t] : transfers_) {
    if (!t->done.load()) {
      out.push_back(absl::StrCat("to ", peer, ": ", t->bytes.load() / 1000000.0, " MB sent"));
    }
  }
  return out;
}

absl::StatusOr<raftpb::Message> SnapshotReceiver::Receive(
    const std::function<bool(peerpb::SnapshotChunk*)>& next) {
  {
    absl::MutexLock l(&mu_);
    if (receiving_ || staged_.has_value()) {
      return absl::UnavailableError("another snapshot is being received or installed");
    }
    receiving_ = true;
  }
  received_bytes_.store(0);
  absl::StatusOr<raftpb::Message> m = ReceiveChunks(next);
  absl::MutexLock l(&mu_);
  receiving_ = false;
  if (m.ok()) staged_ = m->snapshot().metadata().index();
  return m;
}

absl::StatusOr<raftpb::Message> SnapshotReceiver::ReceiveChunks(
    const std::function<bool(peerpb::SnapshotChunk*)>& next) {
  if (refusal_) {
    if (absl::Status s = refusal_(); !s.ok()) return s;
  }
  if (absl::Status s = store_->BeginStaging(); !s.ok()) return s;
  peerpb::SnapshotChunk chunk;
  raftpb::Message announce;
  uint64_t seq = 0, total_bytes = 0;
  uint32_t total_crc = Crc(0, "");
  while (next(&chunk)) {
    if (chunk.seq() != seq) {
      return absl::DataLossError(absl::StrCat("snapshot chunk ", chunk.seq(), " out of order (want ",
                                              seq, ")"));
    }
    if (Crc(0, chunk.data()) != chunk.crc32()) {
      return absl::DataLossError(absl::StrCat("snapshot chunk ", seq, " fails its checksum"));
    }
    if (seq == 0) {
      if (chunk.message().type() != raftpb::MSG_SNAPSHOT) {
        return absl::DataLossError("the first snapshot chunk does not announce a snapshot");
      }
      announce = chunk.message();
    }
    total_crc = Crc(total_crc, chunk.data());
    total_bytes += chunk.data().size();
    received_bytes_.store(total_bytes);
    peerpb::SnapshotData data;
    if (!data.ParseFromString(chunk.data()) || data.keys_size() != data.values_size()) {
      return absl::DataLossError(absl::StrCat("snapshot chunk ", seq, " is malformed"));
    }
    storage::DataBatch batch;
    for (int k = 0; k < data.keys_size(); ++k) batch.Put(data.keys(k), data.values(k));
    if (refusal_) {
      if (absl::Status s = refusal_(); !s.ok()) return s;
    }
    if (absl::Status s = store_->StageData(batch); !s.ok()) return s;
    ++seq;
    if (chunk.last()) {
      if (chunk.total_crc32() != total_crc || chunk.total_bytes() != total_bytes) {
        return absl::DataLossError("the snapshot image fails its whole-image checksum");
      }
      return announce;
    }
  }
  return absl::UnavailableError(absl::StrCat("snapshot stream ended after ", seq, " chunks"));
}

std::optional<uint64_t> SnapshotReceiver::staged_index() const {
  absl::MutexLock l(&mu_);
  return staged_;
}

void SnapshotReceiver::Release() {
  absl::MutexLock l(&mu_);
  staged_.reset();
}

std::string SnapshotReceiver::State() const {
  absl::MutexLock l(&mu_);
  if (receiving_) return absl::StrCat("receiving: ", received_bytes_.load() / 1000000.0, " MB");
  if (staged_) return absl::StrCat("staged at ", *staged_, ", installing");
  return "";
}

}  // namespace raftkv::server
