#include "client/client.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/batch_stream.h"
#include "grpcpp/grpcpp.h"
#include "proto/admin.grpc.pb.h"
#include "proto/kv.grpc.pb.h"

namespace raftkv::client {
namespace {

// gRPC's reconnect backoff defaults to 1s growing to 120s: a node that comes
// back would stay "unavailable" to this client for minutes. Cap it.
constexpr int kReconnectBackoffMs = 100;
constexpr int kMaxReconnectBackoffMs = 1000;

// An attempt is not started with less time than this left.
constexpr absl::Duration kMinAttemptTime = absl::Milliseconds(1);

// A random non-zero 64-bit id from the kernel's CSPRNG (std::random_device
// as a fallback where getrandom(2) fails).
uint64_t RandomClientId() {
  uint64_t id = 0;
  while (id == 0) {
    ssize_t n = getrandom(&id, sizeof(id), 0);
    if (n != static_cast<ssize_t>(sizeof(id))) {
      std::random_device rd;
      id = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    }
  }
  return id;
}

// Uniform in [d/2, d].
absl::Duration Jitter(absl::Duration d) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> frac(0.5, 1.0);
  return d * frac(rng);
}

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

// A request's size is counted as its byte fields (key, value, ...) plus
// this, at least what the rest of a Batch message of that one op takes: the
// fields' tags and lengths, the op's id and timeout_ms, a write's header
// (three varints) and the message's framing.
constexpr size_t kOpFramingBytes = 128;

// CANCELLED too: the client never cancels a call (or an op) it still waits
// for, so it comes from a server shutting down mid-call (outcome unknown,
// like a lost connection). Ops on a stream the client cancels end
// UNAVAILABLE (BatchStream).
bool Retriable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE ||
         code == grpc::StatusCode::DEADLINE_EXCEEDED || code == grpc::StatusCode::CANCELLED;
}

// Time a TLS diagnosis (DiagnoseTls) of a failed connection may take.
constexpr absl::Duration kTlsDiagnosisTime = absl::Seconds(2);

bool IsNotLeader(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
         absl::StartsWithIgnoreCase(s.error_message(), "not leader");
}

// The `raftkv-leader-addr` of a unary NOT_LEADER answer, "" if none.
std::string LeaderHint(const grpc::ClientContext& ctx) {
  const auto& md = ctx.GetServerTrailingMetadata();
  auto it = md.find(kLeaderAddrKey);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// `op "key"`, the key escaped and shortened, to name a call in errors.
std::string Describe(absl::string_view op, absl::string_view key) {
  constexpr size_t kMaxKey = 64;
  std::string shown = absl::CHexEscape(key.substr(0, kMaxKey));
  return absl::StrCat(op, " \"", shown, key.size() > kMaxKey ? "...\"" : "\"");
}

absl::Status ValidateEndpoint(absl::string_view ep) {
  size_t colon = ep.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint \"", ep, "\" is not host:port"));
  }
  absl::string_view host = ep.substr(0, colon);
  absl::string_view port = ep.substr(colon + 1);
  if (absl::StartsWith(host, "[")) {
    if (!absl::EndsWith(host, "]") || host.size() < 3) {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoint \"", ep, "\": bad IPv6 host"));
    }
  } else if (absl::StrContains(host, ':')) {
    return absl::InvalidArgumentError(absl::StrCat(
        "endpoint \"", ep, "\": write an IPv6 host in brackets, [::1]:7001"));
  }
  for (char c : host) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) || c == ',') {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoint \"", ep, "\": bad host"));
    }
  }
  uint32_t p = 0;
  if (port.empty() ||
      !std::all_of(port.begin(), port.end(),
                   [](char c) { return absl::ascii_isdigit(c); }) ||
      !absl::SimpleAtoi(port, &p) || p == 0 || p > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint \"", ep, "\": bad port \"", port, "\""));
  }
  return absl::OkStatus();
}

KeyValue FromProto(const kvpb::KeyValue& kv) {
  return KeyValue{kv.key(), kv.value(), kv.version()};
}

// The exactly-once header of a write op (put, delete, cas); null for others.
kvpb::WriteHeader* WriteHeaderOf(kvpb::RequestOp* op) {
  switch (op->op_case()) {
    case kvpb::RequestOp::kPut:
      return op->mutable_put()->mutable_header();
    case kvpb::RequestOp::kDelete:
      return op->mutable_delete_()->mutable_header();
    case kvpb::RequestOp::kCas:
      return op->mutable_cas()->mutable_header();
    default:
      return nullptr;
  }
}

