#include "tests/jepsen/runner.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "client/client.h"
#include "client/tls_credentials.h"
#include "grpcpp/grpcpp.h"
#include "proto/kv.grpc.pb.h"
#include "tests/cluster_harness.h"
#include "tests/jepsen/disks.h"
#include "tests/jepsen/etcd_client.h"
#include "tests/jepsen/history.h"
#include "tests/jepsen/netns.h"

namespace raftkv::jepsen {
namespace {

// The client certificate of a TLS run (RunOptions::tls_dir); none (plaintext)
// otherwise.
client::TlsClientFiles ClientTls(const RunOptions& o) {
  if (o.tls_dir.empty()) return {};
  return {o.tls_dir + "/ca.pem", o.tls_dir + "/client.pem", o.tls_dir + "/client-key.pem"};
}

// Client and peer mutual TLS with the node certificate of RunOptions::tls_dir.
std::vector<std::string> TlsServerFlags(const std::string& dir) {
  return {"--cert_file=" + dir + "/node.pem",      "--key_file=" + dir + "/node-key.pem",
          "--trusted_ca_file=" + dir + "/ca.pem",  "--client_cert_auth",
          "--peer_cert_file=" + dir + "/node.pem", "--peer_key_file=" + dir + "/node-key.pem",
          "--peer_trusted_ca_file=" + dir + "/ca.pem", "--peer_client_cert_auth"};
}

std::unique_ptr<client::Client> MakeClient(const RunOptions& o, std::vector<std::string> endpoints,
                                           absl::Duration total) {
  client::ClientOptions co;
  co.endpoints = std::move(endpoints);
  co.tls = ClientTls(o);
  co.attempt_timeout = std::min(absl::Seconds(1), total / 2);
  co.total_timeout = total;
  co.backoff_initial = absl::Milliseconds(10);
  co.backoff_max = absl::Milliseconds(200);
  auto c = client::Client::Create(co);
  return c.ok() ? std::move(*c) : nullptr;
}

// Failed (definitely not applied) or unknown, per the header's rules.
void MarkError(const absl::Status& s, bool write, Op* r) {
  r->error = s.ToString();
  r->outcome = write && s.code() == absl::StatusCode::kInvalidArgument ? Outcome::kFailed
                                                                       : Outcome::kUnknown;
}

// Runs `op` (arguments filled; not a scan) with `c`; fills its answer.
void Execute(client::Client* c, Op* op) {
  switch (op->type) {
    case OpType::kPut: {
      auto r = c->Put(op->key, op->value);
      if (!r.ok()) return MarkError(r.status(), true, op);
      op->outcome = Outcome::kOk;
      op->version = *r;
      return;
    }
    case OpType::kGet: {
      auto r = c->Get(op->key, op->serializable);
      if (r.ok()) {
        op->outcome = Outcome::kOk;
        op->found = true;
        op->out_value = r->value;
        op->version = r->version;
      } else if (r.status().code() == absl::StatusCode::kNotFound) {
        op->outcome = Outcome::kOk;
        op->found = false;
      } else {
        MarkError(r.status(), false, op);
      }
      return;
    }
    case OpType::kDelete: {
      auto r = c->Delete(op->key);
      if (!r.ok()) return MarkError(r.status(), true, op);
      op->outcome = Outcome::kOk;
      op->found = *r;
      return;
    }
    case OpType::kCas: {
      auto r = c->CompareAndSwap(op->key,
                                 op->cas_by_version ? client::Expected::Version(op->expected_version)
                                                    : client::Expected::Value(op->expected_value),
                                 op->value);
      if (!r.ok()) return MarkError(r.status(), true, op);
      op->outcome = Outcome::kOk;
      op->succeeded = r->succeeded;
      if (r->succeeded) {
        op->version = r->version;
      } else if (r->current.has_value()) {
        op->found = true;
        op->out_value = r->current->value;
        op->version = r->current->version;
      }
      return;
    }
    case OpType::kScan:
      MarkError(absl::InternalError("scans go to one member (ReadOnMember)"), false, op);
      return;
  }
}

// Runs the get or scan `op` as one call to one member (no retry, no
// redirect), so the answer's header says who served it and at which applied
// index. `serializable` is what is asked; op->serializable what is recorded
// (they differ only for the planted bug).
void ReadOnMember(kvpb::KV::Stub* stub, bool serializable, absl::Duration timeout, Op* op) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::Status s;
  const kvpb::ResponseHeader* header = nullptr;
  kvpb::GetResponse get;
  kvpb::ScanResponse scan;
  if (op->type == OpType::kGet) {
    kvpb::GetRequest req;
    req.set_key(op->key);
    req.set_serializable(serializable);
    s = stub->Get(&ctx, req, &get);
    header = &get.header();
    op->found = get.found();
    op->out_value = get.kv().value();
    op->version = get.kv().version();
  } else {
    kvpb::ScanRequest req;
    req.set_prefix(op->key);
    req.set_serializable(serializable);
    s = stub->Scan(&ctx, req, &scan);
    header = &scan.header();
    for (const kvpb::KeyValue& kv : scan.kvs()) {
      op->kvs.push_back(ScanKv{kv.key(), kv.value(), kv.version()});
    }
    op->more = scan.more();
  }
  if (!s.ok()) {
    op->found = false;
    op->out_value.clear();
    op->version = 0;
    op->kvs.clear();
    const absl::Status status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    return MarkError(status, false, op);
  }
  op->outcome = Outcome::kOk;
  op->member = header->node_id();
  op->applied = header->applied_index();
}
// ---- The etcd-API mode (runner.h) ----

// Prefix of the error of an answer that lacks what etcd's API promises (a
// failed CAS without its one Range): the run fails on any.
constexpr absl::string_view kMalformed = "malformed answer: ";

void GetFromRange(const etcdserverpb::RangeResponse& r, Op* op) {
  op->found = r.kvs_size() > 0;
  if (op->found) {
    op->out_value = r.kvs(0).value();
    op->version = static_cast<uint64_t>(r.kvs(0).mod_revision());
  }
}

// Runs `op` (arguments filled; not a scan) through `c`, each call at most
// `timeout` (a get: retried on the next member within it); fills its answer.
void ExecuteEtcd(EtcdClient* c, absl::Duration timeout, Op* op) {
  switch (op->type) {
    case OpType::kPut: {
      auto r = c->Put(op->key, op->value, timeout);
      if (!r.ok()) return MarkError(r.status(), true, op);
      op->outcome = Outcome::kOk;
      op->version = static_cast<uint64_t>(r->header().revision());
      return;
    }
    case OpType::kGet: {
      auto r = c->RangeRetrying(KeyRange(op->key, op->serializable),
                                std::min(absl::Seconds(1), timeout / 2), timeout);
      if (!r.ok()) return MarkError(r.status(), false, op);
      op->outcome = Outcome::kOk;
      GetFromRange(*r, op);
      return;
    }
    case OpType::kDelete: {
      auto r = c->Delete(op->key, timeout);
      if (!r.ok()) return MarkError(r.status(), true, op);
      op->outcome = Outcome::kOk;
      op->found = r->deleted() > 0;
      return;
    }
    case OpType::kCas: {
      auto r = c->Txn(CasTxn(op->key, op->cas_by_version, op->expected_value,
                             static_cast<int64_t>(op->expected_version), op->value),
                      timeout);
      if (!r.ok()) return MarkError(r.status(), true, op);
      op->succeeded = r->succeeded();
      if (r->succeeded()) {
        op->outcome = Outcome::kOk;
        op->version = static_cast<uint64_t>(r->header().revision());
        return;
      }
      if (r->responses_size() != 1 || !r->responses(0).has_response_range()) {
        op->error = absl::StrCat(kMalformed, "a failed CAS answered ", r->responses_size(),
                                 " responses, not its one Range: ", r->ShortDebugString());
        return;  // unknown
      }
      op->outcome = Outcome::kOk;
      GetFromRange(r->responses(0).response_range(), op);
      return;
    }
    case OpType::kScan:
      MarkError(absl::InternalError("scans go to one member (ReadOnMember)"), false, op);
      return;
  }
}

// ReadOnMember through etcd's Range: the member is the header's member_id,
// the applied index its revision (of the view read).
void ReadOnMemberEtcd(etcdserverpb::KV::Stub* stub, bool serializable, absl::Duration timeout,
                      Op* op) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  etcdserverpb::RangeResponse r;
  const grpc::Status s =
      stub->Range(&ctx,
                  op->type == OpType::kGet ? KeyRange(op->key, serializable)
                                           : PrefixRange(op->key, serializable),
                  &r);
  if (!s.ok()) return MarkError(FromGrpc(s), false, op);
  op->outcome = Outcome::kOk;
  if (op->type == OpType::kGet) {
    GetFromRange(r, op);
  } else {
    for (const mvccpb::KeyValue& kv : r.kvs()) {
      op->kvs.push_back(ScanKv{kv.key(), kv.value(), static_cast<uint64_t>(kv.mod_revision())});
    }
    op->more = r.more();
  }
  op->member = r.header().member_id();
  op->applied = static_cast<uint64_t>(r.header().revision());
}

