// raftkv::client::Client: the C++ client of a raftkv cluster.
//
// A Client talks to the nodes listed in ClientOptions::endpoints over gRPC
// (proto/kv.proto, proto/admin.proto). It finds the leader by itself, retries
// what can be retried, and makes every write apply exactly once:
//
//  * Transport. The KV calls (Put, Get, Delete, Scan, CompareAndSwap) travel
//    as ops of one KV.Batch stream per endpoint (client/batch_stream.h),
//    shared by every thread using the Client: ops issued concurrently go out
//    together in one message, which saves gRPC's per-call cost. An op means
//    exactly what the unary call means. Admin calls are unary.
//  * Leader discovery. The client remembers the endpoint that last accepted a
//    write and sends every call there first. A node that is not the leader
//    answers FAILED_PRECONDITION "not leader ..." with the leader's address
//    (the answer's leader_addr; an admin call's trailing metadata
//    `raftkv-leader-addr`); the client goes straight to
//    that endpoint, adding it to the endpoints if it is not among them (a
//    node that joined later). When the hint is empty (no leader known) it
//    tries the next endpoint.
//  * Retries. Only unavailability and leader changes are retried:
//    UNAVAILABLE, DEADLINE_EXCEEDED of one attempt and CANCELLED (the node is
//    down or shutting down, its stream broke, or the outcome is unknown) go
//    to the next endpoint after a backoff (ClientOptions::backoff_*, doubled
//    per retry, with jitter), and a NOT_LEADER answer to the leader it names,
//    until the call's deadline (below). Every other code is the request's
//    own fault or a state a retry cannot change, and is returned at once:
//    INVALID_ARGUMENT (a bad request; a value over the cluster's limit),
//    RESOURCE_EXHAUSTED (a request over a node's gRPC receive limit; a full
//    disk), FAILED_PRECONDITION other than "not leader", OUT_OF_RANGE,
//    NOT_FOUND, ALREADY_EXISTS, ABORTED, PERMISSION_DENIED, UNAUTHENTICATED,
//    UNIMPLEMENTED, INTERNAL, DATA_LOSS (but see Reads), UNKNOWN. A Batch
//    stream that ends fails its waiting ops UNAVAILABLE (retried), except
//    the op a node refused as larger than its receive limit
//    (RESOURCE_EXHAUSTED).
//  * Size limits. A value over the cluster's --max_value_bytes, or a request
//    over its gRPC receive limit, fails at once with INVALID_ARGUMENT /
//    RESOURCE_EXHAUSTED, before anything is sent, naming the limit. The
//    client learns the limits from a node's Admin.Status the first time a
//    request is larger than the documented defaults (kDefaultMaxValueBytes,
//    kDefaultMaxRequestBytes) or than the limits learned over a minute ago
//    (a rolling restart may have changed them); a node that does not report
//    them (or no node answering) leaves the defaults. Smaller requests are
//    checked by the server alone.
//  * Deadlines. A call ends by ClientOptions::total_timeout after it began,
//    every attempt, redirect, backoff and limit lookup included, and never
//    after ClientOptions::deadline (one bound for a whole task, as kvctl's
//    --timeout).
//  * Exactly-once writes (kvpb::WriteHeader). The client has one id for its
//    lifetime; each write (Put, Delete, CompareAndSwap) takes the next
//    sequence number, and every retry of that write resends the same
//    (client_id, seq), so the cluster applies it once and answers the retry
//    with the first result. `first_incomplete` is the lowest sequence this
//    client still has in flight. Two live Clients must never share an id;
//    leave ClientOptions::client_id at 0 to get a random one.
//    A write that fails with UNAVAILABLE or DEADLINE_EXCEEDED after the total
//    timeout may or may not have been applied; the client does not retry it
//    again (its sequence number is given up).
//  * Reads (Get, Scan) are retried and redirected the same way. With
//    `serializable` a node answers from its own state without a leader check
//    (may be stale); otherwise the read is linearizable. A read refused with
//    DATA_LOSS (the node found its data corrupt; docs/INTEGRITY.md) goes to
//    the next endpoint at once; once every endpoint refused, the call fails
//    with DATA_LOSS and the last node's message.
//
// Errors are absl::Status values with readable messages that name the call
// and, for exhausted retries, every endpoint and the last error, e.g.
//   put "k": no leader reachable among 127.0.0.1:7001,127.0.0.1:7002 after
//   9 attempts in 15s: last error from 127.0.0.1:7002: UNAVAILABLE: ...
// Status codes are the server's (gRPC and absl codes coincide); retries that
// run out end with UNAVAILABLE or DEADLINE_EXCEEDED.
//
//  * Attempts. Each attempt has ClientOptions::attempt_timeout (never past
//    the total); the op carries the time left, so the server gives up too.
//    An op that times out while nothing at all came back on its stream
//    since it was sent cancels the stream (the node is hung, or the
//    connection black-holed): the next call opens a fresh one. The other
//    ops waiting on it fail UNAVAILABLE and are retried like any other.
//
// Ownership: Client::Create returns a unique_ptr the caller owns. The Client
// owns one grpc::Channel and one Batch stream per endpoint, created on first
// use and kept for the Client's lifetime (a stream that ends is replaced by
// the next call); the destructor cancels the streams and waits for them to
// end. Returned values are copies.
//
// Thread safety: every method may be called concurrently from any number of
// threads on one Client; calls block the calling thread (up to
// total_timeout). The Client must not be destroyed while a call is running.
#ifndef RAFTKV_CLIENT_CLIENT_H_
#define RAFTKV_CLIENT_CLIENT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/tls_credentials.h"
#include "proto/admin.pb.h"