// The answer a successful `op` must carry.
kvpb::ResponseOp::ResponseCase ExpectedResponse(const kvpb::RequestOp& op) {
  switch (op.op_case()) {
    case kvpb::RequestOp::kPut:
      return kvpb::ResponseOp::kPut;
    case kvpb::RequestOp::kGet:
      return kvpb::ResponseOp::kGet;
    case kvpb::RequestOp::kDelete:
      return kvpb::ResponseOp::kDelete;
    case kvpb::RequestOp::kScan:
      return kvpb::ResponseOp::kScan;
    case kvpb::RequestOp::kCas:
      return kvpb::ResponseOp::kCas;
    case kvpb::RequestOp::OP_NOT_SET:
      break;
  }
  return kvpb::ResponseOp::RESPONSE_NOT_SET;
}

// One attempt of a KV call: `op` on the endpoint's Batch stream, answered by
// `deadline`. On OK the answer is in *out; on NOT_LEADER *leader_hint is the
// answer's leader_addr (what a unary call carries in its trailing metadata).
grpc::Status RunOp(BatchStream& stream, const kvpb::RequestOp& op, absl::Time deadline,
                   std::string* leader_hint, kvpb::ResponseOp* out) {
  BatchStream::Result r = stream.Call(op, deadline);
  if (IsNotLeader(r.status)) *leader_hint = r.response.leader_addr();
  if (r.status.ok() && r.response.response_case() != ExpectedResponse(op)) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        "the server answered OK without the expected response");
  }
  *out = std::move(r.response);
  return r.status;
}

}  // namespace

absl::Status ClientOptions::Validate() const {
  if (endpoints.empty()) {
    return absl::InvalidArgumentError("no endpoints given");
  }
  for (size_t i = 0; i < endpoints.size(); ++i) {
    absl::Status s = ValidateEndpoint(endpoints[i]);
    if (!s.ok()) return s;
    for (size_t j = 0; j < i; ++j) {
      if (endpoints[i] == endpoints[j]) {
        return absl::InvalidArgumentError(
            absl::StrCat("endpoint \"", endpoints[i], "\" is listed twice"));
      }
    }
  }
  if (attempt_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("attempt_timeout must be positive");
  }
  if (total_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("total_timeout must be positive");
  }
  if (backoff_initial <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("backoff_initial must be positive");
  }
  if (backoff_max < backoff_initial) {
    return absl::InvalidArgumentError(
        "backoff_max must be at least backoff_initial");
  }
  return absl::OkStatus();
}

std::vector<std::string> SplitEndpoints(absl::string_view list) {
  std::vector<std::string> out;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (!item.empty()) out.emplace_back(item);
  }
  return out;
}

Expected Expected::Value(std::string value) {
  Expected e;
  e.is_value_ = true;
  e.value_ = std::move(value);
  return e;
}

Expected Expected::Version(uint64_t version) {
  Expected e;
  e.version_ = version;
  return e;
}

struct Client::Endpoint {
  explicit Endpoint(std::string a) : address(std::move(a)) {}

  const std::string address;
  // Set once, under Client::mu_, by Connect(); never reset.
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<kvpb::KV::Stub> kv;
  std::unique_ptr<adminpb::Admin::Stub> admin;
  // The KV calls' stream. Declared last, so destroyed first: its streams
  // have ended before the stub and the channel go (on this thread).
  std::unique_ptr<BatchStream> batch;
};

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  absl::Status s = options.Validate();
  if (!s.ok()) return s;
  auto credentials = ChannelCredentialsFor(options.tls);
  if (!credentials.ok()) return credentials.status();
  return std::unique_ptr<Client>(new Client(std::move(options), std::move(*credentials)));
}

Client::Client(ClientOptions options, std::shared_ptr<grpc::ChannelCredentials> credentials)
    : options_(std::move(options)),
      client_id_(options_.client_id != 0 ? options_.client_id
                                         : RandomClientId()),
      credentials_(std::move(credentials)) {
  absl::MutexLock lock(&mu_);
  for (const std::string& ep : options_.endpoints) {
    endpoints_.push_back(std::make_unique<Endpoint>(ep));
  }
}

Client::~Client() = default;

