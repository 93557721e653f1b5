#include "server/transport.h"

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"
#include "server/peer_headers.h"

namespace raftkv::server {


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

// Holds back messages the fault layer delays, on one thread of its own.
// Per peer, messages leave in the order they were sent: while any is held
// for a peer, the undelayed ones behind it are held too (a delay that
// shrinks never reorders a stream).
class DelayLine {
 public:
  explicit DelayLine(PeerTransport* transport)
      : transport_(transport), thread_([this] { Run(); }) {}
  ~DelayLine() {
    {
      absl::MutexLock l(&mu_);
      stopping_ = true;
    }
    thread_.join();
  }

  // Whether a message to `peer` sent now must queue behind held ones (some
  // are held or being handed over).
  bool Holds(uint64_t peer) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    auto it = pending_.find(peer);
    return it != pending_.end() && it->second > 0;
  }

  void Add(raftpb::Message m, absl::Time due) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    const uint64_t peer = m.to();
    absl::Time& last = last_due_[peer];
    last = std::max(last, due);
    ++pending_[peer];
    held_.emplace(last, std::move(m));  // equal keys keep insertion order
  }

 private:
  void Run() {
    absl::MutexLock l(&mu_);
    while (!stopping_) {
      const absl::Time now = absl::Now();
      std::vector<raftpb::Message> due;
      while (!held_.empty() && held_.begin()->first <= now) {
        due.push_back(std::move(held_.begin()->second));
        held_.erase(held_.begin());
      }
      if (!due.empty()) {
        mu_.Unlock();
        for (auto& m : due) {
          const uint64_t peer = m.to();
          std::vector<raftpb::Message> one;
          one.push_back(std::move(m));
          transport_->Deliver(peer, std::move(one));
        }
        mu_.Lock();
        // Handed over: later messages to these peers may overtake nothing.
        for (const auto& m : due) --pending_[m.to()];
        continue;
      }
      // Sleep until the earliest held message is due, or one due earlier
      // than that is added.
      const absl::Time until =
          held_.empty() ? now + absl::Milliseconds(100) : held_.begin()->first;
      auto wake = [this, until]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || (!held_.empty() && held_.begin()->first < until);
      };
      mu_.AwaitWithDeadline(absl::Condition(&wake), until);
    }
  }

  PeerTransport* const transport_;
  absl::Mutex mu_;
  std::multimap<absl::Time, raftpb::Message> held_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, absl::Time> last_due_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, int> pending_ ABSL_GUARDED_BY(mu_);  // held or being handed over
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts after the members above exist
};

