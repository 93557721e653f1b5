// raftkv server: one node of a cluster.
//
//   bazel run //server -- --id=1 \
//       --cluster=1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
//       --data_dir=data/n1
//
// One gRPC port per node (its address in --cluster) serves clients (KV,
// Admin), peers (Peer), gRPC health checking and server reflection.
//
// Joining a running cluster (an empty data dir):
//
//   bazel run //server -- --id=4 --listen=127.0.0.1:7004
//       --join=127.0.0.1:7001,127.0.0.1:7002 --data_dir=data/n4   (one line)
//
// learns the cluster id from a member's Admin.Status, bootstraps with an
// empty membership, starts, and asks the leader to add it as a learner; the
// leader promotes it once it has caught up.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "proto/admin.grpc.pb.h"
#include "raft/membership.h"
#include "server/alarms.h"
#include "server/await_node.h"
#include "server/answer_budget.h"
#include "server/cluster_spec.h"
#include "server/connection_listener.h"
#include "server/corruption_guard.h"
#include "server/disk_space.h"
#include "server/etcd/auth_service.h"
#include "server/etcd/auth_tokens.h"
#include "server/etcd/authorizer.h"
#include "server/etcd/auto_compactor.h"
#include "server/etcd/cluster_service.h"
#include "server/etcd/context.h"
#include "server/etcd/kv_service.h"
#include "server/etcd/maintenance_service.h"
#include "server/etcd/members.h"
#include "server/forwarding.h"
#include "server/fd_limit.h"
#include "server/force_new_cluster.h"
#include "server/grpc_limits.h"
#include "server/grpc_log.h"
#include "server/grpc_stream_window_fix.h"
#include "server/kv_service.h"
#include "server/memory_trimmer.h"
#include "server/node_tls.h"
#include "server/node.h"
#include "server/hash_checker.h"
#include "server/mvcc_compactor.h"
#include "server/incarnation_recorder.h"
#include "server/peer_incarnations.h"
#include "server/state_machine.h"
#include "server/storage_failure.h"
#include "server/transport.h"
#include "storage/log_store.h"
#include "storage/scrubber.h"

DEFINE_uint64(id, 0, "This node's id: one of the ids in --cluster. Required.");
DEFINE_string(cluster, "",
              "The founding members, as ID=HOST:PORT,... e.g. "
              "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003. Each node listens on "
              "its own address, for clients and peers alike. Required; after the first "
              "start it must describe the same cluster.");
DEFINE_string(data_dir, "",
              "Directory of this node's RocksDB store (created if missing). Relative "
              "paths are resolved against the directory `bazel run` was started from. "
              "Required.");
DEFINE_string(initial_cluster_state, "existing",
              "new: found the cluster in --cluster (give it to each founding member on its "
              "first start, with an empty --data_dir); existing: an empty --data_dir is "
              "refused, since a member that lost its data must not take part again (remove "
              "it and add a fresh node with --join). Ignored once the data dir holds a store, "
              "and with --join.");
DEFINE_bool(force_new_cluster, false,
            "Disaster recovery after a lost majority: start this surviving member, with its "
            "data dir, as the only member of its cluster (etcd's --force-new-cluster). Its "
            "log through its commit index is kept; entries past it, and every write it had "
            "not received, are lost. The new membership is written to its log: give the "
            "flag once, then grow the cluster back with --join and restart without it. "
            "Refused with an empty data dir or --initial_cluster_state=new; with --join (a "
            "member that joined) the old members are not asked. "
            "docs/DISASTER_RECOVERY.md.");
DEFINE_string(listen, "",
              "Address to bind, if not this node's address from --cluster (e.g. "
              "0.0.0.0:7001).");
DEFINE_int32(tick_ms, 100, "Length of one Raft tick in milliseconds.");
DEFINE_int32(election_ticks, 10,
             "Ticks without a leader before a follower campaigns (randomized up to 2x).");
DEFINE_int32(heartbeat_ticks, 1, "Ticks between leader heartbeats.");
DEFINE_uint64(max_value_bytes, 1 << 20, "Largest value accepted, in bytes.");
DEFINE_uint64(max_request_bytes, (3 << 20) / 2,
              "etcd API: largest write request accepted, in bytes (etcd's --max-request-bytes); "
              "larger ones get \"etcdserver: request is too large\".");
DEFINE_string(auto_compaction_mode, "periodic",
              "etcd API: periodic | revision: how --auto_compaction_retention is read "
              "(etcd's --auto-compaction-mode).");
DEFINE_string(auto_compaction_retention, "0",
              "etcd API: history kept by automatic compaction, run by the leader: with "
              "periodic a duration (1h, 30m) or a number of hours, with revision a number of "
              "revisions; 0: off (etcd's --auto-compaction-retention).");
DEFINE_int64(max_range_bytes, int64_t{128} << 20,
             "etcd API: most bytes of keys and values one Range (or read-only Txn range) may "
             "gather; a larger one fails with RESOURCE_EXHAUSTED (ask for fewer keys with a "
             "limit) rather than hold more memory.");
DEFINE_int64(max_txn_ops, 128,
             "etcd API: most operations in one Txn (etcd's --max-txn-ops).");
DEFINE_int32(auth_token_ttl, 300,
             "etcd API: seconds an Authenticate token lives past its last use (etcd's "
             "--auth-token-ttl); tokens are kept in memory by the member that issued them.");
DEFINE_bool(commit_notices, false,
            "The leader tells followers of each new commit index at once with an empty "
            "append; false: they learn it from the next append or heartbeat (less CPU "
            "and latency per write; followers of an idle leader apply up to one "
            "heartbeat later).");
DEFINE_bool(async_log_writes, true,
            "persist the Raft log on a writer thread while the loop goes on stepping "
            "acknowledgements and proposals (false: the loop persists each round itself)");
DEFINE_string(stage_trace_file, "",
              "Write timestamps of sampled writes at each step through this node to this "
              "file ({id} becomes the node id), for tools/stage_report "
              "(docs/BENCHMARKS.md); empty: off.");
DEFINE_uint64(stage_trace_every, 16, "With --stage_trace_file: trace every Nth log index.");
DEFINE_bool(lease_reads, false,
            "Serve linearizable reads from a leader lease instead of a heartbeat round "
            "(faster; relies on bounded clock drift).");
DEFINE_uint64(snapshot_entries, 10000,
              "Compact the log once it holds more than this many entries (0: never).");
DEFINE_uint64(snapshot_keep_entries, 1000,
              "Entries kept after compaction, so briefly slow followers catch up from "
              "the log rather than a snapshot.");
DEFINE_uint64(snapshot_chunk_bytes, 1 << 20, "Bytes per chunk of a snapshot transfer.");
DEFINE_uint64(snapshot_max_bytes_per_sec, 0, "Cap on one snapshot transfer's rate (0: none).");
DEFINE_int32(max_concurrent_snapshots, 2, "Snapshot transfers a leader runs at once.");
DEFINE_uint64(mvcc_key_cache_bytes, raftkv::mvcc::StoreOptions().latest_cache_bytes,
              "Memory for the keys' newest revisions (docs/MVCC.md): while every key fits, a "
              "write reads nothing from disk. 0: none.");
DEFINE_int32(read_threads, 1,
             "Threads that answer linearizable reads once confirmed, beside the Raft loop "
             "(0: the loop answers them).");
DEFINE_bool(write_answer_thread, true,
            "Answer applied writes on a thread of their own (in apply order) rather than on the "
            "Raft loop's thread.");
DEFINE_int32(default_deadline_ms, 10000,
             "Deadline for a request that carries none, in milliseconds.");