std::string Client::preferred_endpoint() const {
  absl::MutexLock lock(&mu_);
  return endpoints_[leader_]->address;
}

size_t Client::EndpointCount() const {
  absl::MutexLock lock(&mu_);
  return endpoints_.size();
}

size_t Client::FindOrAddEndpoint(const std::string& address) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (endpoints_[i]->address == address) return i;
  }
  if (endpoints_.size() >= options_.endpoints.size() + kMaxLearned) return endpoints_.size();
  endpoints_.push_back(std::make_unique<Endpoint>(address));
  return endpoints_.size() - 1;
}

Client::Endpoint& Client::Connect(size_t index) {
  absl::MutexLock lock(&mu_);
  Endpoint& ep = *endpoints_[index];
  if (ep.channel == nullptr) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, kReconnectBackoffMs);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, kReconnectBackoffMs);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kMaxReconnectBackoffMs);
    // A Batch answer message carries whatever answers were ready together
    // (several scans of up to ~2 MiB each, say): no 4 MiB default limit.
    args.SetMaxReceiveMessageSize(-1);
    ep.channel = grpc::CreateCustomChannel(ep.address, credentials_, args);
    ep.kv = kvpb::KV::NewStub(ep.channel);
    ep.admin = adminpb::Admin::NewStub(ep.channel);
    ep.batch = std::make_unique<BatchStream>(ep.kv.get(), ep.address);
  }
  return ep;
}

uint64_t Client::BeginWrite() {
  absl::MutexLock lock(&mu_);
  uint64_t seq = next_seq_++;
  in_flight_.insert(seq);
  return seq;
}

void Client::EndWrite(uint64_t seq) {
  absl::MutexLock lock(&mu_);
  in_flight_.erase(seq);
}

void Client::FillHeader(uint64_t seq, kvpb::WriteHeader* header) {
  absl::MutexLock lock(&mu_);
  header->set_client_id(client_id_);
  header->set_seq(seq);
  // `seq` itself is in flight, so the set is not empty and the minimum is
  // at most `seq`.
  header->set_first_incomplete(*in_flight_.begin());
}

absl::Time Client::CallDeadline() const {
  return std::min(absl::Now() + options_.total_timeout, options_.deadline);
}