namespace grpc {
class Status;
}  // namespace grpc

namespace raftkv::kvpb {
class RequestOp;
class ResponseOp;
class WriteHeader;
}  // namespace raftkv::kvpb

namespace raftkv::client {

// Trailing-metadata keys of a unary NOT_LEADER answer (see proto/kv.proto);
// a Batch op carries the same in ResponseOp::leader_id / leader_addr.
inline constexpr char kLeaderIdKey[] = "raftkv-leader-id";
inline constexpr char kLeaderAddrKey[] = "raftkv-leader-addr";

struct ClientOptions {
  // The cluster's nodes as "host:port" ("[v6addr]:port" for IPv6), e.g.
  // {"127.0.0.1:7001", "127.0.0.1:7002"}. At least one; no duplicates. The
  // order is the order in which endpoints are tried before a leader is known.
  std::vector<std::string> endpoints;

  // Deadline of one RPC attempt on one endpoint.
  absl::Duration attempt_timeout = absl::Seconds(2);

  // Deadline of a whole call, retries and backoff included. An attempt never
  // runs past it.
  absl::Duration total_timeout = absl::Seconds(15);

  // No call runs past this time (InfiniteFuture: no bound): a deadline for
  // everything the Client does, e.g. a whole command of several calls.
  // Calls made after it fail DEADLINE_EXCEEDED without trying.
  absl::Time deadline = absl::InfiniteFuture();

  // Backoff between retries: starts at backoff_initial, doubles per retry up
  // to backoff_max; each sleep is drawn uniformly from [d/2, d] (jitter).
  absl::Duration backoff_initial = absl::Milliseconds(20);
  absl::Duration backoff_max = absl::Seconds(1);

  // The exactly-once session id. 0 (the default): a random non-zero id.
  uint64_t client_id = 0;

  // TLS (etcdctl's --cacert, --cert, --key; client/tls_credentials.h). No
  // file: plaintext. The files are read by Create. A connection that fails
  // for a TLS reason no retry fixes (unknown CA, wrong host name, expired
  // certificate, plaintext at a TLS node or the reverse, a missing or
  // refused client certificate) moves on to the next endpoint at once; when
  // every endpoint failed so, the call ends UNAUTHENTICATED with the reason.
  TlsClientFiles tls;

  // OK, or INVALID_ARGUMENT naming what is wrong.
  absl::Status Validate() const;
};

// The servers' default limits (server/main.cc --max_value_bytes and its gRPC
// receive limit), assumed until a node reports its own in Admin.Status.
inline constexpr uint64_t kDefaultMaxValueBytes = 1 << 20;
inline constexpr uint64_t kDefaultMaxRequestBytes = 64 << 20;

// A cluster's size limits, as the client knows them.
struct SizeLimits {
  uint64_t max_value_bytes = kDefaultMaxValueBytes;
  uint64_t max_request_bytes = kDefaultMaxRequestBytes;
  // Reported by a node (false: the defaults above).
  bool reported = false;
};

// ClientOptions::endpoints from a comma-separated list ("a:1,b:2"); empty
// items (from stray commas or spaces) are skipped.
std::vector<std::string> SplitEndpoints(absl::string_view list);

struct KeyValue {
  std::string key;
  std::string value;
  uint64_t version = 0;  // log index of the key's last write
};

struct ScanResult {
  std::vector<KeyValue> kvs;  // in key order
  bool more = false;          // keys after the last one remain
};

// What CompareAndSwap compares the key's current state with.
class Expected {
 public:
  // The key exists and its value is `value`.
  static Expected Value(std::string value);
  // The key's version is `version`; 0 means the key must not exist.
  static Expected Version(uint64_t version);
  // The key must not exist (Version(0)).
  static Expected Absent() { return Version(0); }

