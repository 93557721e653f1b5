#include "server/transport.h"

#include <algorithm>
#include <deque>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"

namespace raftkv::server {

constexpr char kClusterIdHeader[] = "raftkv-cluster-id";

void FaultInjector::Set(std::map<uint64_t, PeerFaults> faults) {
  absl::MutexLock l(&mu_);
  faults_ = std::move(faults);
}

std::map<uint64_t, PeerFaults> FaultInjector::Get() const {
  absl::MutexLock l(&mu_);
  return faults_;
}

bool FaultInjector::Admit(uint64_t peer, absl::Duration* delay) {
  *delay = absl::ZeroDuration();
  absl::MutexLock l(&mu_);
  auto it = faults_.find(peer);
  if (it == faults_.end()) return true;
  const PeerFaults& f = it->second;
  if (f.blocked ||
      (f.drop_probability > 0 &&
       std::uniform_real_distribution<double>(0, 1)(rng_) < f.drop_probability)) {
    ++dropped_;
    return false;
  }
  if (f.delay > absl::ZeroDuration()) {
    *delay = f.delay;
    ++delayed_;
  }
  return true;
}

bool FaultInjector::Blocked(uint64_t peer) const {
  absl::MutexLock l(&mu_);
  auto it = faults_.find(peer);
  return it != faults_.end() && it->second.blocked;
}

uint64_t FaultInjector::dropped() const {
  absl::MutexLock l(&mu_);
  return dropped_;
}

uint64_t FaultInjector::delayed() const {
  absl::MutexLock l(&mu_);
  return delayed_;
}

// One peer's queue and the thread that drains it into a stream.
class PeerSender {
 public:
  PeerSender(const TransportOptions& options, uint64_t peer, std::string address,
             std::function<void(uint64_t)> on_unreachable)
      : options_(options),
        peer_(peer),
        address_(std::move(address)),
        on_unreachable_(std::move(on_unreachable)),
        thread_([this] { Run(); }) {}

  ~PeerSender() {
    {
      absl::MutexLock l(&mu_);
      stopping_ = true;
      if (context_) context_->TryCancel();
    }
    thread_.join();
  }

  const std::string& address() const { return address_; }

  // `due`: the message may not leave before then (the fault layer's delay).
  void Enqueue(raftpb::Message m, absl::Time due = absl::InfinitePast()) {
    bool dropped = false;
    {
      absl::MutexLock l(&mu_);
      if (queue_.size() >= options_.max_queued_messages) {
        queue_.pop_front();  // the oldest is the least useful
        dropped = true;
      }
      queue_.push_back(Queued{due, std::move(m)});
    }
    if (dropped) {
      LOG_EVERY_N(WARNING, 1000) << "peer " << peer_ << " (" << address_
                                 << "): send queue full, dropping messages";
      on_unreachable_(peer_);
    }
  }

 private:
  struct Queued {
    absl::Time due;
    raftpb::Message msg;
  };

  bool HasWork() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return stopping_ || !queue_.empty();
  }

  // Waits for work, then takes every message that is due (in queue order:
  // a message held back by a delay holds back those behind it). False when
  // stopping.
  bool TakeDue(std::deque<raftpb::Message>* batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (true) {
      mu_.Await(absl::Condition(this, &PeerSender::HasWork));
      if (stopping_) return false;
      const absl::Time now = absl::Now();
      while (!queue_.empty() && queue_.front().due <= now) {
        batch->push_back(std::move(queue_.front().msg));
        queue_.pop_front();
      }
      if (!batch->empty()) return true;
      auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithDeadline(absl::Condition(&stop), queue_.front().due);
    }
  }

  void Run() {
    absl::Duration backoff = options_.min_backoff;
    // gRPC's own reconnect backoff grows to 2 minutes and a failed channel
    // re-resolves at most every 30 s: a peer restarted after a long outage
    // would wait that long before the leader reached it again. Keep the
    // channel's retries within this sender's backoff bounds instead.
    grpc::ChannelArguments args;
    const int max_ms =
        std::max<int>(100, absl::ToInt64Milliseconds(options_.max_backoff));
    const int min_ms =
        std::clamp<int>(absl::ToInt64Milliseconds(options_.min_backoff), 100, max_ms);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, min_ms);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_ms);
    args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, max_ms);
    std::unique_ptr<peerpb::Peer::Stub> stub = peerpb::Peer::NewStub(
        grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args));
    std::unique_ptr<grpc::ClientWriter<raftpb::Message>> writer;
    peerpb::SendAck ack;
    while (true) {
      std::deque<raftpb::Message> batch;
      {
        absl::MutexLock l(&mu_);
        if (!TakeDue(&batch)) break;
      }
      if (!writer) {
        auto ctx = std::make_shared<grpc::ClientContext>();
        ctx->AddMetadata(kClusterIdHeader, absl::StrCat(options_.cluster_id));
        {
          absl::MutexLock l(&mu_);
          if (stopping_) break;
          context_ = ctx;
        }
        writer = stub->Send(ctx.get(), &ack);
      }
      bool ok = true;
      for (auto& m : batch) {
        if (!writer->Write(m)) {
          ok = false;
          break;
        }
      }
      if (ok) {
        backoff = options_.min_backoff;
        continue;
      }
      // The stream broke: the peer is down or restarting. Report it, wait,
      // and open a new stream for the next messages.
      grpc::Status st = writer->Finish();
      writer.reset();
      {
        absl::MutexLock l(&mu_);
        context_.reset();
      }
      VLOG(1) << "peer " << peer_ << " (" << address_ << ") unreachable: " << st.error_message();
      on_unreachable_(peer_);
      absl::MutexLock l(&mu_);
      auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stop), backoff);
      if (stopping_) break;
      queue_.clear();  // stale by now; Raft resends what matters
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
    if (writer) {
      writer->WritesDone();
      writer->Finish();
    }
  }

  const TransportOptions options_;
  const uint64_t peer_;
  const std::string address_;
  const std::function<void(uint64_t)> on_unreachable_;
  absl::Mutex mu_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<grpc::ClientContext> context_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // last: starts after the members above exist
};