absl::Status Client::Invoke(absl::string_view what, Kind kind, absl::Time deadline,
                            Attempt attempt) {
  const absl::Time start = absl::Now();
  size_t n = EndpointCount();
  size_t index;
  {
    absl::MutexLock lock(&mu_);
    index = leader_;
  }
  size_t cursor = index;  // round-robin position; hints are side trips
  absl::Duration backoff = options_.backoff_initial;
  size_t redirects = 0;  // hinted redirects since the last backoff
  int attempts = 0;
  grpc::StatusCode last_code = grpc::StatusCode::UNAVAILABLE;
  std::string last_error = "no attempt made";
  std::string last_endpoint;
  bool maybe_applied = false;
  std::set<size_t> refused;  // endpoints that refused a read: corrupt data
  std::set<size_t> tls_diagnosed;  // endpoints whose failure was looked into
  std::set<size_t> tls_refused;    // ... and found a TLS problem with

  while (true) {
    const absl::Time now = absl::Now();
    if (deadline - now < kMinAttemptTime) break;

    Endpoint& ep = Connect(index);
    ++attempts;
    std::string hint;
    const grpc::Status s =
        attempt(ep, std::min(now + options_.attempt_timeout, deadline), &hint);
    if (s.ok()) {
      if (kind == Kind::kWrite) {
        absl::MutexLock lock(&mu_);
        leader_ = index;
      }
      return absl::OkStatus();
    }

    last_endpoint = ep.address;
    last_code = s.error_code();
    last_error = absl::StrCat(
        absl::StatusCodeToString(static_cast<absl::StatusCode>(last_code)),
        ": ", s.error_message());

    bool sleep = true;
    if (IsNotLeader(s)) {
      size_t target = hint.empty() ? n : FindOrAddEndpoint(hint);
      n = EndpointCount();
      if (refused.count(target) > 0) target = n;  // it would refuse again
      if (target != n && target != index) {
        {
          absl::MutexLock lock(&mu_);
          leader_ = target;
        }
        index = target;
        // Follow a hint at once, unless hints keep bouncing us around.
        sleep = ++redirects > n;
      } else {
        cursor = index = (cursor + 1) % n;
        // Try every endpoint once before backing off: the leader may be
        // one of them even if this node does not know it yet.
        sleep = ++redirects > n;
      }
    } else if (kind != Kind::kWrite && s.error_code() == grpc::StatusCode::DATA_LOSS) {
      // The node found its data corrupt and serves no reads: another member
      // answers (at once: no backoff), unless every endpoint refused.
      refused.insert(index);
      if (refused.size() >= n) {
        return absl::DataLossError(absl::StrCat(
            what, ": ", n == 1 ? "" : "every endpoint refused the read; last error from ",
            n == 1 ? "" : absl::StrCat(ep.address, ": "), s.error_message()));
      }
      {
        absl::MutexLock lock(&mu_);
        if (leader_ == index) leader_ = (cursor + 1) % n;
      }
      cursor = index = (cursor + 1) % n;
      sleep = false;
    } else if (std::string tls_problem =
                   s.error_code() == grpc::StatusCode::UNAVAILABLE &&
                           MayBeTlsFailure(s.error_message()) && tls_diagnosed.insert(index).second
                       ? DiagnoseTls(ep.address, options_.tls,
                                     std::min(kTlsDiagnosisTime, deadline - absl::Now()))
                       : "";
               !tls_problem.empty()) {
      // The connection failed before anything was sent, and no retry of
      // this endpoint can help.
      tls_refused.insert(index);
      last_code = grpc::StatusCode::UNAUTHENTICATED;
      last_error = tls_problem;
      if (tls_refused.size() >= n) {
        return absl::UnauthenticatedError(absl::StrCat(what, ": ", tls_problem));
      }
      cursor = index = (cursor + 1) % n;
      while (tls_refused.count(index) > 0) cursor = index = (cursor + 1) % n;
      sleep = false;
    } else if (Retriable(s.error_code())) {
      if (kind == Kind::kWrite) maybe_applied = true;
      {
        // Later calls should not start at a node that just failed.
        absl::MutexLock lock(&mu_);
        if (leader_ == index) leader_ = (cursor + 1) % n;
      }
      cursor = index = (cursor + 1) % n;
    } else {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                          absl::StrCat(what, ": ", s.error_message()));
    }

    if (sleep) {
      redirects = 0;
      const absl::Duration left = deadline - absl::Now();
      if (left < kMinAttemptTime) break;
      absl::SleepFor(std::min(Jitter(backoff), left));
      backoff = std::min(backoff * 2, options_.backoff_max);
    }
  }

  if (attempts == 0) {
    return absl::DeadlineExceededError(
        absl::StrCat(what, ": the deadline passed before the first attempt"));
  }
  const absl::StatusCode code =
      last_code == grpc::StatusCode::DEADLINE_EXCEEDED
          ? absl::StatusCode::kDeadlineExceeded
          : absl::StatusCode::kUnavailable;
  std::string msg = absl::StrCat(
      what, ": ",
      kind == Kind::kSerializableRead ? "no node answered among "
                                      : "no leader reachable among ",
      absl::StrJoin(options_.endpoints, ","), " after ", attempts,
      attempts == 1 ? " attempt" : " attempts", " in ",
      absl::FormatDuration(absl::Trunc(absl::Now() - start,
                                       absl::Milliseconds(1))));
  if (attempts > 0) {
    absl::StrAppend(&msg, ": last error from ", last_endpoint, ": ",
                    last_error);
  }
  if (maybe_applied) {
    absl::StrAppend(&msg, " (the write may or may not have been applied)");
  }
  return absl::Status(code, msg);
}

absl::Status Client::InvokeOp(absl::string_view what, Kind kind, absl::Time deadline,
                              kvpb::RequestOp* op, kvpb::ResponseOp* resp) {
  if (kind != Kind::kWrite) {
    return Invoke(what, kind, deadline,
                  [&](Endpoint& ep, absl::Time attempt_deadline, std::string* hint) {
                    return RunOp(*ep.batch, *op, attempt_deadline, hint, resp);
                  });
  }
  kvpb::WriteHeader* header = WriteHeaderOf(op);
  if (header == nullptr) return absl::InternalError(absl::StrCat(what, ": not a write op"));
  const uint64_t seq = BeginWrite();
  absl::Status s = Invoke(what, kind, deadline,
                          [&](Endpoint& ep, absl::Time attempt_deadline, std::string* hint) {
                            FillHeader(seq, header);
                            return RunOp(*ep.batch, *op, attempt_deadline, hint, resp);
                          });
  EndWrite(seq);
  return s;
}