DEFINE_string(join, "",
              "Join a running cluster instead of founding one: addresses of some of its "
              "members, HOST:PORT,... (instead of --cluster). This node's own address is "
              "--advertise, else --listen. Give it again on restarts.");
DEFINE_string(advertise, "",
              "With --join: the address other members reach this node at (default: "
              "--listen).");
DEFINE_bool(join_add_self, true,
            "With --join: ask the leader to add this node as a learner (otherwise an "
            "operator runs `kvctl member add`).");
DEFINE_bool(enable_fault_injection, false,
            "Test only: accept Admin.SetFaults, which drops, delays or blocks this "
            "node's outgoing peer messages. Never in production.");
DEFINE_string(cert_file, "",
              "TLS for clients: this node's certificate (PEM chain). With it, the listener "
              "takes TLS only (peers too: give the --peer_* flags as well). Files are re-read "
              "when they change; a bad new set is refused and the current one kept.");
DEFINE_string(key_file, "", "TLS for clients: the key of --cert_file (PEM).");
DEFINE_string(trusted_ca_file, "",
              "TLS for clients: the CA(s) client certificates are verified against (PEM).");
DEFINE_bool(client_cert_auth, false,
            "TLS for clients: every connection must present a certificate signed by "
            "--trusted_ca_file (admin calls included).");
DEFINE_string(peer_cert_file, "",
              "TLS between members: this node's peer certificate (PEM chain), presented when "
              "it connects to another member.");
DEFINE_string(peer_key_file, "", "TLS between members: the key of --peer_cert_file (PEM).");
DEFINE_string(peer_trusted_ca_file, "",
              "TLS between members: the CA(s) members' certificates are verified against.");
DEFINE_bool(peer_client_cert_auth, false,
            "TLS between members: a peer stream (Raft messages, snapshots) must come with a "
            "certificate signed by --peer_trusted_ca_file.");
DEFINE_bool(clear_corrupt_alarm, false,
            "Forget a CORRUPT alarm this node raised before (it is stored in the data dir "
            "and raised again at every start until then): for an operator who decided this "
            "node's data are the ones to keep (docs/INTEGRITY.md).");
DEFINE_string(corrupt_check_interval, "10m",
              "How often the leader has every member hash its whole state at one log index "
              "and compare (also a few seconds after each leader change); a member that "
              "differs from the majority raises CORRUPT and stops serving. 0: only at leader "
              "changes. As etcd's --experimental-corrupt-check-time.");
DEFINE_uint64(corrupt_check_bytes_per_sec, raftkv::server::HashCheckerOptions().bytes_per_sec,
              "Read rate of a hash check's scan of the state, bytes per second (0: "
              "unthrottled; else at least 65536).");
DEFINE_uint64(min_free_bytes, 256 << 20,
              "Free-space reserve on the filesystem of --data_dir, in bytes: below it the "
              "node raises the NOSPACE alarm and stores no new entries (a leader refuses "
              "writes, a follower stops taking the leader's), serves reads, and resumes by "
              "itself once space is back. It covers what a node still writes meanwhile "
              "(a WAL, memtable flushes, a compaction). 0: no reserve.");
DEFINE_uint64(quota_backend_bytes, 0,
              "etcd's space quota, as etcd's --quota-backend-bytes: once the data's bytes "
              "(RocksDB's live SST files and memtables) exceed it, this member raises NOSPACE "
              "through the log and every member refuses etcd's Put and writing Txns (reads, "
              "deletes and Compact go on) until `etcdctl alarm disarm`. 0: etcd's default, "
              "2 GiB.");
DEFINE_string(scrub_interval, "24h",
              "Verify the checksum of every block of every SST file of the data dir this "
              "often, in the background (a Go-style duration: 24h, 90m; 0: never). "
              "Corruption found raises the CORRUPT alarm: the node stops serving reads.");
DEFINE_string(scrub_start_delay, "10s",
              "With --scrub_interval: the first verification starts this long after start "
              "(so a restarted node finds damage its reads have not met yet).");
DEFINE_uint64(scrub_bytes_per_sec, 16 << 20,
              "Read rate of the scrub, bytes per second (at least 65536).");
DEFINE_uint64(answer_budget_bytes, raftkv::server::AnswerBudgetOptions().node_bytes,
              "Memory the node holds at most in answers its clients have not read yet "
              "(each counted twice: the message and gRPC's copy being sent). Past it, "
              "reads wait (and Batch streams stop being read) until clients read; big "
              "answers fill only 7/8 of it, so small ones still pass.");
DEFINE_uint64(stream_answer_budget_bytes, raftkv::server::AnswerBudgetOptions().stream_bytes,
              "The same for one KV.Batch stream: past it the stream starts no ops and is "
              "not read until its client reads.");
DEFINE_uint32(max_concurrent_streams, raftkv::server::GrpcLimits().max_concurrent_streams,
              "HTTP/2 streams (calls) one client connection may have open at once; more "
              "wait for a free one. etcd's default is 2^32-1; this bounds what one "
              "connection pins and is far above what the client library uses.");
DEFINE_uint64(grpc_memory_bytes, raftkv::server::GrpcLimits().memory_bytes,
              "gRPC's memory quota (its connection buffers and calls in progress; 0: none). "
              "Near it gRPC shrinks flow-control windows; at it, it cancels streams.");
DEFINE_int32(grpc_max_threads, raftkv::server::GrpcLimits().max_threads,
             "Threads gRPC may run for synchronous calls (Admin, snapshot transfers); more "
             "calls at once fail RESOURCE_EXHAUSTED.");
DEFINE_int32(handshake_timeout_ms, raftkv::server::GrpcLimits().handshake_timeout_ms,
             "A connection that has not finished its TLS handshake (or, plaintext, sent its "
             "HTTP/2 preface) within this many milliseconds is closed.");
DEFINE_int32(max_connection_idle_ms, raftkv::server::GrpcLimits().max_connection_idle_ms,
             "A connection with no call in progress for this many milliseconds is closed "
             "(GOAWAY; clients reconnect on their next call). 0: never.");
DEFINE_int32(max_connections, raftkv::server::ListenerOptions().max_connections,
             "Connections (clients' and peers') the node keeps open at once; one more is "
             "reset at once, as is one that would take a descriptor kept for the store and "
             "the node's own files (a quarter of the descriptor limit plus 256; at start the "
             "node raises its soft limit, ulimit -n, to the hard one).");
DEFINE_uint64(auto_promote_gap, 50,
              "The leader promotes a learner once its log is within this many entries "
              "of its own (0: only by `kvctl member promote`).");

namespace {

// SIGINT and SIGTERM are blocked in every thread (the mask is set before any
// thread starts and inherited) and taken by sigwait() on one thread, so the
// stop is requested outside a signal handler and exactly once, however many
// signals arrive.
sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

void WaitForStopSignal(absl::Notification* stop) {
  const sigset_t set = StopSignals();
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  LOG(INFO) << "got " << strsignal(sig);
  stop->Notify();
}

std::string ResolveDir(const std::string& dir) {
  std::filesystem::path p(dir);
  if (p.is_relative()) {
    if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY")) p = std::filesystem::path(wd) / p;
  }
  return p.lexically_normal().string();
}

[[noreturn]] void Die(const std::string& msg) {
  LOG(ERROR) << msg;
  std::cerr << "raftkv server: " << msg << std::endl;
  std::exit(1);
}

// Peers' addresses: the founding --cluster, the members a --join target
// reported, the state machine's record of added members, and every
// conf-change entry appended or applied. Keeps the transport's peer set in
// sync (SetPeer on learning an address, RemovePeer once a removal applies).
class AddressBook {
 public:
  AddressBook(uint64_t self, std::string self_address, raftkv::server::PeerTransport* transport)
      : self_(self), self_address_(std::move(self_address)), transport_(transport) {}

