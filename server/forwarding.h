// Forwarding to the leader. etcd's clients send any call to any member and
// do not follow "not leader" hints, so a member that does not lead hands
// writes and membership changes to the leader itself, over the peer
// channel: the Forward service of proto/peer.proto, carrying the peer
// metadata (server/peer_headers.h) and credentials, admitted on the leader
// as peer streams are.
//
// LeaderProposer (the calling member): proposes on this node while it
// leads, else forwards to the leader it knows. An answer "not leader" (the
// leader stepped down before proposing: nothing was proposed), a leader that
// cannot be connected to (the call was never sent: e.g. it just died and no
// new one is known yet) or no known leader is retried every
// `retry_interval` until the deadline; every other outcome, including a
// connection lost mid-call (the write may have been proposed), is the
// caller's.
//
// ForwardService (the leader): proposes what it receives through the local
// node and answers once it is applied here.
//
// Thread safety: all methods may be called from any thread.
#ifndef RAFTKV_SERVER_FORWARDING_H_
#define RAFTKV_SERVER_FORWARDING_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/kv.pb.h"
#include "proto/peer.grpc.pb.h"
#include "proto/raft.pb.h"

namespace raftkv::server {

using WriteDone = std::function<void(absl::StatusOr<kvpb::WriteResult>)>;
// Proposes a command on this node; `done` runs once, on any thread.
using LocalPropose = std::function<void(std::string command, absl::Time deadline, WriteDone done)>;
// A membership change on this node; blocks until applied or failed.
using LocalChange =
    std::function<absl::StatusOr<raftpb::ConfState>(raftpb::ConfChange cc, absl::Time deadline)>;

struct ForwardingOptions {
  uint64_t self_id = 0;
  uint64_t cluster_id = 0;
  uint64_t incarnation = 0;  // this node's (server/peer_headers.h)
  // For connections to the leader (peer credentials). Null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::function<uint64_t()> leader;                   // 0: none known
  std::function<std::string(uint64_t)> address_of;    // "" if unknown
  LocalPropose propose_local;
  LocalChange change_local;
  absl::Duration retry_interval = absl::Milliseconds(50);

  absl::Status Validate() const;
};

class LeaderProposer {
 public:
  // REQUIRES: options.Validate().ok().
  explicit LeaderProposer(ForwardingOptions options);
  ~LeaderProposer();  // answers calls waiting to retry UNAVAILABLE

  void Propose(std::string command, absl::Time deadline, WriteDone done);
  absl::StatusOr<raftpb::ConfState> ChangeMembership(const raftpb::ConfChange& cc,
                                                     absl::Time deadline);

 private:
  struct Call;
  void Attempt(std::shared_ptr<Call> call);
  // Runs Attempt(call) again after retry_interval, or fails it with `why`
  // if that is past its deadline.
  void Retry(std::shared_ptr<Call> call, absl::Status why);
  std::shared_ptr<peerpb::Forward::Stub> StubFor(const std::string& address)
      ABSL_LOCKS_EXCLUDED(mu_);
  void AddMetadata(grpc::ClientContext* ctx, uint64_t leader) const;
  void RunTimers();

  const ForwardingOptions options_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<peerpb::Forward::Stub>> stubs_ ABSL_GUARDED_BY(mu_);
  std::multimap<absl::Time, std::shared_ptr<Call>> timers_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread timer_thread_;
};

using ForwardBase = peerpb::Forward::WithCallbackMethod_Propose<peerpb::Forward::Service>;

class ForwardService final : public ForwardBase {
 public:
  // `admit` judges each caller as a peer stream is judged (cluster, sender,
  // certificate); a refusal is the call's answer.
  ForwardService(std::function<grpc::Status(const grpc::ServerContextBase&)> admit,
                 LocalPropose propose, LocalChange change);

  grpc::ServerUnaryReactor* Propose(grpc::CallbackServerContext* ctx,
                                    const peerpb::ForwardedCommand* req,
                                    peerpb::ForwardedResult* resp) override;
  grpc::Status ChangeMembership(grpc::ServerContext* ctx, const raftpb::ConfChange* req,
                                raftpb::ConfState* resp) override;

 private:
  const std::function<grpc::Status(const grpc::ServerContextBase&)> admit_;
  const LocalPropose propose_;
  const LocalChange change_;
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_FORWARDING_H_