absl::Status Client::CheckSize(absl::string_view what, size_t value_bytes,
                               size_t field_bytes, absl::Time deadline) {
  const size_t request_bytes = field_bytes + kOpFramingBytes;
  const bool learned = limits_state_.load(std::memory_order_acquire) != kLimitsUnknown;
  SizeLimits limits = KnownLimits();
  if (value_bytes <= limits.max_value_bytes && request_bytes <= limits.max_request_bytes) {
    return absl::OkStatus();
  }
  if (!learned || absl::Now() - absl::FromUnixNanos(learned_at_.load(std::memory_order_relaxed)) >
                      kLimitsMaxAge) {
    limits = LearnLimits(deadline);
  }
  const char* source = limits.reported ? "" : "; the default: no node reported its limits";
  if (value_bytes > limits.max_value_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": value is ", value_bytes, " bytes; the cluster's limit is ",
        limits.max_value_bytes, " (server --max_value_bytes", source, ")"));
  }
  if (request_bytes > limits.max_request_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, ": request is ", request_bytes, " bytes; the cluster's limit is ",
        limits.max_request_bytes, " (the server's gRPC receive limit", source, ")"));
  }
  return absl::OkStatus();
}

SizeLimits Client::KnownLimits() const {
  SizeLimits l;
  l.reported = limits_state_.load(std::memory_order_acquire) == kLimitsReported;
  l.max_value_bytes = max_value_bytes_.load(std::memory_order_relaxed);
  l.max_request_bytes = max_request_bytes_.load(std::memory_order_relaxed);
  return l;
}

SizeLimits Client::Limits() {
  if (limits_state_.load(std::memory_order_acquire) != kLimitsUnknown) return KnownLimits();
  return LearnLimits(CallDeadline());
}

void Client::NoteLimits(const adminpb::StatusResponse& status) {
  const bool reported = status.max_value_bytes() != 0 && status.max_request_bytes() != 0;
  max_value_bytes_.store(reported ? status.max_value_bytes() : kDefaultMaxValueBytes,
                         std::memory_order_relaxed);
  max_request_bytes_.store(reported ? status.max_request_bytes() : kDefaultMaxRequestBytes,
                           std::memory_order_relaxed);
  learned_at_.store(absl::ToUnixNanos(absl::Now()), std::memory_order_relaxed);
  limits_state_.store(reported ? kLimitsReported : kLimitsUnreported, std::memory_order_release);
}

SizeLimits Client::LearnLimits(absl::Time deadline) {
  size_t first;
  {
    absl::MutexLock lock(&mu_);
    first = leader_;
  }
  const size_t n = EndpointCount();
  for (size_t i = 0; i < n; ++i) {
    const absl::Time now = absl::Now();
    if (deadline - now < kMinAttemptTime) break;
    Endpoint& ep = Connect((first + i) % n);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(std::min(now + options_.attempt_timeout, deadline)));
    adminpb::StatusResponse status;
    if (ep.admin->Status(&ctx, adminpb::StatusRequest(), &status).ok()) {
      NoteLimits(status);
      break;
    }
  }
  return KnownLimits();
}

absl::StatusOr<uint64_t> Client::Put(absl::string_view key,
                                     absl::string_view value) {
  const std::string what = Describe("put", key);
  const absl::Time deadline = CallDeadline();
  // Before copying the value into a request.
  absl::Status s = CheckSize(what, value.size(), key.size() + value.size(), deadline);
  if (!s.ok()) return s;
  kvpb::RequestOp op;
  op.mutable_put()->set_key(std::string(key));
  op.mutable_put()->set_value(std::string(value));
  kvpb::ResponseOp resp;
  s = InvokeOp(what, Kind::kWrite, deadline, &op, &resp);
  if (!s.ok()) return s;
  return resp.put().version();
}

