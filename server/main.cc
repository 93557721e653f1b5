// raftkv server: one node of a cluster.
//
//   bazel run //server -- --id=1 \
//       --cluster=1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
//       --data_dir=data/n1
//
// One gRPC port per node (its address in --cluster) serves clients (KV,
// Admin), peers (Peer), gRPC health checking and server reflection.
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/cluster_spec.h"
#include "server/kv_service.h"
#include "server/node.h"
#include "server/state_machine.h"
#include "server/transport.h"
#include "storage/log_store.h"

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
DEFINE_string(listen, "",
              "Address to bind, if not this node's address from --cluster (e.g. "
              "0.0.0.0:7001).");
DEFINE_int32(tick_ms, 100, "Length of one Raft tick in milliseconds.");
DEFINE_int32(election_ticks, 10,
             "Ticks without a leader before a follower campaigns (randomized up to 2x).");
DEFINE_int32(heartbeat_ticks, 1, "Ticks between leader heartbeats.");
DEFINE_uint64(max_value_bytes, 1 << 20, "Largest value accepted, in bytes.");
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
DEFINE_int32(default_deadline_ms, 10000,
             "Deadline for a request that carries none, in milliseconds.");

namespace {

absl::Notification* g_stop = nullptr;

void OnSignal(int) {
  if (g_stop != nullptr && !g_stop->HasBeenNotified()) g_stop->Notify();
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

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "raftkv server: one node of a replicated key-value store.\n"
      "  server --id=1 --cluster=1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 "
      "--data_dir=data/n1");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = false;
  FLAGS_alsologtostderr = true;
  google::InitGoogleLogging(argv[0]);

  using namespace raftkv;
  if (FLAGS_id == 0) Die("--id is required (a node id from --cluster)");
  if (FLAGS_data_dir.empty()) Die("--data_dir is required");
  auto spec = server::ParseClusterSpec(FLAGS_cluster);
  if (!spec.ok()) Die(absl::StrCat("--cluster: ", spec.status().message()));
  if (!spec->count(FLAGS_id)) {
    Die(absl::StrCat("--id=", FLAGS_id, " is not in --cluster=", FLAGS_cluster));
  }
  const std::string address = spec->at(FLAGS_id);
  const uint64_t cluster_id = server::ClusterIdOf(*spec);
  const std::string dir = ResolveDir(FLAGS_data_dir);

  storagepb::NodeIdentity identity;
  identity.set_cluster_id(cluster_id);
  identity.set_node_id(FLAGS_id);
  storage::Options so;
  so.dir = dir;
  auto opened = storage::LogStore::Open(so);
  if (!opened.ok()) Die(std::string(opened.status().message()));
  std::unique_ptr<storage::LogStore> store = std::move(*opened);
  if (auto have = store->identity(); have.has_value()) {
    if (have->node_id() != FLAGS_id || have->cluster_id() != cluster_id) {
      Die(absl::StrCat("data dir ", dir, " belongs to node ", have->node_id(), " of cluster ",
                       have->cluster_id(), ", but this is node ", FLAGS_id, " of cluster ",
                       cluster_id, " (from --id and --cluster). Use the node's own data dir, "
                       "or the --cluster it was founded with."));
    }
    LOG(INFO) << "recovering node " << FLAGS_id << " of cluster " << cluster_id << " from "
              << dir;
  } else {
    raftpb::ConfState conf;
    for (const auto& [id, addr] : *spec) conf.add_voters(id);
    if (absl::Status s = store->Bootstrap(identity, conf); !s.ok()) Die(std::string(s.message()));
    LOG(INFO) << "bootstrapped node " << FLAGS_id << " of cluster " << cluster_id
              << " (" << server::FormatClusterSpec(*spec) << ") in " << dir;
  }

  auto sm = server::KvStateMachine::Open(store.get());
  if (!sm.ok()) Die(absl::StrCat("state machine: ", sm.status().message()));

  server::Node* node_ptr = nullptr;
  server::TransportOptions to;
  to.self_id = FLAGS_id;
  to.cluster_id = cluster_id;
  // Shut down before the node (below): their threads call into it.
  auto transport = std::make_unique<server::PeerTransport>(to, [&node_ptr](uint64_t peer) {
    if (node_ptr != nullptr) node_ptr->ReportUnreachable(peer);
  });
  for (const auto& [id, addr] : *spec) transport->SetPeer(id, addr);

  server::SnapshotOptions snap_opts;
  snap_opts.cluster_id = cluster_id;
  snap_opts.chunk_bytes = FLAGS_snapshot_chunk_bytes;
  snap_opts.max_bytes_per_sec = FLAGS_snapshot_max_bytes_per_sec;
  snap_opts.max_concurrent = FLAGS_max_concurrent_snapshots;
  if (absl::Status s = snap_opts.Validate(); !s.ok()) Die(std::string(s.message()));
  auto snapshot_sender =
      std::make_unique<server::SnapshotSender>(snap_opts, [&node_ptr](uint64_t peer, bool ok) {
        if (node_ptr != nullptr) node_ptr->ReportSnapshot(peer, ok);
      });
  server::SnapshotReceiver snapshot_receiver(store.get());

  server::NodeOptions no;
  no.id = FLAGS_id;
  no.snapshot_entries = FLAGS_snapshot_entries;
  no.snapshot_keep_entries = FLAGS_snapshot_keep_entries;
  no.tick = absl::Milliseconds(FLAGS_tick_ms);
  no.election_ticks = FLAGS_election_ticks;
  no.heartbeat_ticks = FLAGS_heartbeat_ticks;
  no.lease_reads = FLAGS_lease_reads;
  server::PeerTransport* transport_ptr = transport.get();
  auto address_of = [transport_ptr, &spec](uint64_t id) {
    std::string a = transport_ptr->AddressOf(id);
    if (a.empty() && spec->count(id)) a = spec->at(id);
    return a;
  };
  server::SnapshotHooks hooks;
  hooks.sender = snapshot_sender.get();
  hooks.receiver = &snapshot_receiver;
  hooks.address_of = address_of;
  auto node = server::Node::Create(no, store.get(), sm->get(), transport.get(), hooks);
  if (!node.ok()) Die(absl::StrCat("raft: ", node.status().message()));
  node_ptr = node->get();

  server::ServiceOptions svc;
  svc.node_id = FLAGS_id;
  svc.cluster_id = cluster_id;
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
  server::KvService kv(svc, node->get(), sm->get());
  server::AdminService admin(svc, node->get(), sm->get(), store.get());
  server::PeerService peer(
      FLAGS_id, cluster_id, [&node_ptr](raftpb::Message m) { node_ptr->Receive(std::move(m)); },
      &snapshot_receiver);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string listen = FLAGS_listen.empty() ? address : FLAGS_listen;
  int bound_port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &bound_port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.RegisterService(&kv);
  builder.RegisterService(&admin);
  builder.RegisterService(&peer);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound_port == 0) Die(absl::StrCat("cannot listen on ", listen));

  (*node)->Start();
  LOG(INFO) << "node " << FLAGS_id << " serving on " << listen << " (data " << dir << ")";

  absl::Notification stop;
  g_stop = &stop;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  stop.WaitForNotification();
  LOG(INFO) << "shutting down";
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  snapshot_sender.reset();  // joins transfers; they report into the node
  (*node)->Stop();
  transport.reset();  // no more callbacks into the node after this
  return 0;
}