struct Shared {
  Recorder recorder;
  std::atomic<bool> stop{false};
};

// One client: operations one after another on random keys until stopped.
void ClientLoop(const RunOptions& o, const std::vector<std::string>& addresses,
                const std::shared_ptr<grpc::ChannelCredentials>& credentials, int c,
                Shared* shared) {
  std::vector<std::string> endpoints = addresses;
  std::rotate(endpoints.begin(), endpoints.begin() + c % endpoints.size(), endpoints.end());
  // Odd clients give up sooner: more operations end unknown (and may
  // still take effect later), which the checker must place.
  const absl::Duration timeout = c % 2 == 1 ? o.op_timeout / 6 : o.op_timeout;
  const bool etcd = o.api == RunOptions::Api::kEtcd;
  std::unique_ptr<client::Client> cl;
  std::unique_ptr<EtcdClient> ec;
  // One stub per node, for reads sent to one member.
  std::vector<std::unique_ptr<kvpb::KV::Stub>> members;
  if (etcd) {
    // Starts on its own member, as `endpoints` does.
    ec = std::make_unique<EtcdClient>(addresses, credentials, static_cast<size_t>(c));
  } else {
    cl = MakeClient(o, endpoints, timeout);
    for (const auto& a : addresses) {
      members.push_back(kvpb::KV::NewStub(grpc::CreateChannel(a, credentials)));
    }
  }
  const size_t member_count = addresses.size();
  const absl::Duration member_timeout = std::min(absl::Seconds(1), o.op_timeout);
  std::mt19937_64 rng(o.seed * 7919 + static_cast<uint64_t>(c));
  struct Seen {
    bool found = false;
    std::string value;
    uint64_t version = 0;
  };
  std::map<std::string, Seen> seen;
  for (int n = 1; !shared->stop.load(); ++n) {
    Op op;
    op.client = c;
    op.key = absl::StrCat("k", rng() % static_cast<uint64_t>(o.keys));
    // 25% gets through the client library, 11% gets and 4% scans (of all
    // the keys) sent to a random member, serializable two times in three
    // (scans: one in two); 25% puts, 25% CASes, 10% deletes.
    const int roll = static_cast<int>(rng() % 100);
    op.type = roll < 40 ? OpType::kGet
              : roll < 65 ? OpType::kPut
              : roll < 90 ? OpType::kCas
                          : OpType::kDelete;
    int member = -1;  // index of the member a read is sent to
    if (roll >= 25 && roll < 40) {
      member = static_cast<int>(rng() % member_count);
      if (roll >= 36) {
        op.type = OpType::kScan;
        op.key = "k";
        op.serializable = rng() % 2 == 0;
      } else {
        op.serializable = rng() % 3 != 0;
      }
    }
    // Planted bug: every read serializable on a random member, recorded as
    // linearizable.
    const bool planted =
        o.planted_stale_reads && (op.type == OpType::kGet || op.type == OpType::kScan);
    if (planted) {
      if (member < 0) member = static_cast<int>(rng() % member_count);
      op.serializable = false;
    }
    if (op.type == OpType::kPut || op.type == OpType::kCas) op.value = absl::StrCat("c", c, "-", n);
    if (op.type == OpType::kCas) {
      const Seen& s = seen[op.key];
      op.cas_by_version = !s.found || rng() % 2 == 0;
      op.expected_version = s.found ? s.version : 0;
      op.expected_value = s.value;
    }
    const int64_t id = shared->recorder.Invoke(op);
    if (member >= 0 && etcd) {
      ReadOnMemberEtcd(ec->member(member), op.serializable || planted, member_timeout, &op);
    } else if (member >= 0) {
      ReadOnMember(members[member].get(), op.serializable || planted, member_timeout, &op);
    } else if (etcd) {
      ExecuteEtcd(ec.get(), timeout, &op);
    } else {
      Execute(cl.get(), &op);
    }
    shared->recorder.Complete(id, op);
    // CAS guesses come from this client's latest linearizable answers.
    if (op.outcome != Outcome::kOk || op.type == OpType::kScan || op.serializable || planted) {
      continue;
    }
    Seen& s = seen[op.key];
    if (op.type == OpType::kGet || (op.type == OpType::kCas && !op.succeeded)) {
      s = Seen{op.found, op.out_value, op.version};
    } else if (op.type == OpType::kPut || op.type == OpType::kCas) {
      s = Seen{true, op.value, op.version};
    } else {
      s = Seen{};
    }
  }
}