  void Learn(uint64_t id, const std::string& address) {
    if (id == 0 || address.empty()) return;
    {
      absl::MutexLock l(&mu_);
      auto it = book_.find(id);
      if (it != book_.end() && it->second == address) return;
      book_[id] = address;
    }
    if (id != self_) {
      LOG(INFO) << "peer " << id << " is at " << address;
      transport_->SetPeer(id, address);
    }
  }
  void Forget(uint64_t id) {
    if (id == self_) return;
    {
      absl::MutexLock l(&mu_);
      if (book_.erase(id) == 0) return;
    }
    LOG(INFO) << "peer " << id << " was removed";
    transport_->RemovePeer(id);
  }
  std::vector<std::string> Others() const {
    absl::MutexLock l(&mu_);
    std::vector<std::string> out;
    for (const auto& [id, a] : book_) {
      if (id != self_) out.push_back(a);
    }
    return out;
  }
  std::string AddressOf(uint64_t id) const {
    if (id == self_) return self_address_;
    absl::MutexLock l(&mu_);
    auto it = book_.find(id);
    return it == book_.end() ? transport_->AddressOf(id) : it->second;
  }
  void OnConfChange(const raftkv::raftpb::ConfChange& cc, bool applied) {
    if (cc.type() == raftkv::raftpb::CONF_REMOVE_NODE) {
      if (applied) Forget(cc.node_id());
    } else {
      Learn(cc.node_id(), cc.context());
    }
  }