// One peer: its queue and at most one live stream, with at most one write
// in flight. Writes are chained: Enqueue starts one when none is in flight;
// its completion (on a gRPC thread) starts the next with whatever queued up
// meanwhile. Writes and holds are started and released outside mu_ (gRPC
// may run reactions inline); only Stop's TryCancel runs under it, which
// keeps the stream from being freed meanwhile and runs no reaction inline.
//
// Lifetime: shared by the transport and by each live stream, so a stream's
// last reactions never outlive the sender they report to.
class PeerSender : public std::enable_shared_from_this<PeerSender> {
 public:
  PeerSender(const TransportOptions& options, uint64_t peer, std::string address,
             std::function<void(uint64_t)> on_unreachable)
      : options_(options),
        peer_(peer),
        address_(std::move(address)),
        on_unreachable_(std::move(on_unreachable)),
        backoff_(options.min_backoff) {
    // gRPC's own reconnect backoff grows to 2 minutes and a failed channel
    // re-resolves at most every 30 s: a peer restarted after a long outage
    // would wait that long before the leader reached it again. Keep the
    // channel's retries within this sender's backoff bounds instead.
    grpc::ChannelArguments args;
    const int max_ms = std::max<int>(100, absl::ToInt64Milliseconds(options.max_backoff));
    const int min_ms =
        std::clamp<int>(absl::ToInt64Milliseconds(options.min_backoff), 100, max_ms);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, min_ms);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_ms);
    // Also the connect timeout (default 20 s): a connect into a partition
    // gives up and is retried instead of hanging on past the heal.
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, max_ms);
    args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, max_ms);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, absl::ToInt64Milliseconds(options.keepalive_time));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                absl::ToInt64Milliseconds(options.keepalive_timeout));
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);  // keep pinging an idle stream
    stub_ = peerpb::Peer::NewStub(
        grpc::CreateCustomChannel(address_,
                                  options.credentials != nullptr
                                      ? options.credentials
                                      : grpc::InsecureChannelCredentials(),
                                  args));
  }

  const std::string& address() const { return address_; }
  std::shared_ptr<peerpb::Peer::Stub> stub() const { return stub_; }

  // Queues `msgs` and starts a write if none is in flight. Moves from *msgs.
  void Enqueue(std::vector<raftpb::Message>* msgs) ABSL_LOCKS_EXCLUDED(mu_) {
    if (msgs->empty()) return;
    Stream* open = nullptr;
    Stream* write = nullptr;
    bool overflow = false;
    {
      absl::MutexLock l(&mu_);
      if (stopping_) return;
      if (stream_ == nullptr) {
        // Backing off after a broken stream: these are dropped like the
        // ones queued for it (the break was reported).
        if (absl::Now() < retry_at_) return;
        stream_ = open = new Stream(shared_from_this());
      }
      for (auto& m : *msgs) {
        if (queue_.size() >= std::max<size_t>(1, options_.max_queued_messages)) {
          queue_.pop_front();  // the oldest is the least useful
          overflow = true;
        }
        queue_.push_back(std::move(m));
      }
      if (!stream_->writing) write = TakeBatch(stream_);
    }
    if (open != nullptr) open->Start(stub_.get(), options_);
    if (write != nullptr) write->Write();
    if (overflow) {
      LOG_EVERY_N(WARNING, 1000) << "peer " << peer_ << " (" << address_
                                 << "): send queue full, dropping messages";
      on_unreachable_(peer_);
    }
  }

  // No more writes; the live stream is cancelled. Reactions still running
  // finish on their own (they hold a reference).
  void Stop() ABSL_LOCKS_EXCLUDED(mu_) {
    Stream* idle = nullptr;
    {
      absl::MutexLock l(&mu_);
      stopping_ = true;
      if (stream_ != nullptr) {
        stream_->context.TryCancel();
        // With a write in flight its completion releases the stream.
        if (!stream_->writing) idle = stream_;
        stream_ = nullptr;
      }
    }
    if (idle != nullptr) idle->RemoveHold();
  }

 private:
  // One incarnation of the stream. Owns itself: deleted in OnDone. A hold
  // (taken at Start) keeps OnDone away while the sender may still start a
  // write on it from outside a reaction; whoever detaches it from the
  // sender with no write in flight releases the hold.
  struct Stream : public grpc::ClientWriteReactor<peerpb::MessageBatch> {
    explicit Stream(std::shared_ptr<PeerSender> owner) : owner(std::move(owner)) {}

    void Start(peerpb::Peer::Stub* stub, const TransportOptions& options) {
      context.AddMetadata(kClusterIdHeader, absl::StrCat(options.cluster_id));
      context.AddMetadata(kSenderHeader, FormatSender(options.self_id, options.incarnation));
      context.AddMetadata(kRecipientHeader, absl::StrCat(owner->peer_));
      stub->async()->Send(&context, &ack, this);
      AddHold();
      StartCall();
    }
    void Write() { StartWrite(&batch); }
    void OnWriteDone(bool ok) override { owner->WriteDone(this, ok); }
    void OnDone(const grpc::Status& status) override {
      if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        // Refused for who we are (another cluster, a forgotten incarnation):
        // retrying will not help, an operator must act.
        LOG_EVERY_N(ERROR, 20) << "peer " << owner->peer_ << " refuses this node: "
                               << status.error_message();
      }
      VLOG(1) << "stream to peer " << owner->peer_ << " ended: " << status.error_message();
      delete this;
    }

    const std::shared_ptr<PeerSender> owner;
    grpc::ClientContext context;
    peerpb::SendAck ack;
    peerpb::MessageBatch batch;  // the write in flight
    bool writing = false;        // guarded by owner->mu_
  };

  // Moves the head of the queue into s->batch and marks a write in flight;
  // null if there is nothing to send.
  Stream* TakeBatch(Stream* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queue_.empty()) return nullptr;
    s->batch.Clear();
    // Bounded in bytes well under the receiver's message limit (one append
    // may carry up to the core's max_msg_bytes, and the leader sends many
    // at once to a follower catching up); at least one message.
    constexpr size_t kMaxBatchBytes = 4 << 20;
    size_t bytes = 0;
    while (!queue_.empty()) {
      const size_t size = queue_.front().ByteSizeLong();
      if (s->batch.messages_size() > 0 && bytes + size > kMaxBatchBytes) break;
      bytes += size;
      *s->batch.add_messages() = std::move(queue_.front());
      queue_.pop_front();
    }
    s->writing = true;
    return s;
  }

  void WriteDone(Stream* s, bool ok) ABSL_LOCKS_EXCLUDED(mu_) {
    Stream* next = nullptr;
    bool release = false;
    bool broke = false;
    {
      absl::MutexLock l(&mu_);
      s->writing = false;
      if (stream_ != s) {
        release = true;  // detached by Stop while this write was in flight
      } else if (!ok) {
        // The stream broke: the peer is down, restarting or cut off.
        stream_ = nullptr;
        queue_.clear();  // stale by the time a new stream opens
        retry_at_ = absl::Now() + backoff_;
        backoff_ = std::min(backoff_ * 2, options_.max_backoff);
        release = broke = true;
      } else {
        backoff_ = options_.min_backoff;
        next = TakeBatch(s);
      }
    }
    if (next != nullptr) next->Write();
    if (release) s->RemoveHold();
    if (broke) {
      VLOG(1) << "peer " << peer_ << " (" << address_ << ") unreachable";
      on_unreachable_(peer_);
    }
  }

  const TransportOptions options_;
  const uint64_t peer_;
  const std::string address_;
  const std::function<void(uint64_t)> on_unreachable_;
  // One channel for the sender's life. Shared with the transport, which
  // destroys it: a stream's last reaction may drop the sender's last
  // reference on a gRPC callback thread, and a channel destroyed there can
  // release gRPC's callback queue from its own thread (a double free in
  // gRPC 1.51, seen under ASan).
  std::shared_ptr<peerpb::Peer::Stub> stub_;
  absl::Mutex mu_;
  std::deque<raftpb::Message> queue_ ABSL_GUARDED_BY(mu_);
  Stream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;  // the live stream, if any
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time retry_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
};