// cut-snapshot runs: the image is about kPadBytes and flows at most at
// kSnapshotRate, so a transfer lasts about a second.
constexpr int kPadKeys = 256;
constexpr size_t kPadValueBytes = 16 << 10;
constexpr int kSnapshotRate = 4000000;
// corrupt-block runs: 6 MB, more than a data memtable (4 MiB), so every
// node has flushed data SST files to damage.
constexpr int kCorruptPadKeys = 384;
// fill-disk runs: each founding node's tmpfs and reserve. The ballast
// leaves half the reserve free: room for what a node still writes while it
// refuses entries (a new WAL preallocates ~35 MiB).
constexpr uint64_t kFillDiskBytes = 320 << 20;
constexpr uint64_t kFillDiskReserve = 96 << 20;

bool Has(const RunOptions& o, FaultKind k) {
  return std::find(o.kinds.begin(), o.kinds.end(), k) != o.kinds.end();
}

// Filler keys "pad/fill-N" (never read by the clients or the checker).
absl::Status PadData(testing::Cluster* cluster, int keys) {
  std::atomic<int> next{0};
  absl::Mutex mu;
  absl::Status first;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      testing::TestClient c(cluster);
      const std::string value(kPadValueBytes, 'p');
      for (int i; (i = next.fetch_add(1)) < keys;) {
        absl::Status s = c.Put(absl::StrCat("pad/fill-", i), value).status();
        absl::MutexLock l(&mu);
        if (!s.ok() && first.ok()) first = s;
      }
    });
  }
  for (auto& t : threads) t.join();
  return first;
}