 private:
  const uint64_t self_;
  const std::string self_address_;
  raftkv::server::PeerTransport* const transport_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, std::string> book_ ABSL_GUARDED_BY(mu_);
};

// Credentials of every channel this node opens to another member: plaintext
// or the peer TLS identity (server/node_tls.h). Set once in main before any
// thread starts; read-only after. (Not made here: that would start gRPC's
// threads before main blocks the stop signals.)
std::shared_ptr<grpc::ChannelCredentials> peer_credentials;

// Admin.Status of the node at `address`, one attempt.
absl::StatusOr<raftkv::adminpb::StatusResponse> StatusOf(const std::string& address,
                                                        absl::Duration timeout) {
  auto stub = raftkv::adminpb::Admin::NewStub(
      grpc::CreateChannel(address, peer_credentials));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  raftkv::adminpb::StatusRequest req;
  raftkv::adminpb::StatusResponse resp;
  grpc::Status s = stub->Status(&ctx, req, &resp);
  if (s.ok()) return resp;
  return absl::UnavailableError(absl::StrCat(address, ": ", s.error_message()));
}

// Admin.Status of the first of `addresses` that answers within `timeout`.
absl::StatusOr<raftkv::adminpb::StatusResponse> AskStatus(const std::vector<std::string>& addresses,
                                                         absl::Duration timeout) {
  const absl::Time give_up = absl::Now() + timeout;
  absl::Status last = absl::UnavailableError("no --join address");
  while (true) {
    for (const std::string& a : addresses) {
      auto st = StatusOf(a, absl::Seconds(2));
      if (st.ok()) return st;
      last = st.status();
    }
    if (absl::Now() > give_up) return last;
    absl::SleepFor(absl::Milliseconds(500));
  }
}

// Asks the cluster's leader to add this node as a learner, retrying (and
// following leader hints) until it is a member or `stop` is notified.
void AddSelf(uint64_t id, const std::string& address, std::vector<std::string> seeds,
             raftkv::server::Node* node, absl::Notification* stop) {
  using namespace raftkv;
  std::string target = seeds.empty() ? "" : seeds[0];
  for (int attempt = 0; !stop->HasBeenNotified(); ++attempt) {
    if (raft::IsMember(node->RaftStatus().conf_state, id)) return;
    auto st = AskStatus(seeds, absl::Seconds(1));
    if (st.ok() && !st->leader_address().empty()) target = st->leader_address();
    if (st.ok()) {
      for (const auto& m : st->members()) {
        if (m.id() == id) {
          LOG(INFO) << "node " << id << " is already a member";
          return;
        }
      }
    }
    auto stub = adminpb::Admin::NewStub(
        grpc::CreateChannel(target, peer_credentials));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    adminpb::AddMemberRequest req;
    req.set_node_id(id);
    req.set_address(address);
    adminpb::AddMemberResponse resp;
    grpc::Status s = stub->AddMember(&ctx, req, &resp);
    if (s.ok() || s.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
      LOG(INFO) << "node " << id << " added to the cluster as a learner (via " << target << ")";
      return;
    }
    LOG(WARNING) << "asking " << target << " to add node " << id << ": " << s.error_message();
    stop->WaitForNotificationWithTimeout(absl::Milliseconds(std::min(200 * (attempt + 1), 2000)));
  }
}

// A node removed from the cluster may never receive the entry that removes
// it (the leader stops replicating to it at once). While it still believes
// it is a member, it asks the leader (or any peer) now and then; a leader
// whose membership lacks this node means it was removed.
void WatchForRemoval(uint64_t id, const AddressBook* book, raftkv::server::Node* node,
                     std::atomic<bool>* removed, absl::Notification* stop) {
  using namespace raftkv;
  // One channel per address, kept while the watch runs: a new channel each
  // second cost the peer a TCP connect and an HTTP/2 handshake every time.
  // Reconnects stay within a second (gRPC's own backoff grows to 2 minutes),
  // so a restarted peer is asked again as soon as a new channel would.
  std::map<std::string, std::unique_ptr<adminpb::Admin::Stub>> stubs;
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  while (!stop->WaitForNotificationWithTimeout(absl::Seconds(1))) {
    const raft::Status st = node->RaftStatus();
    if (!raft::IsMember(st.conf_state, id) || st.role == raft::Role::kLeader) continue;
    std::vector<std::string> ask;
    if (st.leader != 0 && st.leader != id) ask.push_back(book->AddressOf(st.leader));
    if (ask.empty() || ask[0].empty()) ask = book->Others();
    for (const std::string& a : ask) {
      if (a.empty()) continue;
      std::unique_ptr<adminpb::Admin::Stub>& stub = stubs[a];
      if (stub == nullptr) {
        stub = adminpb::Admin::NewStub(
            grpc::CreateCustomChannel(a, peer_credentials, args));
      }
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
      adminpb::StatusRequest req;
      adminpb::StatusResponse resp;
      if (!stub->Status(&ctx, req, &resp).ok() || resp.role() != "leader") continue;
      bool member = resp.voters_size() == 0;  // a leader always has voters
      for (uint64_t v : resp.voters()) member |= v == id;
      for (uint64_t l : resp.learners()) member |= l == id;
      if (!member && !removed->exchange(true)) {
        LOG(WARNING) << "node " << id << " was removed from the cluster (leader "
                     << resp.node_id() << " at " << a << ")";
      }
      if (member) removed->store(false);
      break;
    }
  }
}

uint64_t NewIncarnation() {
  std::random_device rd;
  uint64_t v = 0;
  while (v == 0) v = (uint64_t{rd()} << 32) ^ rd();
  return v;
}

// The incarnation a member's Admin.Status knows for node `id` (the
// replicated record, else its own), 0 if none.
uint64_t KnownIncarnation(const raftkv::adminpb::StatusResponse& st, uint64_t id) {
  if (auto r = st.recorded_incarnations().find(id); r != st.recorded_incarnations().end()) {
    return r->second;
  }
  auto l = st.peer_incarnations().find(id);
  return l == st.peer_incarnations().end() ? 0 : l->second;
}

// A founding member about to create its store (--initial_cluster_state=new):
// refuses if a reachable peer already heard from this node id, i.e. this
// node took part before and has lost its data dir.
void CheckNotAlreadyFounded(uint64_t id, const raftkv::server::ClusterSpec& spec,
                            const std::string& dir) {
  for (const auto& [peer, address] : spec) {
    if (peer == id) continue;
    auto st = StatusOf(address, absl::Seconds(1));
    if (!st.ok()) continue;  // not up yet: a cluster being founded
    if (st->cluster_id() != raftkv::server::ClusterIdOf(spec)) continue;  // not this cluster
    const uint64_t known = KnownIncarnation(*st, id);
    if (known != 0) {
      Die(absl::StrCat("node ", id, " already took part in cluster ", st->cluster_id(),
                       " (node ", peer, " at ", address, " knows it as incarnation ", known,
                       "), but its data dir ", dir,
                       " is empty: it lost its data and must not rejoin as it was. Remove it "
                       "(kvctl member remove ", id, ") and add a fresh node with --join"));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "raftkv server: one node of a replicated key-value store.\n"
      "  server --id=1 --cluster=1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 "
      "--data_dir=data/n1 [--initial_cluster_state=new on the founding start]");
  {
    const sigset_t stop_signals = StopSignals();
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  }
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = false;
  FLAGS_alsologtostderr = true;
  google::InitGoogleLogging(argv[0]);
  raftkv::server::RouteGrpcLogsToGlog();
#ifdef NDEBUG
  // Debian's absl checks lock order on every Mutex acquisition (about 3% of
  // a loaded leader's CPU); optimized builds skip it, tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif

  using namespace raftkv;
  if (FLAGS_id == 0) Die("--id is required (a node id from --cluster)");
  if (FLAGS_data_dir.empty()) Die("--data_dir is required");
  if (FLAGS_initial_cluster_state != "new" && FLAGS_initial_cluster_state != "existing") {
    Die(absl::StrCat("--initial_cluster_state: must be new or existing, got \"",
                     FLAGS_initial_cluster_state, "\""));
  }
  server::AnswerBudgetOptions answer_budget;
  answer_budget.node_bytes = FLAGS_answer_budget_bytes;
  answer_budget.stream_bytes = FLAGS_stream_answer_budget_bytes;
  if (absl::Status s = answer_budget.Validate(); !s.ok()) Die(std::string(s.message()));
  server::GrpcLimits grpc_limits;
  grpc_limits.max_concurrent_streams = FLAGS_max_concurrent_streams;
  grpc_limits.memory_bytes = FLAGS_grpc_memory_bytes;
  grpc_limits.max_threads = FLAGS_grpc_max_threads;
  grpc_limits.handshake_timeout_ms = FLAGS_handshake_timeout_ms;
  grpc_limits.max_connection_idle_ms = FLAGS_max_connection_idle_ms;
  if (absl::Status s = grpc_limits.Validate(); !s.ok()) Die(std::string(s.message()));
  // Descriptors: the limit raised, a share kept for the store.
  absl::StatusOr<server::FdLimit> fd_limit = server::RaiseFdLimit();
  if (!fd_limit.ok()) Die(std::string(fd_limit.status().message()));
  absl::StatusOr<server::FdBudget> fd_budget = server::BudgetFds(fd_limit->soft);
  if (!fd_budget.ok()) Die(std::string(fd_budget.status().message()));
  const bool joining = !FLAGS_join.empty();
  if (FLAGS_force_new_cluster && FLAGS_initial_cluster_state == "new") {
    Die("--force_new_cluster restarts a surviving member from its own data dir: not with "
        "--initial_cluster_state=new");
  }
  if (joining && !FLAGS_cluster.empty()) Die("give either --cluster or --join, not both");
  absl::StatusOr<server::ClusterSpec> spec = server::ClusterSpec();
  if (!joining) spec = server::ParseClusterSpec(FLAGS_cluster);
  if (!spec.ok()) Die(absl::StrCat("--cluster: ", spec.status().message()));
  if (!joining && !spec->count(FLAGS_id)) {
    Die(absl::StrCat("--id=", FLAGS_id, " is not in --cluster=", FLAGS_cluster));
  }
  std::vector<std::string> seeds;
  if (joining) {
    for (absl::string_view a : absl::StrSplit(FLAGS_join, ',', absl::SkipWhitespace())) {
      seeds.emplace_back(a);
    }
    if (seeds.empty()) Die("--join: no addresses");
  }
  const std::string address =
      joining ? (FLAGS_advertise.empty() ? FLAGS_listen : FLAGS_advertise) : spec->at(FLAGS_id);
  if (address.empty()) Die("--join needs this node's address: --listen or --advertise");
  uint64_t cluster_id = joining ? 0 : server::ClusterIdOf(*spec);
  const std::string dir = ResolveDir(FLAGS_data_dir);

  storage::ScrubOptions scrub;
  if (!absl::ParseDuration(FLAGS_scrub_interval, &scrub.interval) ||
      scrub.interval < absl::ZeroDuration()) {
    Die(absl::StrCat("--scrub_interval=", FLAGS_scrub_interval,
                     ": not a duration >= 0 (e.g. 24h, 90m; 0: off)"));
  }
  if (!absl::ParseDuration(FLAGS_scrub_start_delay, &scrub.start_delay) ||
      scrub.start_delay < absl::ZeroDuration()) {
    Die(absl::StrCat("--scrub_start_delay=", FLAGS_scrub_start_delay,
                     ": not a duration >= 0 (e.g. 10s)"));
  }
  scrub.bytes_per_sec = FLAGS_scrub_bytes_per_sec;
  if (absl::Status s = scrub.Validate(); !s.ok()) {
    Die(absl::StrCat("--scrub_bytes_per_sec=", FLAGS_scrub_bytes_per_sec, ": at least 65536"));
  }
  if (FLAGS_corrupt_check_bytes_per_sec != 0 && FLAGS_corrupt_check_bytes_per_sec < (64 << 10)) {
    Die(absl::StrCat("--corrupt_check_bytes_per_sec=", FLAGS_corrupt_check_bytes_per_sec,
                     ": 0 (unthrottled) or at least 65536"));
  }

  // Refused before anything is created in the directory.
  std::error_code ec;
  const bool has_store = std::filesystem::exists(dir + "/CURRENT", ec);
  if (!has_store && FLAGS_force_new_cluster) {
    Die(absl::StrCat("--force_new_cluster: data dir ", dir, " holds no store; give the data dir "
                     "of the surviving member whose data is to be kept"));
  }
  if (!has_store && !joining && FLAGS_initial_cluster_state != "new") {
    Die(absl::StrCat(
        "data dir ", dir, " holds no store and --initial_cluster_state=existing: node ",
        FLAGS_id, " has no state. If it is a member that lost its data, remove it "
        "(kvctl member remove ", FLAGS_id, ") and add a fresh node with --join; to found "
        "a new cluster, start each founding member with --initial_cluster_state=new"));
  }
  server::NodeTlsOptions tls_options;
  tls_options.cert_file = FLAGS_cert_file;
  tls_options.key_file = FLAGS_key_file;
  tls_options.trusted_ca_file = FLAGS_trusted_ca_file;
  tls_options.client_cert_auth = FLAGS_client_cert_auth;
  tls_options.peer_cert_file = FLAGS_peer_cert_file;
  tls_options.peer_key_file = FLAGS_peer_key_file;
  tls_options.peer_trusted_ca_file = FLAGS_peer_trusted_ca_file;
  tls_options.peer_client_cert_auth = FLAGS_peer_client_cert_auth;
  tls_options.stage_dir = dir + "/tls";
  if (tls_options.enabled()) {
    // The staged copies live in the data dir (a store is its CURRENT file).
    std::filesystem::create_directories(dir, ec);
    if (ec) Die(absl::StrCat("creating data dir ", dir, ": ", ec.message()));
  }
  absl::StatusOr<std::unique_ptr<server::NodeTls>> node_tls = server::NodeTls::Start(tls_options);
  if (!node_tls.ok()) Die(std::string(node_tls.status().message()));
  peer_credentials = (*node_tls)->PeerChannelCredentials();

  if (!has_store && !joining) CheckNotAlreadyFounded(FLAGS_id, *spec, dir);

  storage::Options so;
  so.dir = dir;
  // A failed write stops the node here, before RocksDB sees the error
  // (server/storage_failure.h), from Open on.
  so.on_write_failure = [dir](const absl::Status& s) { server::ExitOnWriteFailure(dir, s); };
  so.max_open_files = fd_budget->store_files;
  auto opened = storage::LogStore::Open(so);
  if (absl::IsResourceExhausted(opened.status())) {
    server::ExitOnWriteFailure(dir, opened.status());  // a full disk not seen as a failed write
  }
  if (!opened.ok()) Die(std::string(opened.status().message()));
  std::unique_ptr<storage::LogStore> store = std::move(*opened);
  server::Alarms alarms;
  // CORRUPT survives restarts (server/alarms.h) unless the operator clears it.
  const std::string corrupt_alarm_file = dir + "/RAFTKV_CORRUPT_ALARM";
  if (FLAGS_clear_corrupt_alarm) {
    std::string reason;
    if (absl::Status s = server::ClearPersistedCorrupt(corrupt_alarm_file, &reason); !s.ok()) {
      Die(absl::StrCat("--clear_corrupt_alarm: ", s.message()));
    }
    LOG_IF(WARNING, !reason.empty()) << "--clear_corrupt_alarm: forgot alarm CORRUPT (" << reason
                                     << "): this node's data are trusted again";
  }
  if (absl::Status s = alarms.PersistCorrupt(corrupt_alarm_file); !s.ok()) {
    Die(absl::StrCat("alarm file: ", s.message()));
  }
  // Checked once now: a node starting below its reserve serves reads only.
  server::DiskSpaceOptions dso;
  dso.dir = dir;
  dso.min_free_bytes = FLAGS_min_free_bytes;
  dso.alarms = &alarms;
  if (absl::Status s = dso.Validate(); !s.ok()) Die(std::string(s.message()));
  server::DiskSpace disk_space(dso);
  // Corrupt data met anywhere (reads, snapshot streams, the scrub) raises
  // CORRUPT through the guard; see server/corruption_guard.h.
  server::CorruptionGuard corruption(FLAGS_id, &alarms);
  // With --join: the members' addresses (and, on a first start, the cluster
  // id) from a member's Admin.Status.
  std::map<uint64_t, std::string> joined_members;
  uint64_t joined_known_incarnation = 0;  // the cluster's record of this id
  if (FLAGS_force_new_cluster && !store->identity().has_value()) {
    Die(absl::StrCat("--force_new_cluster: data dir ", dir, " holds a store without an identity "
                     "(a first start that stopped half-way), not a surviving member's"));
  }
  // A survivor that once joined (--join) is forced from its own identity:
  // the old members are not asked.
  if (joining && FLAGS_force_new_cluster) {
    cluster_id = store->identity()->cluster_id();
  } else if (joining) {
    auto have = store->identity();
    auto st = AskStatus(seeds, have.has_value() ? absl::Seconds(2) : absl::Seconds(60));
    if (st.ok()) {
      if (have.has_value() && st->cluster_id() != have->cluster_id()) {
        Die(absl::StrCat("--join: ", seeds[0], " is in cluster ", st->cluster_id(),
                         " but data dir ", dir, " belongs to cluster ", have->cluster_id()));
      }
      cluster_id = st->cluster_id();
      for (const auto& m : st->members()) joined_members[m.id()] = m.address();
      joined_known_incarnation = KnownIncarnation(*st, FLAGS_id);
      joined_members[st->node_id()] = st->address();
    } else if (!have.has_value()) {
      Die(absl::StrCat("--join: no member answered: ", st.status().message()));
    } else {
      LOG(WARNING) << "--join: no member answered (" << st.status().message()
                   << "); starting from the stored membership";
    }
    if (have.has_value()) cluster_id = have->cluster_id();
  }
  // A store restored from a backup (kvctl snapshot restore) founds a new
  // cluster of its own id with the --cluster it was restored with.
  if (auto have = store->identity();
      !joining && have.has_value() && have->restored_spec_id() == cluster_id) {
    cluster_id = have->cluster_id();
  }
  storagepb::NodeIdentity identity;
  identity.set_cluster_id(cluster_id);
  identity.set_node_id(FLAGS_id);
  if (auto have = store->identity(); have.has_value()) {
    if (have->node_id() != FLAGS_id || have->cluster_id() != cluster_id) {
      Die(absl::StrCat("data dir ", dir, " belongs to node ", have->node_id(), " of cluster ",
                       have->cluster_id(), ", but this is node ", FLAGS_id, " of cluster ",
                       cluster_id, " (from --id and --cluster). Use the node's own data dir, "
                       "or the --cluster it was founded with."));
    }
    LOG(INFO) << "recovering node " << FLAGS_id << " of cluster " << cluster_id << " from "
              << dir;
    if (have->incarnation() == 0) {
      if (absl::Status s = store->SetIncarnation(NewIncarnation()); !s.ok()) {
        Die(std::string(s.message()));
      }
    }
  } else {
    // A member the cluster heard from before is back without its data. (One
    // added by `kvctl member add` and never started is welcome.)
    if (joining && joined_members.count(FLAGS_id) > 0 && joined_known_incarnation != 0) {
      Die(absl::StrCat("node ", FLAGS_id, " is already a member of cluster ", cluster_id,
                       " (per ", seeds[0], ", as incarnation ", joined_known_incarnation,
                       "), but its data dir ", dir,
                       " is empty: it lost its data and must not rejoin as it was. Remove it "
                       "(kvctl member remove ", FLAGS_id,
                       ") and start it again, or join with a new --id"));
    }
    if (!joining && FLAGS_initial_cluster_state != "new") {
      Die(absl::StrCat("data dir ", dir, " holds a store without an identity (a first start "
                       "that stopped half-way) and --initial_cluster_state=existing"));
    }
    identity.set_incarnation(NewIncarnation());
    // A joining node starts with an empty membership: it adopts the
    // cluster's from the first conf-change entry or snapshot it receives.
    raftpb::ConfState conf;
    for (const auto& [id, addr] : *spec) conf.add_voters(id);
    if (absl::Status s = store->Bootstrap(identity, conf); !s.ok()) Die(std::string(s.message()));
    LOG(INFO) << "bootstrapped node " << FLAGS_id << " of cluster " << cluster_id
              << (joining ? " to join it" : absl::StrCat(" (", server::FormatClusterSpec(*spec), ")"))
              << " in " << dir;
  }

  if (FLAGS_force_new_cluster) {
    // Before the state machine and the core read the store.
    auto forced = server::ForceNewCluster(store.get(), FLAGS_id);
    if (!forced.ok()) Die(absl::StrCat("--force_new_cluster: ", forced.status().message()));
    LOG(WARNING) << server::DescribeForcedLog(*forced, FLAGS_id);
  }
  const uint64_t incarnation = store->identity()->incarnation();
  mvcc::StoreOptions mvcc_options;
  mvcc_options.latest_cache_bytes = FLAGS_mvcc_key_cache_bytes;
  auto sm = server::KvStateMachine::Open(store.get(), mvcc_options);
  if (!sm.ok()) {
    // Without its session table a node cannot apply as the others do.
    Die(absl::StrCat("state machine: ", sm.status().message(),
                     absl::IsDataLoss(sm.status())
                         ? absl::StrCat(". The data dir is damaged: replace this node (kvctl "
                                        "member remove ", FLAGS_id, ", then add a fresh node "
                                        "with --join)")
                         : ""));
  }
  // Removes the history a compaction hid, paced, off the apply loop.
  server::MvccCompactorOptions mco;
  mco.on_error = [dir](const absl::Status& s) {
    // A corrupt block is the scrubber's and the hash check's to report; a
    // failed write stops the node as every failed write does.
    if (!absl::IsDataLoss(s)) server::ExitOnWriteFailure(dir, s);
  };
  server::MvccCompactor mvcc_compactor((*sm)->mvcc(), mco);
  server::PeerIncarnations::ClusterView cluster_view;
  cluster_view.records = [sm = sm->get()] { return sm->Incarnations(); };
  cluster_view.is_member = [sm = sm->get()](uint64_t id) {
    return raft::IsMember(sm->Membership().second, id);
  };
  server::PeerIncarnations peer_incarnations(store.get(), cluster_view);
  // Records of nodes removed while this one was down (or by a snapshot).
  auto reconcile = [&peer_incarnations] {
    if (absl::Status s = peer_incarnations.Reconcile(); !s.ok()) {
      Die(absl::StrCat("forgetting removed members' incarnations: ", s.message()));
    }
  };
  reconcile();

  server::Node* node_ptr = nullptr;
  // Set once the peer service exists (below), before any peer message can
  // arrive; the node counts its own drops (non_member) there too.
  server::PeerService* peer_service = nullptr;
  server::TransportOptions to;
  to.self_id = FLAGS_id;
  to.cluster_id = cluster_id;
  to.incarnation = incarnation;
  to.credentials = peer_credentials;
  std::unique_ptr<server::FaultInjector> faults;
  if (FLAGS_enable_fault_injection) {
    faults = std::make_unique<server::FaultInjector>();
    to.faults = faults.get();
    LOG(WARNING) << "fault injection enabled (--enable_fault_injection): test use only";
  }
  // Shut down before the node (below): their threads call into it.
  auto transport = std::make_unique<server::PeerTransport>(to, [&node_ptr](uint64_t peer) {
    if (node_ptr != nullptr) node_ptr->ReportUnreachable(peer);
  });
  AddressBook book(FLAGS_id, address, transport.get());
  for (const auto& [id, addr] : *spec) book.Learn(id, addr);
  for (const auto& [id, addr] : joined_members) book.Learn(id, addr);
  if (auto members = (*sm)->MemberAddresses(); members.ok()) {
    for (const auto& [id, addr] : *members) book.Learn(id, addr);
  } else {
    LOG(WARNING) << "reading member addresses: " << corruption.Check(members.status());
  }
  // Conf changes in the log past the applied index (appended before a
  // restart) carry addresses too.
  if (store->LastIndex() > store->applied_index()) {
    auto tail = store->Entries(store->applied_index() + 1, store->LastIndex() + 1, 64 << 20);
    if (tail.ok()) {
      for (const auto& e : *tail) {
        raftpb::ConfChange cc;
        if (e.type() == raftpb::ENTRY_CONF_CHANGE && cc.ParseFromString(e.data())) {
          book.OnConfChange(cc, false);
        }
      }
    }
  }

  server::SnapshotOptions snap_opts;
  snap_opts.cluster_id = cluster_id;
  snap_opts.incarnation = incarnation;
  snap_opts.credentials = peer_credentials;
  snap_opts.chunk_bytes = FLAGS_snapshot_chunk_bytes;
  snap_opts.max_bytes_per_sec = FLAGS_snapshot_max_bytes_per_sec;
  snap_opts.max_concurrent = FLAGS_max_concurrent_snapshots;
  snap_opts.on_read_error = [&corruption](const absl::Status& s) {
    (void)corruption.Check(s);
  };
  if (absl::Status s = snap_opts.Validate(); !s.ok()) Die(std::string(s.message()));
  auto snapshot_sender =
      std::make_unique<server::SnapshotSender>(snap_opts, [&node_ptr](uint64_t peer, bool ok) {
        if (node_ptr != nullptr) node_ptr->ReportSnapshot(peer, ok);
      });
  server::SnapshotReceiver snapshot_receiver(store.get(),
                                             [&disk_space] { return disk_space.WriteRefusal(); });

  std::unique_ptr<server::StageTrace> stage_trace;
  if (!FLAGS_stage_trace_file.empty()) {
    auto t = server::StageTrace::Open(
        absl::StrReplaceAll(FLAGS_stage_trace_file, {{"{id}", absl::StrCat(FLAGS_id)}}),
        FLAGS_stage_trace_every);
    if (!t.ok()) Die(std::string(t.status().message()));
    stage_trace = std::move(*t);
  }
  absl::Duration corrupt_check_interval;
  if (!absl::ParseDuration(FLAGS_corrupt_check_interval, &corrupt_check_interval) ||
      corrupt_check_interval < absl::ZeroDuration()) {
    Die(absl::StrCat("--corrupt_check_interval: not a duration (e.g. 10m, 30s, 0): \"",
                     FLAGS_corrupt_check_interval, "\""));
  }
  server::NodeOptions no;
  no.stage_trace = stage_trace.get();
  no.id = FLAGS_id;
  no.snapshot_entries = FLAGS_snapshot_entries;
  no.snapshot_keep_entries = FLAGS_snapshot_keep_entries;
  no.tick = absl::Milliseconds(FLAGS_tick_ms);
  no.election_ticks = FLAGS_election_ticks;
  no.heartbeat_ticks = FLAGS_heartbeat_ticks;
  no.lease_reads = FLAGS_lease_reads;
  no.async_log_writes = FLAGS_async_log_writes;
  no.commit_notices = FLAGS_commit_notices;
  no.read_threads = FLAGS_read_threads;
  no.write_answer_thread = FLAGS_write_answer_thread;
  no.auto_promote_gap = FLAGS_auto_promote_gap;
  no.disk_space = &disk_space;
  no.on_conf_change = [&book, &reconcile](const raftpb::ConfChange& cc, bool applied) {
    book.OnConfChange(cc, applied);
    // A removed id may be added again, as a fresh node with a new incarnation.
    if (applied) reconcile();
  };
  no.on_non_member = [&peer_service](const raftpb::Message& m) {
    peer_service->refusals()->Count(server::PeerRefusal::kNonMember, [&m] {
      return absl::StrCat(raftpb::MessageType_Name(m.type()), " of term ", m.term(),
                          " from node ", m.from(), ", in none of this leader's "
                          "configurations: if it was removed, stop it");
    });
  };
  server::KvStateMachine* sm_ptr = sm->get();
  no.on_snapshot_installed = [&book, &corruption, sm_ptr, &reconcile] {
    if (auto members = sm_ptr->MemberAddresses(); members.ok()) {
      for (const auto& [id, addr] : *members) book.Learn(id, addr);
    } else {
      LOG(WARNING) << "reading member addresses: " << corruption.Check(members.status());
    }
    reconcile();
  };
  no.data_corrupt = [&corruption] { return corruption.corrupt(); };
  auto address_of = [&book](uint64_t id) { return book.AddressOf(id); };
  server::SnapshotHooks hooks;
  hooks.sender = snapshot_sender.get();
  hooks.receiver = &snapshot_receiver;
  hooks.address_of = address_of;
  auto node = server::Node::Create(no, store.get(), sm->get(), transport.get(), hooks);
  if (!node.ok()) Die(absl::StrCat("raft: ", node.status().message()));
  node_ptr = node->get();

  // `alarms` (raised by the checks below, disk_space and the CorruptionGuard)
  // are reported by Admin.Status.
  server::HashCheckerOptions hco;
  hco.self_id = FLAGS_id;
  hco.interval = corrupt_check_interval;
  hco.bytes_per_sec = FLAGS_corrupt_check_bytes_per_sec;
  hco.ask = [&book](uint64_t peer,
                    uint64_t index) -> absl::StatusOr<std::optional<uint64_t>> {
    auto st = StatusOf(book.AddressOf(peer), absl::Seconds(1));
    if (!st.ok()) return st.status();
    for (const auto& h : st->state_hashes()) {
      if (h.index() == index) return std::optional<uint64_t>(h.hash());
    }
    return std::optional<uint64_t>();
  };
  if (absl::Status s = hco.Validate(); !s.ok()) Die(std::string(s.message()));
  server::HashChecker hash_checker(hco, node->get(), &alarms);
  (*sm)->set_checkpoint_hook(
      [&hash_checker](uint64_t index, std::unique_ptr<storage::DataSnapshot> view) {
        hash_checker.OnCheckpoint(index, std::move(view));
      });

  server::ServiceOptions svc;
  svc.node_id = FLAGS_id;
  svc.cluster_id = cluster_id;
  svc.incarnation = incarnation;
  svc.peer_incarnations = [&peer_incarnations] { return peer_incarnations.Local(); };
  svc.recorded_incarnations = [sm_ptr] { return sm_ptr->Incarnations(); };
  svc.address = address;
  svc.max_value_bytes = FLAGS_max_value_bytes;
  svc.default_deadline = absl::Milliseconds(FLAGS_default_deadline_ms);
  svc.address_of = address_of;
  server::SnapshotSender* sender_ptr = snapshot_sender.get();
  svc.snapshot_transfers = [sender_ptr, &snapshot_receiver] {
    std::vector<std::string> out = sender_ptr->InProgress();
    if (std::string r = snapshot_receiver.State(); !r.empty()) out.push_back(r);
    return out;
  };
  std::atomic<bool> removed{false};
  svc.removed = [&removed] { return removed.load(); };
  svc.peer_refusals = [&peer_service] { return peer_service->refusals()->Counts(); };
  svc.faults = faults.get();
  svc.alarms = &alarms;
  svc.state_hashes = [&hash_checker] { return hash_checker.Hashes(); };
  svc.corruption = &corruption;
  svc.answer_budget = answer_budget;
  // etcd's v3 API (server/etcd/): KV, Cluster, Maintenance on the same port.
  server::etcd::EtcdContext etcd_ctx;
  etcd_ctx.cluster_id = cluster_id;
  etcd_ctx.member_id = FLAGS_id;
  etcd_ctx.node = node->get();
  etcd_ctx.sm = sm->get();
  etcd_ctx.compactor = &mvcc_compactor;
  etcd_ctx.alarms = &alarms;
  etcd_ctx.corruption = &corruption;
  // Writes and membership changes from any member reach the leader.
  server::ForwardingOptions fwd;
  fwd.self_id = FLAGS_id;
  fwd.cluster_id = cluster_id;
  fwd.incarnation = incarnation;
  fwd.credentials = peer_credentials;
  fwd.leader = [node = node->get()] { return node->leader(); };
  fwd.address_of = address_of;
  fwd.propose_local = [node = node->get()](std::string command, absl::Time deadline,
                                           server::WriteDone done) {
    node->Propose(std::move(command), deadline, std::move(done));
  };
  fwd.change_local = [node = node->get()](raftkv::raftpb::ConfChange cc, absl::Time deadline) {
    return server::AwaitNode<raftkv::raftpb::ConfState>(
        deadline, [&](std::function<void(absl::StatusOr<raftkv::raftpb::ConfState>)> done) {
          node->ProposeConfChange(std::move(cc), deadline, std::move(done));
        });
  };

  // etcd's MemberPromote readiness rule, where the leader proposes.
  fwd.change_local = server::etcd::CheckingPromotions(
      std::move(fwd.change_local),
      [node = node->get()] { return node->FreshRaftStatus(absl::Milliseconds(100)); });
  if (absl::Status s = fwd.Validate(); !s.ok()) Die(std::string(s.message()));
  server::LeaderProposer leader_proposer(fwd);
  etcd_ctx.propose = [&leader_proposer](std::string command, absl::Time deadline,
                                        server::Node::WriteCallback done) {
    leader_proposer.Propose(std::move(command), deadline, std::move(done));
  };
  etcd_ctx.change_membership = [&leader_proposer](raftkv::raftpb::ConfChange cc,
                                                  absl::Time deadline) {
    return leader_proposer.ChangeMembership(cc, deadline);
  };
  etcd_ctx.member_addresses = [sm_ptr, &book] {
    std::map<uint64_t, std::string> out;
    const raftkv::raftpb::ConfState conf = sm_ptr->Membership().second;
    for (uint64_t id : conf.voters()) out[id] = book.AddressOf(id);
    for (uint64_t id : conf.learners()) out[id] = book.AddressOf(id);
    return out;
  };
  etcd_ctx.client_tls = (*node_tls)->enabled();
  etcd_ctx.default_deadline = svc.default_deadline;
  etcd_ctx.max_request_bytes = FLAGS_max_request_bytes;
  etcd_ctx.max_txn_ops = FLAGS_max_txn_ops;
  etcd_ctx.max_range_bytes = FLAGS_max_range_bytes;
  // etcd's auth: tokens of this member, dropped as the replicated state says.
  server::etcd::AuthTokenOptions token_opts;
  token_opts.ttl = absl::Seconds(FLAGS_auth_token_ttl);
  if (absl::Status s = token_opts.Validate(); !s.ok()) Die(std::string(s.message()));
  server::etcd::AuthTokens auth_tokens(token_opts);
  sm_ptr->mutable_etcd_auth()->set_invalidate_hook(
      [&auth_tokens](const std::string& user) { auth_tokens.Invalidate(user); });
  sm_ptr->mutable_etcd_auth()->set_token_hook([&auth_tokens](const std::string& token,
                                                     const std::string& user) {
    auth_tokens.Add(token, user);
  });
  server::etcd::Authorizer authorizer(&sm_ptr->etcd_auth(), &auth_tokens, FLAGS_client_cert_auth);
  etcd_ctx.auth = &authorizer;
  // Admin's membership changes, transfers, faults and backups: root only
  // while etcd's auth is on (a token, or a client certificate's CN).
  svc.admit_admin = [&authorizer](const grpc::ServerContextBase& ctx) {
    return authorizer.CheckAdmin(ctx);
  };
  if (absl::Status s = etcd_ctx.Validate(); !s.ok()) Die(absl::StrCat("etcd API: ", s.message()));
  auto auto_compaction = server::etcd::ParseAutoCompaction(FLAGS_auto_compaction_mode,
                                                            FLAGS_auto_compaction_retention);
  if (!auto_compaction.ok()) Die(std::string(auto_compaction.status().message()));
  std::unique_ptr<server::etcd::AutoCompactor> auto_compactor;
  if (auto_compaction->has_value()) {
    server::etcd::AutoCompactor::Hooks hooks;
    hooks.is_leader = [node = node->get()] { return node->is_leader(); };
    hooks.revision = [sm_ptr] { return sm_ptr->mvcc()->revision(); };
    hooks.compact_revision = [sm_ptr] { return sm_ptr->mvcc()->compact_revision(); };
    hooks.compact = [&leader_proposer](int64_t revision) {
      raftkv::kvpb::Command cmd;
      cmd.mutable_etcd()->mutable_compaction()->set_revision(revision);
      const absl::Time deadline = absl::Now() + absl::Seconds(30);
      return server::AwaitNode<raftkv::kvpb::WriteResult>(
                 deadline, [&](server::WriteDone done) {
                   leader_proposer.Propose(cmd.SerializeAsString(), deadline, std::move(done));
                 })
          .status();
    };

    auto_compactor = std::make_unique<server::etcd::AutoCompactor>(**auto_compaction, hooks);
    LOG(INFO) << "auto compaction: " << FLAGS_auto_compaction_mode << ", keeping "
              << FLAGS_auto_compaction_retention;
  }
  server::KvService kv(svc, node->get(), sm->get());
  server::MemoryTrimmer trimmer(server::MemoryTrimOptions(), kv.answer_budget());
  server::AdminService admin(svc, node->get(), sm->get());
  server::PeerService peer(
      FLAGS_id, cluster_id, [&node_ptr](raftpb::Message m) { node_ptr->Receive(std::move(m)); },
      &snapshot_receiver, faults.get(),
      [&peer_incarnations](uint64_t sender, uint64_t sender_incarnation) {
        absl::Status s = peer_incarnations.Admit(sender, sender_incarnation);
        if (!s.ok() && !absl::IsFailedPrecondition(s) && !absl::IsInvalidArgument(s)) {
          Die(absl::StrCat("recording node ", sender, "'s incarnation: ", s.message()));
        }
        return s;
      },
      [sm_ptr, &peer_incarnations] {
        return sm_ptr->records_version() + peer_incarnations.version();
      });
  peer.set_authorize([tls = node_tls->get()](const grpc::ServerContextBase& context) {
    return tls->AuthorizePeer(context);
  });
  peer_service = &peer;
  server::ForwardService forward(
      [&peer](const grpc::ServerContextBase& context) { return peer.AdmitCaller(context); },
      fwd.propose_local, fwd.change_local);
  etcd_ctx.answer_budget = kv.answer_budget();  // one budget for both APIs' answers
  server::etcd::ClusterService etcd_cluster(etcd_ctx);
  server::etcd::MaintenanceOptions maintenance_opts;
  if (FLAGS_quota_backend_bytes != 0) maintenance_opts.quota.quota_bytes = FLAGS_quota_backend_bytes;
  server::etcd::MaintenanceService maintenance(etcd_ctx, maintenance_opts);
  etcd_ctx.admit_write = [quota = maintenance.space_quota()](uint64_t cost) {
    return quota->Admit(cost);
  };
  server::etcd::KvService etcd_kv(etcd_ctx);
  server::etcd::AuthService etcd_auth(etcd_ctx);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string listen = FLAGS_listen.empty() ? address : FLAGS_listen;
  // Connections are accepted by the node's own listener, which caps them
  // (server/connection_listener.h), and handed to gRPC.
  server::ListenerOptions lo;
  lo.address = listen;
  lo.max_connections = FLAGS_max_connections;
  lo.fd_limit = fd_limit->soft;
  lo.reserved_fds = fd_budget->reserved;
  if (absl::Status s = lo.Validate(); !s.ok()) Die(std::string(s.message()));
  auto listener = server::ConnectionListener::Bind(lo);
  if (!listener.ok()) Die(std::string(listener.status().message()));
  auto acceptor = builder.experimental().AddExternalConnectionAcceptor(
      grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
      (*node_tls)->ListenerCredentials());
  builder.SetMaxReceiveMessageSize(static_cast<int>(svc.max_request_bytes));
  server::AcceptPeerKeepalives(&builder);
  server::ApplyGrpcLimits(grpc_limits, &builder);
  builder.RegisterService(&kv);
  builder.RegisterService(&admin);
  builder.RegisterService(&etcd_cluster);
  builder.RegisterService(&maintenance);
  builder.RegisterService(&peer);
  builder.RegisterService(&forward);
  builder.RegisterService(&etcd_kv);
  builder.RegisterService(&etcd_auth);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) Die(absl::StrCat("cannot start the gRPC server for ", listen));
  (*listener)->Start(std::move(acceptor));

  (*node)->Start();
  server::IncarnationRecorder incarnation_recorder(FLAGS_id, incarnation, node->get(), sm->get(),
                                                   &peer_incarnations);
  incarnation_recorder.Start();
  hash_checker.Start();
  disk_space.Start();
  LOG(INFO) << "file descriptors: limit " << fd_limit->soft
            << (fd_limit->soft > fd_limit->before ? absl::StrCat(" (raised from ", fd_limit->before, ")")
                                                   : std::string())
            << "; the store keeps at most " << fd_budget->store_files
            << " table files open; at most " << FLAGS_max_connections
            << " connections, none taking one of the last " << fd_budget->reserved;
  LOG(INFO) << "node " << FLAGS_id << " serving on " << listen << " (data " << dir << ", "
            << ((*node_tls)->enabled()
                    ? absl::StrCat("TLS", FLAGS_client_cert_auth ? ", client certificates required" : "",
                                   FLAGS_peer_client_cert_auth ? ", peer certificates required" : "")
                    : "plaintext")
            << ")";
  storage::Scrubber scrubber(scrub, store.get(), [&corruption](const absl::Status& s) {
    (void)corruption.Check(s);
  });
  scrubber.Start();
  if (scrub.interval > absl::ZeroDuration()) {
    LOG(INFO) << "scrubbing " << dir << " every " << FLAGS_scrub_interval << " at "
              << FLAGS_scrub_bytes_per_sec << " bytes/s, first in " << FLAGS_scrub_start_delay;
  }
  LOG_IF(WARNING, !raftkv::server::StreamWindowFixActive())
      << "server/grpc_stream_window_fix.h is off with gRPC " << grpc::Version()
      << " (not the build it was checked against): every message read costs a window update "
      << "frame (slower, not unsafe)";

  absl::Notification stop;
  std::thread signal_waiter(WaitForStopSignal, &stop);
  signal_waiter.detach();  // blocked in sigwait() until the process ends
  std::thread add_self;
  if (joining && FLAGS_join_add_self) {
    add_self = std::thread(AddSelf, FLAGS_id, address, seeds, node->get(), &stop);
  }
  std::thread removal_watch(WatchForRemoval, FLAGS_id, &book, node->get(), &removed, &stop);
  stop.WaitForNotification();
  LOG(INFO) << "shutting down";
  scrubber.Stop();
  if (add_self.joinable()) add_self.join();
  incarnation_recorder.Stop();
  hash_checker.Stop();
  removal_watch.join();
  // Peers' streams never finish on their own, so the grace period is always
  // used up: keep it short. Client calls cut off here end CANCELLED (outcome
  // unknown), and the client library retries them on another node. The
  // server's Shutdown also waits for every call the node still holds (a
  // write that can no longer commit, say): at the end of the grace period
  // the node stops and answers them all UNAVAILABLE.
  constexpr absl::Duration kGrace = absl::Milliseconds(500);
  std::thread node_stopper([&node, kGrace] {
    absl::SleepFor(kGrace);
    (*node)->Stop();
  });
  (*listener)->Stop();  // before the server: gRPC would leak a connection handed to it after
  server->Shutdown(absl::ToChronoTime(absl::Now() + kGrace));
  node_stopper.join();
  snapshot_sender.reset();  // joins transfers; they report into the node (refused now)
  transport.reset();  // no more callbacks into the node after this
  return 0;
}