PeerTransport::PeerTransport(TransportOptions options,
                             std::function<void(uint64_t)> on_unreachable)
    : options_(std::move(options)), on_unreachable_(std::move(on_unreachable)) {
  if (options_.faults != nullptr) delay_line_ = std::make_unique<DelayLine>(this);
}

PeerTransport::~PeerTransport() {
  delay_line_.reset();  // its thread delivers through senders_
  std::map<uint64_t, std::shared_ptr<PeerSender>> senders;
  {
    absl::MutexLock l(&mu_);
    senders.swap(senders_);
  }
  std::vector<std::weak_ptr<PeerSender>> left;
  for (auto& [id, s] : senders) {
    s->Stop();
    left.push_back(s);
  }
  senders.clear();
  // Cancelled streams end on gRPC threads, each releasing its reference:
  // wait (briefly) so none reports to an owner that is gone.
  const absl::Time give_up = absl::Now() + absl::Seconds(2);
  for (auto& w : left) {
    while (!w.expired() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  }
  absl::MutexLock l(&mu_);
  stubs_.clear();  // the channels go here, on this thread
}

void PeerTransport::KeepStub(std::shared_ptr<peerpb::Peer::Stub> stub) {
  // Channels only this list still holds have no sender left: safe to close
  // here (not a gRPC thread).
  stubs_.erase(std::remove_if(stubs_.begin(), stubs_.end(),
                              [](const auto& s) { return s.use_count() == 1; }),
               stubs_.end());
  stubs_.push_back(std::move(stub));
}

void PeerTransport::SetPeer(uint64_t id, const std::string& address) {
  if (id == options_.self_id) return;
  std::shared_ptr<PeerSender> old;
  {
    absl::MutexLock l(&mu_);
    auto it = senders_.find(id);
    if (it != senders_.end()) {
      if (it->second->address() == address) return;
      old = std::move(it->second);
    }
    auto sender = std::make_shared<PeerSender>(options_, id, address, on_unreachable_);
    KeepStub(sender->stub());
    senders_[id] = std::move(sender);
  }
  if (old != nullptr) old->Stop();
}

void PeerTransport::RemovePeer(uint64_t id) {
  std::shared_ptr<PeerSender> old;
  {
    absl::MutexLock l(&mu_);
    auto it = senders_.find(id);
    if (it == senders_.end()) return;
    old = std::move(it->second);
    senders_.erase(it);
  }
  old->Stop();
}

std::string PeerTransport::AddressOf(uint64_t id) const {
  absl::MutexLock l(&mu_);
  auto it = senders_.find(id);
  return it == senders_.end() ? "" : it->second->address();
}

void PeerTransport::Deliver(uint64_t peer, std::vector<raftpb::Message> msgs) {
  std::shared_ptr<PeerSender> sender;
  {
    absl::MutexLock l(&mu_);
    auto it = senders_.find(peer);
    if (it == senders_.end()) return;
    sender = it->second;
  }
  sender->Enqueue(&msgs);
}

void PeerTransport::Send(std::vector<raftpb::Message> msgs) {
  // Per peer, in order (a round's messages go to a handful of peers).
  std::map<uint64_t, std::vector<raftpb::Message>> by_peer;
  for (auto& m : msgs) {
    if (delay_line_ != nullptr) {
      absl::Duration delay;
      if (!options_.faults->Admit(m.to(), &delay)) continue;
      if (delay > absl::ZeroDuration() || delay_line_->Holds(m.to())) {
        delay_line_->Add(std::move(m), absl::Now() + delay);
        continue;
      }
    }
    const uint64_t to = m.to();
    by_peer[to].push_back(std::move(m));
  }
  for (auto& [peer, batch] : by_peer) Deliver(peer, std::move(batch));
}

grpc::Status PeerService::CheckStream(const grpc::ServerContextBase* context,
                                      uint64_t* sender, uint64_t* incarnation) const {
  if (authorize_) {
    if (grpc::Status s = authorize_(*context); !s.ok()) {
      refusals_.Count(PeerRefusal::kPeerCertificate, [&] {
        return absl::StrCat("a stream from ", context->peer(), ": ", s.error_message());
      });
      return s;
    }
  }
  if (grpc::Status s = CheckCluster(context); !s.ok()) return s;
  *sender = 0;
  *incarnation = 0;
  const auto& metadata = context->client_metadata();
  if (auto it = metadata.find(kRecipientHeader); it != metadata.end()) {
    const absl::string_view to(it->second.data(), it->second.size());
    uint64_t id = 0;
    if (!absl::SimpleAtoi(to, &id) || id != self_id_) {
      refusals_.Count(PeerRefusal::kWrongRecipient, [&] {
        return absl::StrCat("a stream from ", context->peer(), " for node ", to,
                            " reached node ", self_id_);
      });
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("this is node ", self_id_, ", not node ", to,
                                       ": check the address this cluster has for node ", to));
    }
  }
  if (!admit_) return grpc::Status::OK;
  auto it = metadata.find(kSenderHeader);
  std::optional<std::pair<uint64_t, uint64_t>> who;
  if (it != metadata.end()) {
    who = ParseSender(absl::string_view(it->second.data(), it->second.size()));
  }
  if (!who.has_value()) {
    refusals_.Count(PeerRefusal::kNoSender, [&] {
      return absl::StrCat("a stream from ", context->peer(), " without a valid ", kSenderHeader);
    });
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "a peer stream must say who sends it (raftkv-sender)");
  }
  if (absl::Status s = admit_(who->first, who->second); !s.ok()) {
    refusals_.Count(PeerRefusal::kWrongIncarnation, [&] {
      return absl::StrCat("a stream of node ", who->first, " from ", context->peer(), ": ",
                          s.message());
    });
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, std::string(s.message()));
  }
  *sender = who->first;
  *incarnation = who->second;
  return grpc::Status::OK;
}