  bool is_value() const { return is_value_; }
  const std::string& value() const { return value_; }
  uint64_t version() const { return version_; }

 private:
  Expected() = default;
  bool is_value_ = false;
  std::string value_;
  uint64_t version_ = 0;
};

struct CasResult {
  bool succeeded = false;
  uint64_t version = 0;             // on success: the key's new version
  std::optional<KeyValue> current;  // on failure: the key, nullopt if absent
};

// One endpoint's answer to Admin.Status.
struct EndpointStatus {
  std::string endpoint;          // as in ClientOptions::endpoints
  bool reachable = false;        // the node answered
  absl::Status error;            // why not, when !reachable
  adminpb::StatusResponse status;  // the node's answer, when reachable
};

// The membership after a change.
struct Membership {
  std::vector<uint64_t> voters;
  std::vector<uint64_t> learners;
};

class Client {
 public:
  // Validates `options` (INVALID_ARGUMENT if bad; TLS files that cannot be
  // read or do not match: their error) and makes a Client. No connection is
  // made until the first call.
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sets `key` to `value`; returns the key's new version.
  absl::StatusOr<uint64_t> Put(absl::string_view key, absl::string_view value);

  // The key's value and version; NOT_FOUND if there is no such key.
  absl::StatusOr<KeyValue> Get(absl::string_view key,
                               bool serializable = false);

  // Removes `key`; returns whether it existed.
  absl::StatusOr<bool> Delete(absl::string_view key);

  // Keys starting with `prefix` (every key for ""), in order, after
  // `start_after` (exclusive; "" starts at the beginning), at most `limit`
  // (0: the server's default, 1000). Page with start_after = the last key.
  absl::StatusOr<ScanResult> Scan(absl::string_view prefix, uint32_t limit = 0,
                                  absl::string_view start_after = "",
                                  bool serializable = false);

  // Sets `key` to `new_value` if its current state matches `expected`.
  // A failed comparison is not an error: the result says succeeded=false
  // and carries the key's current state.
  absl::StatusOr<CasResult> CompareAndSwap(absl::string_view key,
                                           const Expected& expected,
                                           absl::string_view new_value);

  // Admin.Status of every endpoint, asked in parallel, one attempt each
  // (attempt_timeout). In ClientOptions::endpoints order; never fails as a
  // whole: an endpoint that does not answer has reachable=false.
  std::vector<EndpointStatus> ClusterStatus();

  // Membership changes, served by the leader (found like a write's) and
  // answered once the change is applied there. One change at a time: while
  // another is in progress they fail with FAILED_PRECONDITION. A change
  // retried after a lost answer may report ALREADY_EXISTS / NOT_FOUND.
  // AddMember adds a learner at `address` (HOST:PORT); the leader promotes
  // it once it has caught up, or PromoteMember does.
  absl::StatusOr<Membership> AddMember(uint64_t node_id, absl::string_view address);
  absl::StatusOr<Membership> PromoteMember(uint64_t node_id);
  absl::StatusOr<Membership> RemoveMember(uint64_t node_id);
  // Moves leadership to `node_id` (0: the most up-to-date voter); returns
  // the new leader.
  absl::StatusOr<uint64_t> TransferLeader(uint64_t node_id = 0);

  // The cluster's size limits: as learned from a node, else asked of one
  // (one Admin.Status attempt per endpoint, within the call's deadline),
  // else the defaults.
  SizeLimits Limits();

  uint64_t client_id() const { return client_id_; }
  const ClientOptions& options() const { return options_; }

  // The endpoint tried first by the next call (the last known leader).
  std::string preferred_endpoint() const;