std::string ArtifactBase(const RunOptions& o) {
  if (!o.out_dir.empty()) return o.out_dir;
  if (const char* d = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR"); d != nullptr && *d) return d;
  return "/tmp/raftkv-jepsen";
}

std::string RunName(const RunOptions& o) {
  return absl::StrCat("jepsen-n", o.nodes, "-s", o.seed,
                      o.api == RunOptions::Api::kEtcd ? "-etcd" : "",
                      o.planted_stale_reads ? "-planted" : "",
                      o.netns ? "-netns" : "", o.tls_dir.empty() ? "" : "-tls", o.server_flags.empty() ? "" : "-flags");
}

double Secs(int64_t ns) { return static_cast<double>(ns) / 1e9; }

}  // namespace

std::string ReplayCommand(const RunOptions& o) {
  std::vector<std::string> kinds;
  for (FaultKind k : o.kinds) kinds.push_back(FaultKindName(k));
  std::string cmd = absl::StrCat(
      "tools/torture --nodes=", o.nodes, " --seed=", o.seed, " --runs=1 --run_seconds=",
      absl::ToInt64Seconds(o.length), " --clients=", o.clients, " --keys=", o.keys);
  if (o.kinds != DefaultFaultKinds()) {
    absl::StrAppend(&cmd, " --faults=", absl::StrJoin(kinds, ","));
  }
  if (o.api == RunOptions::Api::kEtcd) absl::StrAppend(&cmd, " --api=etcd");
  if (o.planted_stale_reads) absl::StrAppend(&cmd, " --planted_stale_reads");
  if (o.netns) absl::StrAppend(&cmd, " --netns");
  if (!o.tls_dir.empty()) absl::StrAppend(&cmd, " --tls");
  if (!o.server_flags.empty()) {
    absl::StrAppend(&cmd, " --server_flags='", absl::StrJoin(o.server_flags, " "), "'");
  }
  return cmd;
}