grpc::Status PeerService::CheckCluster(const grpc::ServerContextBase* context) const {
  auto it = context->client_metadata().find(kClusterIdHeader);
  uint64_t cluster = 0;
  if (it == context->client_metadata().end() ||
      !absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &cluster) ||
      cluster != cluster_id_) {
    refusals_.Count(PeerRefusal::kOtherCluster, [&] {
      return absl::StrCat("a stream from ", context->peer(), " of cluster ",
                          cluster != 0 ? absl::StrCat(cluster) : "(none)",
                          ", but this node belongs to cluster ", cluster_id_);
    });
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("this node belongs to cluster ", cluster_id_));
  }
  return grpc::Status::OK;
}

// Reads one peer's stream, handing each message over on gRPC's callback
// thread. Owns itself: deleted in OnDone.
class PeerService::BatchReader : public grpc::ServerReadReactor<peerpb::MessageBatch> {
 public:
  BatchReader(const PeerService* service, const grpc::Status& refused, uint64_t sender,
              uint64_t incarnation, uint64_t version)
      : service_(service), sender_(sender), incarnation_(incarnation), version_(version) {
    if (!refused.ok()) {
      Finish(refused);
      return;
    }
    StartRead(&batch_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the sender closed the stream or went away
      Finish(grpc::Status::OK);
      return;
    }
    if (sender_ != 0 && service_->admission_version_) {
      // Records or membership changed since the stream was admitted.
      if (const uint64_t v = service_->admission_version_(); v != version_) {
        version_ = v;
        if (absl::Status s = service_->admit_(sender_, incarnation_); !s.ok()) {
          service_->refusals_.Count(PeerRefusal::kWrongIncarnation, [&] {
            return absl::StrCat("node ", sender_, "'s open stream: ", s.message());
          });
          Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, std::string(s.message())));
          return;
        }
      }
    }
    PeerRefusals& refusals = service_->refusals_;
    for (raftpb::Message& m : *batch_.mutable_messages()) {
      if (m.to() != service_->self_id_) {
        refusals.Count(PeerRefusal::kWrongRecipient, [&] {
          return absl::StrCat("a message for node ", m.to(), " from node ", m.from(),
                              " reached node ", service_->self_id_);
        });
      } else if (sender_ != 0 && m.from() != sender_) {
        refusals.Count(PeerRefusal::kWrongSender, [&] {
          return absl::StrCat("a message from node ", m.from(), " on node ", sender_,
                              "'s stream");
        });
      } else if (m.type() == raftpb::MSG_SNAPSHOT) {
        // Snapshots arrive only through InstallSnapshot, with their image.
        refusals.Count(PeerRefusal::kBareSnapshot, [&] {
          return absl::StrCat("a snapshot message from node ", m.from(),
                              " outside InstallSnapshot");
        });
      } else {
        service_->deliver_(std::move(m));
      }
    }
    batch_.Clear();
    StartRead(&batch_);
  }

  void OnDone() override { delete this; }

 private:
  const PeerService* const service_;
  const uint64_t sender_;  // 0: not checked (no admit function)
  const uint64_t incarnation_;
  uint64_t version_;  // admission_version_ when last admitted
  peerpb::MessageBatch batch_;
};