PeerTransport::PeerTransport(TransportOptions options,
                             std::function<void(uint64_t)> on_unreachable)
    : options_(std::move(options)), on_unreachable_(std::move(on_unreachable)) {}

PeerTransport::~PeerTransport() {
  std::map<uint64_t, std::unique_ptr<PeerSender>> senders;
  {
    absl::MutexLock l(&mu_);
    senders.swap(senders_);
  }
  senders.clear();  // joins outside the lock
}

void PeerTransport::SetPeer(uint64_t id, const std::string& address) {
  if (id == options_.self_id) return;
  std::unique_ptr<PeerSender> old;
  absl::MutexLock l(&mu_);
  auto it = senders_.find(id);
  if (it != senders_.end()) {
    if (it->second->address() == address) return;
    old = std::move(it->second);
  }
  senders_[id] = std::make_unique<PeerSender>(options_, id, address, on_unreachable_);
}

void PeerTransport::RemovePeer(uint64_t id) {
  std::unique_ptr<PeerSender> old;
  absl::MutexLock l(&mu_);
  auto it = senders_.find(id);
  if (it == senders_.end()) return;
  old = std::move(it->second);
  senders_.erase(it);
}

std::string PeerTransport::AddressOf(uint64_t id) const {
  absl::MutexLock l(&mu_);
  auto it = senders_.find(id);
  return it == senders_.end() ? "" : it->second->address();
}

void PeerTransport::Send(std::vector<raftpb::Message> msgs) {
  if (msgs.empty()) return;
  absl::MutexLock l(&mu_);
  for (auto& m : msgs) {
    auto it = senders_.find(m.to());
    if (it == senders_.end()) continue;
    absl::Time due = absl::InfinitePast();  // now
    if (options_.faults != nullptr) {
      absl::Duration delay;
      if (!options_.faults->Admit(m.to(), &delay)) continue;
      if (delay > absl::ZeroDuration()) due = absl::Now() + delay;
    }
    it->second->Enqueue(std::move(m), due);
  }
}

grpc::Status PeerService::CheckCluster(grpc::ServerContext* context) const {
  auto it = context->client_metadata().find(kClusterIdHeader);
  uint64_t cluster = 0;
  if (it == context->client_metadata().end() ||
      !absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &cluster) ||
      cluster != cluster_id_) {
    LOG_EVERY_N(WARNING, 100) << "refusing a peer stream from " << context->peer()
                              << ": not of cluster " << cluster_id_;
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("this node belongs to cluster ", cluster_id_));
  }
  return grpc::Status::OK;
}

grpc::Status PeerService::Send(grpc::ServerContext* context,
                               grpc::ServerReader<raftpb::Message>* reader,
                               peerpb::SendAck* /*ack*/) {
  if (grpc::Status s = CheckCluster(context); !s.ok()) return s;
  raftpb::Message m;
  while (reader->Read(&m)) {
    if (m.to() != self_id_) {
      LOG_EVERY_N(WARNING, 100) << "dropping a message for node " << m.to()
                                << " sent to node " << self_id_;
    } else if (m.type() == raftpb::MSG_SNAPSHOT) {
      // Snapshots arrive only through InstallSnapshot, with their image.
      LOG_EVERY_N(WARNING, 100) << "dropping a bare snapshot message from " << m.from();
    } else {
      deliver_(std::move(m));
    }
    m.Clear();
  }
  return grpc::Status::OK;
}

grpc::Status PeerService::InstallSnapshot(grpc::ServerContext* context,
                                          grpc::ServerReader<peerpb::SnapshotChunk>* reader,
                                          peerpb::SnapshotAck* /*ack*/) {
  if (grpc::Status s = CheckCluster(context); !s.ok()) return s;
  if (receiver_ == nullptr) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "snapshots are not accepted");
  }
  absl::StatusOr<raftpb::Message> m =
      receiver_->Receive([reader](peerpb::SnapshotChunk* c) { return reader->Read(c); });
  if (!m.ok()) {
    LOG(WARNING) << "snapshot transfer refused: " << m.status();
    return grpc::Status(static_cast<grpc::StatusCode>(m.status().code()),
                        std::string(m.status().message()));
  }
  if (m->to() != self_id_) {
    receiver_->Release();
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "snapshot for another node");
  }
  if (faults_ != nullptr && faults_->Blocked(m->from())) {
    receiver_->Release();
    LOG(WARNING) << "fault injection: refusing a snapshot from blocked node " << m->from();
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "blocked by fault injection");
  }
  LOG(INFO) << "snapshot at " << m->snapshot().metadata().index() << " from node " << m->from()
            << " staged; handing it to raft";
  deliver_(std::move(*m));
  return grpc::Status::OK;
}

}  // namespace raftkv::server
