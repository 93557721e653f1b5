// PeerTransport: delivers Raft messages to peers, one gRPC client stream per
// peer (callback API) with a bounded queue and at most one write in flight.
//
// Send() never blocks and wakes no thread: with no write in flight the
// caller starts one itself (gRPC writes to the socket inline); messages that
// queue up meanwhile leave together as one MessageBatch when it completes
// (from gRPC's callback thread). A slow or dead peer fills only its own
// queue, and messages past the bound are dropped (Raft tolerates loss; the
// core is told the peer is unreachable). A broken stream is reported and
// re-opened by the first Send after an exponential backoff; what was queued
// for it is dropped (stale by then; Raft resends what matters). Messages to
// one peer keep their order while a stream lives. Keepalive pings detect a
// peer that vanished without closing its connection (a partition).
//
// PeerService is the receiving side: it accepts streams from peers of the
// same cluster, sent by a node it admits and meant for this node (the
// metadata of server/peer_headers.h), and hands each message addressed to
// it by the stream's sender to a callback on gRPC's callback thread (no
// thread hop). What it refuses is counted per reason and logged
// rate-limited (server/peer_refusals.h).
//
// FaultInjector is a test-only fault layer (server --enable_fault_injection,
// driven by Admin.SetFaults): per destination peer, outgoing Raft messages
// are dropped with a probability, held back for a delay, or all dropped
// ("blocked", one direction of a partition). Without an injector (the
// default) nothing is ever dropped or delayed on purpose.
//
// Thread safety: all public methods may be called from any thread.
#ifndef RAFTKV_SERVER_TRANSPORT_H_
#define RAFTKV_SERVER_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/server_builder.h"
#include "proto/peer.grpc.pb.h"
#include "proto/raft.pb.h"
#include "server/peer_refusals.h"
#include "server/snapshot_transfer.h"

namespace raftkv::server {

class PeerSender;
class DelayLine;

// Where a node's outgoing Raft messages go. Send must not block.
class MessageSender {
 public:
  virtual ~MessageSender() = default;
  virtual void Send(std::vector<raftpb::Message> msgs) = 0;
};

// Faults applied to the messages sent to one peer.
struct PeerFaults {
  double drop_probability = 0;  // each message dropped with this probability
  absl::Duration delay;         // each message held back this long
  bool blocked = false;         // every message dropped
  bool operator==(const PeerFaults& o) const {
    return drop_probability == o.drop_probability && delay == o.delay && blocked == o.blocked;
  }
};

// The fault table, per destination peer. Thread-safe.
class FaultInjector {
 public:
  explicit FaultInjector(uint64_t seed = std::random_device()()) : rng_(seed) {}

  // Replaces the whole table (an empty map heals everything).
  void Set(std::map<uint64_t, PeerFaults> faults) ABSL_LOCKS_EXCLUDED(mu_);
  std::map<uint64_t, PeerFaults> Get() const ABSL_LOCKS_EXCLUDED(mu_);

  // What happens to the next message to `peer`: false = drop it; else it
  // may leave after *delay.
  bool Admit(uint64_t peer, absl::Duration* delay) ABSL_LOCKS_EXCLUDED(mu_);
  // Whether `peer` is blocked (also refuses snapshot streams from it, which
  // travel outside the message stream).
  bool Blocked(uint64_t peer) const ABSL_LOCKS_EXCLUDED(mu_);

  uint64_t dropped() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t delayed() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  std::map<uint64_t, PeerFaults> faults_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t delayed_ ABSL_GUARDED_BY(mu_) = 0;
};

struct TransportOptions {
  uint64_t self_id = 0;
  uint64_t cluster_id = 0;
  uint64_t incarnation = 0;  // this node's (server/peer_headers.h)
  size_t max_queued_messages = 4096;  // per peer
  absl::Duration min_backoff = absl::Milliseconds(20);
  absl::Duration max_backoff = absl::Seconds(1);
  // A connection whose peer does not answer a ping within keepalive_timeout
  // (sent after keepalive_time without traffic) is closed and re-opened.
  absl::Duration keepalive_time = absl::Seconds(1);
  absl::Duration keepalive_timeout = absl::Seconds(3);
  // Test-only fault layer (not owned; must outlive the transport). Null:
  // no faults.
  FaultInjector* faults = nullptr;
  // For the connections to peers (server/node_tls.h). Null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

class PeerTransport final : public MessageSender {
 public:
  // on_unreachable(peer) is called (from the caller of Send or a gRPC
  // thread; it must not call back into the transport) when messages to
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
  friend class DelayLine;
  void KeepStub(std::shared_ptr<peerpb::Peer::Stub> stub) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands `msgs` (all to `peer`) to its sender, if it still has one.
  void Deliver(uint64_t peer, std::vector<raftpb::Message> msgs) ABSL_LOCKS_EXCLUDED(mu_);