absl::StatusOr<KeyValue> Client::Get(absl::string_view key,
                                     bool serializable) {
  const std::string what = Describe("get", key);
  const absl::Time deadline = CallDeadline();
  absl::Status s = CheckSize(what, 0, key.size(), deadline);
  if (!s.ok()) return s;
  kvpb::RequestOp op;
  op.mutable_get()->set_key(std::string(key));
  op.mutable_get()->set_serializable(serializable);
  kvpb::ResponseOp resp;
  s = InvokeOp(what, serializable ? Kind::kSerializableRead : Kind::kRead, deadline, &op, &resp);
  if (!s.ok()) return s;
  if (!resp.get().found()) {
    return absl::NotFoundError(absl::StrCat(what, ": key not found"));
  }
  KeyValue kv = FromProto(resp.get().kv());
  if (kv.key.empty()) kv.key = std::string(key);
  return kv;
}

absl::StatusOr<bool> Client::Delete(absl::string_view key) {
  const std::string what = Describe("delete", key);
  const absl::Time deadline = CallDeadline();
  absl::Status s = CheckSize(what, 0, key.size(), deadline);
  if (!s.ok()) return s;
  kvpb::RequestOp op;
  op.mutable_delete_()->set_key(std::string(key));
  kvpb::ResponseOp resp;
  s = InvokeOp(what, Kind::kWrite, deadline, &op, &resp);
  if (!s.ok()) return s;
  return resp.delete_().deleted();
}

absl::StatusOr<ScanResult> Client::Scan(absl::string_view prefix,
                                        uint32_t limit,
                                        absl::string_view start_after,
                                        bool serializable) {
  const std::string what = Describe("scan", prefix);
  const absl::Time deadline = CallDeadline();
  absl::Status s = CheckSize(what, 0, prefix.size() + start_after.size(), deadline);
  if (!s.ok()) return s;
  kvpb::RequestOp op;
  kvpb::ScanRequest* req = op.mutable_scan();
  req->set_prefix(std::string(prefix));
  req->set_start_after(std::string(start_after));
  req->set_limit(limit);
  req->set_serializable(serializable);
  kvpb::ResponseOp resp;
  s = InvokeOp(what, serializable ? Kind::kSerializableRead : Kind::kRead, deadline, &op, &resp);
  if (!s.ok()) return s;
  ScanResult result;
  result.kvs.reserve(resp.scan().kvs_size());
  for (const kvpb::KeyValue& kv : resp.scan().kvs()) {
    result.kvs.push_back(FromProto(kv));
  }
  result.more = resp.scan().more();
  return result;
}

absl::StatusOr<CasResult> Client::CompareAndSwap(absl::string_view key,
                                                 const Expected& expected,
                                                 absl::string_view new_value) {
  const std::string what = Describe("cas", key);
  const absl::Time deadline = CallDeadline();
  absl::Status s = CheckSize(what, new_value.size(),
                             key.size() + expected.value().size() + new_value.size(), deadline);
  if (!s.ok()) return s;
  kvpb::RequestOp op;
  kvpb::CasRequest* req = op.mutable_cas();
  req->set_key(std::string(key));
  if (expected.is_value()) {
    req->set_expected_value(expected.value());
  } else {
    req->set_expected_version(expected.version());
  }
  req->set_new_value(std::string(new_value));
  kvpb::ResponseOp resp;
  s = InvokeOp(what, Kind::kWrite, deadline, &op, &resp);
  if (!s.ok()) return s;
  const kvpb::CasResponse& cas = resp.cas();
  CasResult result;
  result.succeeded = cas.succeeded();
  result.version = cas.version();
  if (!cas.succeeded() && cas.found()) {
    result.current = FromProto(cas.current());
    if (result.current->key.empty()) result.current->key = std::string(key);
  }
  return result;
}

namespace {

// One attempt of an admin change: a unary call, `call(&ctx)`. Admin changes
// wait for a commit (a transfer for an election): an attempt gets more time
// than a KV call. A NOT_LEADER hint comes in the trailing metadata.
// Never past the call's deadline.
template <typename Call>
grpc::Status AdminAttempt(absl::Duration attempt_timeout, absl::Time deadline,
                          std::string* leader_hint, Call call) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(
      std::min(absl::Now() + std::max(attempt_timeout, absl::Seconds(10)), deadline)));
  grpc::Status s = call(&ctx);
  if (IsNotLeader(s)) *leader_hint = LeaderHint(ctx);
  return s;
}

template <typename Resp>
Membership MembershipOf(const Resp& resp) {
  Membership m;
  m.voters.assign(resp.voters().begin(), resp.voters().end());
  m.learners.assign(resp.learners().begin(), resp.learners().end());
  return m;
}

}  // namespace

