#include "server/forwarding.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "server/peer_headers.h"

namespace raftkv::server {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

grpc::Status ToGrpcStatus(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// The leader answered that it no longer leads: nothing was proposed.
bool NotLeader(const absl::Status& s) {
  return absl::IsFailedPrecondition(s) && absl::StartsWith(s.message(), "not leader");
}

// gRPC could not reach the leader at all (its channel found no connection):
// the call was never sent, so nothing was proposed.
bool NeverSent(const absl::Status& s) {
  return absl::IsUnavailable(s) && absl::StrContains(s.message(), "failed to connect");
}

absl::Status NoLeader(uint64_t self) {
  return absl::FailedPreconditionError(
      absl::StrCat("not leader; node ", self, " knows no leader to forward to"));
}

// A forwarded call's deadline: the forwarder's (it always sets one), at
// most a minute away.
absl::Time DeadlineOf(std::chrono::system_clock::time_point d) {
  return std::min(absl::FromChrono(d), absl::Now() + absl::Minutes(1));
}

}  // namespace

absl::Status ForwardingOptions::Validate() const {
  if (self_id == 0) return absl::InvalidArgumentError("self_id must not be 0");
  if (!leader || !address_of || !propose_local || !change_local) {
    return absl::InvalidArgumentError("leader, address_of, propose_local and change_local are required");
  }
  if (retry_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("retry_interval must be positive");
  }
  return absl::OkStatus();
}

struct LeaderProposer::Call {
  std::string command;
  absl::Time deadline;
  WriteDone done;
  // The RPC in flight (one at a time).
  grpc::ClientContext context;
  peerpb::ForwardedCommand request;
  peerpb::ForwardedResult response;
  std::shared_ptr<peerpb::Forward::Stub> stub;  // kept alive while in flight
};

LeaderProposer::LeaderProposer(ForwardingOptions options) : options_(std::move(options)) {
  const absl::Status valid = options_.Validate();
  CHECK(valid.ok()) << valid;
  timer_thread_ = std::thread([this] { RunTimers(); });
}

LeaderProposer::~LeaderProposer() {
  std::multimap<absl::Time, std::shared_ptr<Call>> waiting;
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    waiting.swap(timers_);
  }
  timer_thread_.join();
  for (auto& [when, call] : waiting) call->done(absl::UnavailableError("node is shutting down"));
}

void LeaderProposer::RunTimers() {
  absl::MutexLock l(&mu_);
  while (!stopping_) {
    const absl::Time now = absl::Now();
    if (!timers_.empty() && timers_.begin()->first <= now) {
      std::shared_ptr<Call> call = std::move(timers_.begin()->second);
      timers_.erase(timers_.begin());
      mu_.Unlock();
      Attempt(std::move(call));
      mu_.Lock();
      continue;
    }
    const absl::Time wake = timers_.empty() ? now + absl::Seconds(1) : timers_.begin()->first;
    mu_.AwaitWithDeadline(absl::Condition(
                              +[](LeaderProposer* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
                                return p->stopping_ || (!p->timers_.empty() &&
                                                        p->timers_.begin()->first <= absl::Now());
                              },
                              this),
                          wake);
  }
}

void LeaderProposer::Retry(std::shared_ptr<Call> call, absl::Status why) {
  const absl::Time when = absl::Now() + options_.retry_interval;
  if (when >= call->deadline) {
    call->done(std::move(why));
    return;
  }
  {
    absl::MutexLock l(&mu_);
    if (!stopping_) {
      timers_.emplace(when, std::move(call));
      return;
    }
  }
  call->done(absl::UnavailableError("node is shutting down"));
}

void LeaderProposer::Propose(std::string command, absl::Time deadline, WriteDone done) {
  auto call = std::make_shared<Call>();
  call->command = std::move(command);
  call->deadline = deadline;
  call->done = std::move(done);
  Attempt(std::move(call));
}

void LeaderProposer::AddMetadata(grpc::ClientContext* ctx, uint64_t leader) const {
  ctx->AddMetadata(kClusterIdHeader, absl::StrCat(options_.cluster_id));
  ctx->AddMetadata(kSenderHeader, FormatSender(options_.self_id, options_.incarnation));
  ctx->AddMetadata(kRecipientHeader, absl::StrCat(leader));
}