 private:
  struct Endpoint;
  enum class Kind { kWrite, kRead, kSerializableRead };
  // One attempt on one endpoint, to be answered by `deadline` (admin calls
  // choose their own). On a NOT_LEADER answer it sets *leader_hint to the
  // leader's address ("" if unknown).
  using Attempt = absl::FunctionRef<grpc::Status(Endpoint&, absl::Time deadline,
                                                 std::string* leader_hint)>;

  Client(ClientOptions options, std::shared_ptr<grpc::ChannelCredentials> credentials);

  // The deadline of a call that begins now: total_timeout from now, capped
  // at options_.deadline.
  absl::Time CallDeadline() const;
  // Runs `attempt` until it succeeds, fails for good, or `deadline` passes
  // (see the header comment). `what` names the call in errors.
  absl::Status Invoke(absl::string_view what, Kind kind, absl::Time deadline,
                      Attempt attempt);
  // A KV call: Invoke with `op` on each endpoint's Batch stream, the answer
  // in *resp. A write (kind kWrite) takes the next sequence number, and
  // every attempt carries it in the op's header (exactly-once).
  absl::Status InvokeOp(absl::string_view what, Kind kind, absl::Time deadline,
                        kvpb::RequestOp* op, kvpb::ResponseOp* resp);
  // Before a KV call: OK, or the error naming the limit that a request
  // writing a value of `value_bytes`, with byte fields (key, values, ...) of
  // `field_bytes` in all, exceeds. Learns the limits first (LearnLimits) if
  // it exceeds those assumed so far and none were learned.
  absl::Status CheckSize(absl::string_view what, size_t value_bytes, size_t field_bytes,
                         absl::Time deadline);
  // Asks the endpoints, preferred first, for their limits until one
  // answers; one attempt each, by `deadline`.
  SizeLimits LearnLimits(absl::Time deadline);
  // Keeps the limits a node reported in `status` (none: nothing changes,
  // but they are not asked again).
  void NoteLimits(const adminpb::StatusResponse& status);
  // The limits as known now.
  SizeLimits KnownLimits() const;

  // The endpoint's stubs and stream, creating its channel on first use.
  Endpoint& Connect(size_t index);
  size_t EndpointCount() const;
  // The index of the endpoint at `address`, adding it (a leader named by a
  // NOT_LEADER hint, e.g. a node that joined later) unless kMaxLearned
  // endpoints were added already; EndpointCount() if it cannot be added.
  size_t FindOrAddEndpoint(const std::string& address);
  static constexpr size_t kMaxLearned = 16;

  // Allocates the next sequence number and marks it in flight.
  uint64_t BeginWrite();
  void EndWrite(uint64_t seq);
  // Fills `header` for (another) attempt of write `seq`.
  void FillHeader(uint64_t seq, kvpb::WriteHeader* header);

  const ClientOptions options_;
  const uint64_t client_id_;
  // Every channel's credentials (from options_.tls).
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;

  mutable absl::Mutex mu_;
  // Index into endpoints_ of the endpoint to try first.
  size_t leader_ ABSL_GUARDED_BY(mu_) = 0;
  // Sequence numbers are allocated and marked in flight in one step, so
  // first_incomplete (the smallest in flight) never skips a number that has
  // been handed out but not yet sent.
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::set<uint64_t> in_flight_ ABSL_GUARDED_BY(mu_);
  // The configured endpoints, in order, then leaders learned from hints.
  // Entries are never removed, so an Endpoint& stays valid; each Endpoint's
  // channel is created under mu_.
  std::vector<std::unique_ptr<Endpoint>> endpoints_ ABSL_GUARDED_BY(mu_);
  // The cluster's limits, read by every call without a lock. limits_state_
  // is stored after the two limits (release) and read before them
  // (acquire); two nodes' answers stored at once may mix, which is harmless
  // (the servers check again). learned_at_: when a node last answered
  // (absl::ToUnixNanos), so limits changed by a rolling restart are asked
  // again after kLimitsMaxAge, by a request over the old ones.
  enum LimitsState : int { kLimitsUnknown, kLimitsUnreported, kLimitsReported };
  static constexpr absl::Duration kLimitsMaxAge = absl::Minutes(1);
  std::atomic<int> limits_state_{kLimitsUnknown};
  std::atomic<uint64_t> max_value_bytes_{kDefaultMaxValueBytes};
  std::atomic<uint64_t> max_request_bytes_{kDefaultMaxRequestBytes};
  std::atomic<int64_t> learned_at_{0};
};

}  // namespace raftkv::client

#endif  // RAFTKV_CLIENT_CLIENT_H_