grpc::ServerReadReactor<peerpb::MessageBatch>* PeerService::Send(
    grpc::CallbackServerContext* context, peerpb::SendAck* /*ack*/) {
  uint64_t sender = 0, incarnation = 0;
  // Read before admitting: a change in between is caught at the next batch.
  const uint64_t version = admission_version_ ? admission_version_() : 0;
  grpc::Status s = CheckStream(context, &sender, &incarnation);
  return new BatchReader(this, s, sender, incarnation, version);
}

grpc::Status PeerService::InstallSnapshot(grpc::ServerContext* context,
                                          grpc::ServerReader<peerpb::SnapshotChunk>* reader,
                                          peerpb::SnapshotAck* /*ack*/) {
  uint64_t sender = 0, incarnation = 0;
  if (grpc::Status s = CheckStream(context, &sender, &incarnation); !s.ok()) return s;
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
  if (m->to() != self_id_ || (sender != 0 && m->from() != sender)) {
    receiver_->Release();
    const PeerRefusal why =
        m->to() != self_id_ ? PeerRefusal::kWrongRecipient : PeerRefusal::kWrongSender;
    refusals_.Count(why, [&] {
      return absl::StrCat("a snapshot from node ", m->from(), " for node ", m->to(),
                          " on a stream of node ", sender);
    });
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("snapshot from node ", m->from(), " for node ", m->to(),
                                     " on a stream of node ", sender, " to node ", self_id_));
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

void AcceptPeerKeepalives(grpc::ServerBuilder* builder) {
  // The server pings too (rarely): a stream whose sender vanished in a
  // partition is closed rather than held open until the process exits.
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 500);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
}

}  // namespace raftkv::server
