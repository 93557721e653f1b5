// PeerTransport: delivers Raft messages to peers, one gRPC client stream per
// peer, each driven by its own sender thread with a bounded queue.
//
// Send() never blocks: a slow or dead peer fills only its own queue, and
// messages past the bound are dropped (Raft tolerates loss; the core is told
// the peer is unreachable). A broken stream is re-opened with exponential
// backoff. Messages to one peer keep their order while a stream lives.
//
// PeerService is the receiving side: it accepts streams from peers of the
// same cluster (checked by the `raftkv-cluster-id` metadata) and hands each
// message to a callback.
//
// Thread safety: all public methods may be called from any thread.
#ifndef RAFTKV_SERVER_TRANSPORT_H_
#define RAFTKV_SERVER_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/peer.grpc.pb.h"
#include "proto/raft.pb.h"
#include "server/snapshot_transfer.h"

namespace raftkv::server {

class PeerSender;

// Where a node's outgoing Raft messages go. Send must not block.
class MessageSender {
 public:
  virtual ~MessageSender() = default;
  virtual void Send(std::vector<raftpb::Message> msgs) = 0;
};

struct TransportOptions {
  uint64_t self_id = 0;
  uint64_t cluster_id = 0;
  size_t max_queued_messages = 4096;  // per peer
  absl::Duration min_backoff = absl::Milliseconds(20);
  absl::Duration max_backoff = absl::Seconds(1);
};

class PeerTransport final : public MessageSender {
 public:
  // on_unreachable(peer) is called (from a sender thread) when a message to
  // `peer` could not be delivered.
  PeerTransport(TransportOptions options, std::function<void(uint64_t)> on_unreachable);
  ~PeerTransport() override;  // stops every sender

  // Adds or re-addresses a peer.
  void SetPeer(uint64_t id, const std::string& address) ABSL_LOCKS_EXCLUDED(mu_);
  void RemovePeer(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  std::string AddressOf(uint64_t id) const ABSL_LOCKS_EXCLUDED(mu_);

  // Queues each message for its `to` peer; unknown peers are dropped.
  void Send(std::vector<raftpb::Message> msgs) override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const TransportOptions options_;
  const std::function<void(uint64_t)> on_unreachable_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, std::unique_ptr<PeerSender>> senders_ ABSL_GUARDED_BY(mu_);
};

// The Peer gRPC service: receives streams of messages from other nodes.
class PeerService final : public peerpb::Peer::Service {
 public:
  // `receiver` (not owned) stages incoming snapshots; null refuses them.
  PeerService(uint64_t self_id, uint64_t cluster_id,
              std::function<void(raftpb::Message)> deliver,
              SnapshotReceiver* receiver = nullptr)
      : self_id_(self_id),
        cluster_id_(cluster_id),
        deliver_(std::move(deliver)),
        receiver_(receiver) {}

  grpc::Status Send(grpc::ServerContext* context,
                    grpc::ServerReader<raftpb::Message>* reader,
                    peerpb::SendAck* ack) override;
  grpc::Status InstallSnapshot(grpc::ServerContext* context,
                               grpc::ServerReader<peerpb::SnapshotChunk>* reader,
                               peerpb::SnapshotAck* ack) override;

 private:
  grpc::Status CheckCluster(grpc::ServerContext* context) const;

  const uint64_t self_id_;
  const uint64_t cluster_id_;
  const std::function<void(raftpb::Message)> deliver_;
  SnapshotReceiver* const receiver_;
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_TRANSPORT_H_