  const TransportOptions options_;
  const std::function<void(uint64_t)> on_unreachable_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, std::shared_ptr<PeerSender>> senders_ ABSL_GUARDED_BY(mu_);
  // Every sender's channel, so that none is destroyed on a gRPC thread
  // (see PeerSender); pruned when a sender is replaced, cleared last.
  std::vector<std::shared_ptr<peerpb::Peer::Stub>> stubs_ ABSL_GUARDED_BY(mu_);
  // Holds back delayed messages; only with a fault injector.
  std::unique_ptr<DelayLine> delay_line_;
};

// The Peer gRPC service: receives streams of messages from other nodes
// (Send on the callback API, InstallSnapshot on a sync thread: it blocks on
// disk writes).
class PeerService final : public peerpb::Peer::WithCallbackMethod_Send<peerpb::Peer::Service> {
 public:
  // `receiver` (not owned) stages incoming snapshots; null refuses them.
  // `faults` (not owned, may be null): snapshots from blocked peers are
  // refused. `admit(sender, incarnation)` (may be empty: senders are not
  // checked) decides whether a stream's sender is accepted
  // (PeerIncarnations::Admit); a stream it refuses ends FAILED_PRECONDITION
  // with its message.
  // `admission_version` (may be empty) changes whenever admit's answer may
  // have: a long-lived stream is then judged again before its next batch.
  PeerService(uint64_t self_id, uint64_t cluster_id,
              std::function<void(raftpb::Message)> deliver,
              SnapshotReceiver* receiver = nullptr, FaultInjector* faults = nullptr,
              std::function<absl::Status(uint64_t, uint64_t)> admit = nullptr,
              std::function<uint64_t()> admission_version = nullptr)
      : self_id_(self_id),
        cluster_id_(cluster_id),
        deliver_(std::move(deliver)),
        receiver_(receiver),
        faults_(faults),
        admit_(std::move(admit)),
        admission_version_(std::move(admission_version)) {}

  grpc::ServerReadReactor<peerpb::MessageBatch>* Send(grpc::CallbackServerContext* context,
                                                      peerpb::SendAck* ack) override;
  grpc::Status InstallSnapshot(grpc::ServerContext* context,
                               grpc::ServerReader<peerpb::SnapshotChunk>* reader,
                               peerpb::SnapshotAck* ack) override;

  // Judges each stream's caller before anything else (NodeTls::AuthorizePeer:
  // its certificate); a refusal ends the stream with its status. Set before
  // the server starts.
  void set_authorize(std::function<grpc::Status(const grpc::ServerContextBase&)> authorize) {
    authorize_ = std::move(authorize);
  }

  // Judges the caller of another peer-facing service (server/forwarding.h)
  // as a stream is judged: certificate, cluster, recipient and sender.
  grpc::Status AdmitCaller(const grpc::ServerContextBase& context) const {
    uint64_t sender = 0, incarnation = 0;
    return CheckStream(&context, &sender, &incarnation);
  }

  // What this service refused so far; the node counts its own drops here
  // too (non_member). Thread-safe; lives as long as the service.
  PeerRefusals* refusals() const { return &refusals_; }

 private:
  class BatchReader;
  grpc::Status CheckCluster(const grpc::ServerContextBase* context) const;
  // CheckCluster, then the recipient (if named), then the sender (with
  // admit_); *sender is its id (0 if not checked) and *incarnation its
  // incarnation.
  grpc::Status CheckStream(const grpc::ServerContextBase* context, uint64_t* sender,
                           uint64_t* incarnation) const;

  const uint64_t self_id_;
  const uint64_t cluster_id_;
  const std::function<void(raftpb::Message)> deliver_;
  SnapshotReceiver* const receiver_;
  FaultInjector* const faults_;
  const std::function<absl::Status(uint64_t, uint64_t)> admit_;
  const std::function<uint64_t()> admission_version_;
  std::function<grpc::Status(const grpc::ServerContextBase&)> authorize_;
  mutable PeerRefusals refusals_;
};

// Configures a server that hosts a PeerService to accept the senders'
// keepalive pings (a stream only the client writes to counts as "without
// data" to gRPC, which would otherwise close the connection after two) and
// to ping its own connections every 10 s.
void AcceptPeerKeepalives(grpc::ServerBuilder* builder);

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_TRANSPORT_H_
