// Snapshot transfer between nodes (leader -> lagging follower).
//
// The leader's SnapshotSender streams a point-in-time image of its `data`
// (storage::DataSnapshot) over Peer.InstallSnapshot in chunks, each with its
// crc32, and the crc32 of the whole image at the end. gRPC flow control
// bounds memory on both sides to a few chunks whatever the image size; a
// rate cap can slow it further. At most max_concurrent transfers run.
//
// The follower's SnapshotReceiver verifies every chunk and stages it into
// the store's spare data generation (bounded memory), then hands the
// announcing MSG_SNAPSHOT to the Raft core. The node installs the staged
// image in one write when the core accepts it (LogStore::InstallStaged), or
// releases it. One transfer is received at a time.
//
// Thread safety: all methods may be called from any thread.
#ifndef RAFTKV_SERVER_SNAPSHOT_TRANSFER_H_
#define RAFTKV_SERVER_SNAPSHOT_TRANSFER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/security/credentials.h"
#include "proto/peer.grpc.pb.h"
#include "server/peer_headers.h"
#include "storage/log_store.h"

namespace raftkv::server {

struct SnapshotOptions {
  // For the connections to peers (server/node_tls.h). Null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  uint64_t cluster_id = 0;
  uint64_t incarnation = 0;  // this node's (server/peer_headers.h)
  size_t chunk_bytes = 1 << 20;
  uint64_t max_bytes_per_sec = 0;  // 0: no cap
  int max_concurrent = 2;
  // Called on the transfer's thread when reading the image fails (DataLoss
  // for corruption). The transfer is then cancelled: the follower never
  // installs a short image. May be empty.
  std::function<void(const absl::Status&)> on_read_error;

  absl::Status Validate() const;
};

class SnapshotSender {
 public:
  // on_done(peer, ok) runs on the transfer's thread when it ends.
  SnapshotSender(SnapshotOptions options, std::function<void(uint64_t, bool)> on_done);
  ~SnapshotSender();  // cancels running transfers and waits for them

  // Starts streaming `image` (announced by `msg`, a MSG_SNAPSHOT) to the
  // peer at `address`. False when max_concurrent transfers are running or
  // one to this peer already is (the caller reports the send as failed).
  bool Start(uint64_t peer, const std::string& address, raftpb::Message msg,
             std::shared_ptr<storage::DataSnapshot> image) ABSL_LOCKS_EXCLUDED(mu_);

  // "to N: X MB sent" for each running transfer.
  std::vector<std::string> InProgress() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Transfer {
    std::thread thread;
    std::atomic<uint64_t> bytes{0};
    std::atomic<bool> done{false};
    std::shared_ptr<grpc::ClientContext> context;
  };
  void Run(uint64_t peer, std::string address, raftpb::Message msg,
           std::shared_ptr<storage::DataSnapshot> image, Transfer* t);
  bool Stream(const std::string& address, const raftpb::Message& msg,
              const storage::DataSnapshot& image, Transfer* t);
  void ReapLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SnapshotOptions options_;
  const std::function<void(uint64_t, bool)> on_done_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, std::unique_ptr<Transfer>> transfers_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

class SnapshotReceiver {
 public:
  // `store` is not owned and must outlive the receiver. `refusal`, if set,
  // is asked before staging starts and before each chunk is staged: an
  // error (the disk is below its free-space reserve) ends the transfer with
  // it, so an image never fills the disk.
  explicit SnapshotReceiver(storage::LogStore* store,
                            std::function<absl::Status()> refusal = nullptr)
      : store_(store), refusal_(std::move(refusal)) {}

  // Reads one transfer's chunks from `next` (false: the stream ended),
  // verifying and staging them. Returns the MSG_SNAPSHOT to hand to the
  // core. Errors: Unavailable while another transfer is received or staged
  // (retry later), DataLoss for a bad checksum, sequence or size.
  absl::StatusOr<raftpb::Message> Receive(
      const std::function<bool(peerpb::SnapshotChunk*)>& next) ABSL_LOCKS_EXCLUDED(mu_);

  // The index of the staged image awaiting install, if any.
  std::optional<uint64_t> staged_index() const ABSL_LOCKS_EXCLUDED(mu_);
  // The node installed or refused the staged image: accept the next one.
  void Release() ABSL_LOCKS_EXCLUDED(mu_);
  // "receiving N MB" / "staged at I" / "" for status.
  std::string State() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::StatusOr<raftpb::Message> ReceiveChunks(
      const std::function<bool(peerpb::SnapshotChunk*)>& next);

  storage::LogStore* const store_;
  const std::function<absl::Status()> refusal_;
  mutable absl::Mutex mu_;
  bool receiving_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<uint64_t> staged_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> received_bytes_{0};
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_SNAPSHOT_TRANSFER_H_