std::string RunResult::Summary() const {
  return absl::StrCat(status.ok() ? "PASS" : "FAIL", ": ", ops, " ops (", ok, " ok, ", unknown,
                      " unknown, ", failed, " failed), ", faults, " faults (", snapshot_cuts,
                      " snapshot transfers cut mid-way), ",
                      disk.fills == 0 ? ""
                                      : absl::StrCat("fill-disk ", disk.fills, " (NOSPACE raised ",
                                                     disk.nospace_raised, ", cleared ",
                                                     disk.nospace_cleared, ", exits 74 ",
                                                     disk.nospace_exits, "), "),
                      disk.corruptions == 0
                          ? ""
                          : absl::StrCat("corrupt-block ", disk.corruptions, " (CORRUPT raised ",
                                         disk.corrupt_alarms, ", exits 1 ", disk.corrupt_exits,
                                         ", replaced ", disk.corrupt_replaced, "; reads by it ",
                                         corrupt_served, " served before flagged, ",
                                         corrupt_refused, " refused), "),
                      "recovery ",
                      absl::FormatDuration(recovery), ", ", check.Summary(), ", in ",
                      absl::FormatDuration(elapsed));
}

RunResult RunOnce(const RunOptions& o) {
  RunResult result;
  const absl::Time began = absl::Now();
  const int64_t t0 = MonotonicNanos();
  auto say = [&o](const std::string& s) {
    if (o.progress) o.progress(s);
  };
  absl::Mutex log_mu;
  std::vector<std::string> fault_log;
  auto log = [&](const std::string& line) {
    const int64_t now = MonotonicNanos();
    absl::MutexLock l(&log_mu);
    fault_log.push_back(absl::StrCat("t=", absl::SixDigits(Secs(now - t0)), "s mono=", now, " ", line));
  };
  auto fail = [&](const std::string& what) {
    log(absl::StrCat("CHECK FAILED: ", what));
    result.failures.push_back(what);
  };
  result.replay = ReplayCommand(o);

  testing::ClusterOptions co;
  co.size = o.nodes;
  co.tick_ms = 20;
  co.name = RunName(o);
  // Spare nodes for `replace` faults (each replaces one member, once).
  if (std::find(o.kinds.begin(), o.kinds.end(), FaultKind::kReplace) != o.kinds.end()) {
    co.spares = 2;
  }
  // And for corrupt members (each is replaced by one).
  if (Has(o, FaultKind::kCorruptBlock)) co.spares += 2;
  // Small snapshot thresholds, so restarted nodes also catch up by snapshot.
  co.extra_flags = {"--enable_fault_injection", "--snapshot_entries=2000",
                    "--snapshot_keep_entries=200"};
  if (Has(o, FaultKind::kCutSnapshot)) {
    // Compaction soon after a follower is cut off; a slow transfer (later
    // flags win).
    co.extra_flags.insert(co.extra_flags.end(),
                          {"--snapshot_entries=500", "--snapshot_keep_entries=100",
                           "--snapshot_chunk_bytes=65536",
                           absl::StrCat("--snapshot_max_bytes_per_sec=", kSnapshotRate)});
  }
  if (Has(o, FaultKind::kFillDisk)) {
    co.extra_flags.push_back(absl::StrCat("--min_free_bytes=", kFillDiskReserve));
  }
  // TLS: the nodes' flags, and credentials for every client of the run.
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!o.tls_dir.empty()) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> c =
        o.netns ? absl::InvalidArgumentError("TLS runs cannot use netns: the certificates "
                                             "name 127.0.0.1 only")
                : client::ChannelCredentialsFor(ClientTls(o));
    if (!c.ok()) {
      result.status = c.status();
      result.failures.push_back(absl::StrCat("tls: ", c.status().ToString()));
      return result;
    }
    credentials = *c;
    co.credentials = credentials;
    const std::vector<std::string> tls = TlsServerFlags(o.tls_dir);
    co.extra_flags.insert(co.extra_flags.end(), tls.begin(), tls.end());
  }
  co.extra_flags.insert(co.extra_flags.end(), o.server_flags.begin(), o.server_flags.end());
  // Declared before the cluster: the namespaces outlive the nodes in them.
  std::unique_ptr<NetnsNodes> net;
  if (o.netns) {
    auto n = NetnsNodes::Create(o.nodes + co.spares);
    if (!n.ok()) {
      result.status = n.status();
      result.failures.push_back(absl::StrCat("netns: ", n.status().ToString()));
      return result;
    }
    net = std::move(*n);
    NetnsNodes* nodes = net.get();
    co.network = [nodes](int id) {
      return testing::ClusterOptions::NodeNetwork{nodes->host(id), nodes->netns_path(id)};
    };
  }
  auto cluster = std::make_unique<testing::Cluster>(co);
  Nemesis nemesis(cluster.get(), log, net.get());
  // fill-disk: a tmpfs per founding node, unmounted after the nodes stop.
  std::map<int, std::unique_ptr<NodeDisk>> disks;
  if (Has(o, FaultKind::kFillDisk)) {
    std::map<int, NodeDisk*> targets;
    absl::Status ready = MountNamespaceReady();
    for (int id = 1; ready.ok() && id <= o.nodes; ++id) {
      const std::string cluster_dir =
          std::filesystem::path(cluster->data_dir(id)).parent_path().string();
      auto d = NodeDisk::Mount(absl::StrCat(cluster_dir, "/disk-n", id), cluster->data_dir(id),
                               kFillDiskBytes);
      if (!d.ok()) {
        ready = d.status();
        break;
      }
      targets[id] = d->get();
      disks[id] = std::move(*d);
    }
    if (!ready.ok()) {
      result.status = ready;
      result.failures.push_back(absl::StrCat("fill-disk cannot run: ", ready.ToString()));
      cluster.reset();
      disks.clear();
      return result;
    }
    nemesis.SetDisks(std::move(targets), kFillDiskReserve);
  }
  Shared shared;
  std::vector<std::thread> clients;

  const std::vector<Fault> schedule = MakeSchedule(o.seed, o.nodes, o.length, o.kinds);
  log(absl::StrCat("run ", RunName(o), ": ", schedule.size(), " faults scheduled; replay: ",
                   result.replay));
  for (size_t i = 0; i < schedule.size(); ++i) {
    log(absl::StrCat("schedule ", i, ": ", FormatFault(schedule[i])));
  }

  absl::Status s = cluster->StartAll();
  absl::StatusOr<int> leader = s.ok() ? cluster->WaitForLeader(absl::Seconds(20)) : s;
  if (leader.ok()) s = nemesis.Heal(absl::Seconds(20));  // learns every pid
  if (leader.ok() && s.ok() &&
      (Has(o, FaultKind::kCutSnapshot) || Has(o, FaultKind::kCorruptBlock))) {
    const int keys = Has(o, FaultKind::kCorruptBlock) ? kCorruptPadKeys : kPadKeys;
    s = PadData(cluster.get(), keys);
    log(absl::StrCat("padded with ", keys, " keys of ", kPadValueBytes, " bytes: ",
                     s.ToString()));
  }
  if (!leader.ok() || !s.ok()) {
    fail(absl::StrCat("cluster did not start: ", (leader.ok() ? s : leader.status()).ToString()));
  } else {
    for (int c = 0; c < o.clients; ++c) {
      clients.emplace_back(ClientLoop, std::cref(o), cluster->addresses(), credentials, c,
                           &shared);
    }
    const absl::Time end = absl::Now() + o.length;
    for (size_t i = 0; i < schedule.size() && absl::Now() < end; ++i) {
      const Fault& f = schedule[i];
      absl::SleepFor(f.wait);
      std::string what = nemesis.Apply(f);
      absl::Duration hold = f.hold;
      if (schedule[i].with_next && i + 1 < schedule.size()) {
        ++i;
        absl::StrAppend(&what, " + ", nemesis.Apply(schedule[i]));
        hold = std::max(hold, schedule[i].hold);
      }
      nemesis.Hold(hold);
      if (absl::Status h = nemesis.Heal(); !h.ok()) {
        fail(h.ToString());
        break;
      }
      log("healed");
      say(absl::StrCat("  t=", absl::SixDigits(absl::ToDoubleSeconds(absl::Now() - began)),
                       "s fault ", nemesis.faults(), ": ", what, "; ops so far ", shared.recorder.size()));
    }
  }
  const absl::Time healed = absl::Now();
  shared.stop.store(true);
  for (auto& t : clients) t.join();
  log("clients stopped");

  if (result.failures.empty()) {
    // (4) serving again within the bound: a write and a read.
    absl::Status ps;
    if (o.api == RunOptions::Api::kEtcd) {
      // Through etcd's API: retried on the next member until the bound.
      EtcdClient probe(cluster->addresses(), credentials);
      const absl::Time until = healed + o.recovery_bound;
      do {
        ps = probe.Put("jepsen-probe", "x", absl::Seconds(1)).status();
      } while (EtcdClient::NoAnswer(ps) && absl::Now() < until);
      if (ps.ok()) {
        ps = probe.RangeRetrying(KeyRange("jepsen-probe", false), absl::Seconds(1),
                                 std::max(until - absl::Now(), absl::Milliseconds(1)))
                 .status();
      }
    } else {
      auto probe = MakeClient(o, cluster->addresses(), o.recovery_bound);
      ps = probe->Put("jepsen-probe", "x").status();
      if (ps.ok()) ps = probe->Get("jepsen-probe").status();
    }
    result.recovery = absl::Now() - healed;
    if (!ps.ok() || result.recovery > o.recovery_bound) {
      fail(absl::StrCat("not serving ", absl::FormatDuration(o.recovery_bound),
                        " after healing: ", ps.ToString()));
    }
    log(absl::StrCat("serving again after ", absl::FormatDuration(result.recovery)));
    // (2) a final linearizable read of every key, part of the history.
    std::unique_ptr<client::Client> reader;
    std::unique_ptr<EtcdClient> etcd_reader;
    if (o.api == RunOptions::Api::kEtcd) {
      etcd_reader = std::make_unique<EtcdClient>(cluster->addresses(), credentials);
    } else {
      reader = MakeClient(o, cluster->addresses(), absl::Seconds(20));
    }
    for (int k = 0; k < o.keys && result.failures.empty(); ++k) {
      Op op;
      op.client = o.clients;
      op.type = OpType::kGet;
      op.key = absl::StrCat("k", k);
      const int64_t id = shared.recorder.Invoke(op);
      if (etcd_reader != nullptr) {
        ExecuteEtcd(etcd_reader.get(), absl::Seconds(20), &op);
      } else {
        Execute(reader.get(), &op);
      }
      shared.recorder.Complete(id, op);
      if (op.outcome != Outcome::kOk) fail(absl::StrCat("final read of ", op.key, ": ", op.error));
    }
    // (3) identical replicas.
    auto conv = cluster->WaitForConvergence(absl::Seconds(30));
    if (!conv.ok()) fail(absl::StrCat("replicas differ: ", conv.status().ToString()));
    else log(absl::StrCat("converged at index ", conv->applied_index(), ", digest ", conv->data_digest()));
  }

  // (1) linearizability of the whole history.
  const std::vector<Op> history = shared.recorder.Snapshot();
  for (const Op& op : history) {
    if (absl::StartsWith(op.error, kMalformed)) fail(DescribeOp(op));
    ++result.ops;
    if (op.outcome == Outcome::kOk) ++result.ok;
    if (op.outcome == Outcome::kUnknown) ++result.unknown;
    if (op.outcome == Outcome::kFailed) ++result.failed;
    if (op.outcome == Outcome::kOk && op.member != 0) ++result.member_reads;
  }
  result.faults = nemesis.faults();
  result.snapshot_cuts = nemesis.snapshot_cuts();
  // (5) the disk faults did what they must, and a flagged member served
  // no read invoked after it was seen flagged.
  result.disk = nemesis.disk_stats();
  for (const std::string& v : nemesis.disk_violations()) fail(v);
  for (const auto& [node, damaged] : result.disk.damaged_ns) {
    auto flagged = result.disk.flagged_ns.find(node);
    const int64_t since =
        flagged == result.disk.flagged_ns.end() ? INT64_MAX : flagged->second;
    for (const Op& op : history) {
      if (op.invoke_ns < damaged) continue;
      if (op.outcome == Outcome::kOk && op.member == static_cast<uint64_t>(node)) {
        if (op.invoke_ns > since) {
          fail(absl::StrCat("corrupt node ", node, " served a read after it was flagged: ",
                            DescribeOp(op)));
        } else {
          ++result.corrupt_served;
        }
      }
      if (op.outcome != Outcome::kOk && absl::StrContains(op.error, "DATA_LOSS") &&
          absl::StrContains(op.error, absl::StrCat("node ", node))) {
        ++result.corrupt_refused;
      }
    }
  }
  result.check = CheckHistory(history);
  result.linearizable = result.check.ok();
  if (!result.check.ok()) fail(result.check.Report());
  log(result.check.Summary());

  result.elapsed = absl::Now() - began;
  result.status = result.failures.empty() ? absl::OkStatus()
                                          : absl::InternalError(result.failures.front());
  const std::string cluster_dir =
      std::filesystem::path(cluster->data_dir(1)).parent_path().string();
  if (!result.failures.empty() || o.keep_artifacts) {
    const std::string dir = absl::StrCat(ArtifactBase(o), "/", RunName(o));
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::filesystem::create_directories(dir, ec);
    std::ofstream(dir + "/history.txt") << FormatHistory(history);
    {
      absl::MutexLock l(&log_mu);
      std::ofstream(dir + "/faults.txt") << absl::StrJoin(fault_log, "\n") << "\n";
    }
    std::ofstream(dir + "/report.txt")
        << result.Summary() << "\n\n" << absl::StrJoin(result.failures, "\n\n") << "\n\nreplay: "
        << result.replay << "\n";
    for (int id = 1; id <= o.nodes + co.spares; ++id) {
      std::filesystem::copy_file(cluster->log_path(id), absl::StrCat(dir, "/n", id, ".log"),
                                 std::filesystem::copy_options::overwrite_existing, ec);
    }
    result.artifacts = dir;
  }
  cluster.reset();  // kills the nodes
  disks.clear();    // then unmounts their disks
  if (result.failures.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(cluster_dir, ec);
  }
  return result;
}

}  // namespace raftkv::jepsen