void LeaderProposer::Attempt(std::shared_ptr<Call> call) {
  const uint64_t leader = options_.leader();
  if (leader == options_.self_id) {
    // A "not leader" here means leadership moved since: try the new one.
    std::shared_ptr<Call> again = call;
    options_.propose_local(
        call->command, call->deadline,
        [this, again = std::move(again)](absl::StatusOr<kvpb::WriteResult> r) mutable {
          if (!r.ok() && NotLeader(r.status())) return Retry(std::move(again), r.status());
          again->done(std::move(r));
        });
    return;
  }
  const std::string address = leader == 0 ? std::string() : options_.address_of(leader);
  if (address.empty()) return Retry(std::move(call), NoLeader(options_.self_id));

  // A fresh context per attempt (a ClientContext serves one RPC).
  auto attempt = std::make_shared<Call>();
  attempt->command = std::move(call->command);
  attempt->deadline = call->deadline;
  attempt->done = std::move(call->done);
  attempt->stub = StubFor(address);
  attempt->context.set_deadline(absl::ToChronoTime(attempt->deadline));
  AddMetadata(&attempt->context, leader);
  attempt->request.set_command(attempt->command);
  Call* raw = attempt.get();
  raw->stub->async()->Propose(
      &raw->context, &raw->request, &raw->response,
      [this, attempt = std::move(attempt)](grpc::Status status) mutable {
        absl::Status s = FromGrpc(status);
        if (NotLeader(s) || NeverSent(s)) return Retry(std::move(attempt), s);
        if (!s.ok()) return attempt->done(std::move(s));
        kvpb::WriteResult result;
        if (!result.ParseFromString(attempt->response.result())) {
          return attempt->done(absl::InternalError("the leader's answer does not parse"));
        }
        attempt->done(std::move(result));
      });
}

absl::StatusOr<raftpb::ConfState> LeaderProposer::ChangeMembership(const raftpb::ConfChange& cc,
                                                                   absl::Time deadline) {
  while (true) {
    const uint64_t leader = options_.leader();
    absl::Status s;
    if (leader == options_.self_id) {
      absl::StatusOr<raftpb::ConfState> r = options_.change_local(cc, deadline);
      if (r.ok() || !NotLeader(r.status())) return r;
      s = r.status();
    } else if (std::string address = leader == 0 ? "" : options_.address_of(leader);
               address.empty()) {
      s = NoLeader(options_.self_id);
    } else {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(deadline));
      AddMetadata(&ctx, leader);
      raftpb::ConfState conf;
      s = FromGrpc(StubFor(address)->ChangeMembership(&ctx, cc, &conf));
      if (s.ok()) return conf;
      if (!NotLeader(s) && !NeverSent(s)) return s;
    }
    if (absl::Now() + options_.retry_interval >= deadline) return s;
    absl::SleepFor(options_.retry_interval);
  }
}

std::shared_ptr<peerpb::Forward::Stub> LeaderProposer::StubFor(const std::string& address) {
  absl::MutexLock l(&mu_);
  auto it = stubs_.find(address);
  if (it != stubs_.end()) return it->second;
  grpc::ChannelArguments args;
  // Reconnect within a second, not gRPC's default of up to 2 minutes: a
  // restarted leader is reached again as soon as it is back.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1000);
  auto stub = std::shared_ptr<peerpb::Forward::Stub>(peerpb::Forward::NewStub(
      grpc::CreateCustomChannel(address,
                                options_.credentials != nullptr
                                    ? options_.credentials
                                    : grpc::InsecureChannelCredentials(),
                                args)));
  stubs_.emplace(address, stub);
  return stub;
}

ForwardService::ForwardService(std::function<grpc::Status(const grpc::ServerContextBase&)> admit,
                               LocalPropose propose, LocalChange change)
    : admit_(std::move(admit)), propose_(std::move(propose)), change_(std::move(change)) {}

grpc::ServerUnaryReactor* ForwardService::Propose(grpc::CallbackServerContext* ctx,
                                                  const peerpb::ForwardedCommand* req,
                                                  peerpb::ForwardedResult* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (admit_) {
    if (grpc::Status s = admit_(*ctx); !s.ok()) {
      reactor->Finish(s);
      return reactor;
    }
  }
  propose_(req->command(), DeadlineOf(ctx->deadline()),
           [reactor, resp](absl::StatusOr<kvpb::WriteResult> r) {
             if (!r.ok()) {
               reactor->Finish(ToGrpcStatus(r.status()));
               return;
             }
             r->SerializeToString(resp->mutable_result());
             reactor->Finish(grpc::Status::OK);
           });
  return reactor;
}

grpc::Status ForwardService::ChangeMembership(grpc::ServerContext* ctx,
                                              const raftpb::ConfChange* req,
                                              raftpb::ConfState* resp) {
  if (admit_) {
    if (grpc::Status s = admit_(*ctx); !s.ok()) return s;
  }
  absl::StatusOr<raftpb::ConfState> r = change_(*req, DeadlineOf(ctx->deadline()));
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

}  // namespace raftkv::server