absl::StatusOr<Membership> Client::AddMember(uint64_t node_id, absl::string_view address) {
  const absl::Time deadline = CallDeadline();
  adminpb::AddMemberRequest req;
  req.set_node_id(node_id);
  req.set_address(std::string(address));
  adminpb::AddMemberResponse resp;
  absl::Status s = Invoke(absl::StrCat("add member ", node_id), Kind::kWrite, deadline,
                          [&](Endpoint& ep, absl::Time, std::string* hint) {
                            return AdminAttempt(options_.attempt_timeout, deadline, hint,
                                                [&](grpc::ClientContext* ctx) {
                                                  resp.Clear();
                                                  return ep.admin->AddMember(ctx, req, &resp);
                                                });
                          });
  if (!s.ok()) return s;
  return MembershipOf(resp);
}

absl::StatusOr<Membership> Client::PromoteMember(uint64_t node_id) {
  const absl::Time deadline = CallDeadline();
  adminpb::PromoteMemberRequest req;
  req.set_node_id(node_id);
  adminpb::PromoteMemberResponse resp;
  absl::Status s = Invoke(absl::StrCat("promote member ", node_id), Kind::kWrite, deadline,
                          [&](Endpoint& ep, absl::Time, std::string* hint) {
                            return AdminAttempt(options_.attempt_timeout, deadline, hint,
                                                [&](grpc::ClientContext* ctx) {
                                                  resp.Clear();
                                                  return ep.admin->PromoteMember(ctx, req, &resp);
                                                });
                          });
  if (!s.ok()) return s;
  return MembershipOf(resp);
}

absl::StatusOr<Membership> Client::RemoveMember(uint64_t node_id) {
  const absl::Time deadline = CallDeadline();
  adminpb::RemoveMemberRequest req;
  req.set_node_id(node_id);
  adminpb::RemoveMemberResponse resp;
  absl::Status s = Invoke(absl::StrCat("remove member ", node_id), Kind::kWrite, deadline,
                          [&](Endpoint& ep, absl::Time, std::string* hint) {
                            return AdminAttempt(options_.attempt_timeout, deadline, hint,
                                                [&](grpc::ClientContext* ctx) {
                                                  resp.Clear();
                                                  return ep.admin->RemoveMember(ctx, req, &resp);
                                                });
                          });
  if (!s.ok()) return s;
  return MembershipOf(resp);
}

absl::StatusOr<uint64_t> Client::TransferLeader(uint64_t node_id) {
  const absl::Time deadline = CallDeadline();
  adminpb::TransferLeaderRequest req;
  req.set_node_id(node_id);
  adminpb::TransferLeaderResponse resp;
  absl::Status s = Invoke("transfer leadership", Kind::kWrite, deadline,
                          [&](Endpoint& ep, absl::Time, std::string* hint) {
                            return AdminAttempt(options_.attempt_timeout, deadline, hint,
                                                [&](grpc::ClientContext* ctx) {
                                                  resp.Clear();
                                                  return ep.admin->TransferLeader(ctx, req, &resp);
                                                });
                          });
  if (!s.ok()) return s;
  return resp.leader_id();
}

std::vector<EndpointStatus> Client::ClusterStatus() {
  const size_t n = options_.endpoints.size();  // the configured ones
  std::vector<EndpointStatus> out(n);
  std::vector<std::thread> threads;
  threads.reserve(n);
  const absl::Time deadline = std::min(absl::Now() + options_.attempt_timeout, CallDeadline());
  for (size_t i = 0; i < n; ++i) {
    threads.emplace_back([this, i, deadline, &out] {
      Endpoint& ep = Connect(i);
      EndpointStatus& st = out[i];
      st.endpoint = ep.address;
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(deadline));
      grpc::Status s =
          ep.admin->Status(&ctx, adminpb::StatusRequest(), &st.status);
      st.reachable = s.ok();
      if (s.ok()) NoteLimits(st.status);
      if (!s.ok()) {
        st.status.Clear();
        st.error = FromGrpc(s);
        if (s.error_code() == grpc::StatusCode::UNAVAILABLE && MayBeTlsFailure(s.error_message())) {
          std::string tls_problem = DiagnoseTls(
              ep.address, options_.tls, std::min(kTlsDiagnosisTime, deadline - absl::Now()));
          if (!tls_problem.empty()) st.error = absl::UnauthenticatedError(tls_problem);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return out;
}

}  // namespace raftkv::client
