#include "server/etcd/maintenance_service.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "glog/logging.h"
#include "grpcpp/impl/codegen/method_handler.h"
#include "mvcc/store.h"
#include "raft/membership.h"
#include "server/backup_source.h"
#include "server/etcd/errors.h"
#include "server/raw_message.h"
#include "server/raw_unary.h"

namespace raftkv::server::etcd {
namespace {

const google::protobuf::MethodDescriptor* Method(const char* name) {
  const google::protobuf::MethodDescriptor* m = etcdserverpb::StatusRequest::descriptor()
                                                    ->file()
                                                    ->FindServiceByName("Maintenance")
                                                    ->FindMethodByName(name);
  CHECK(m != nullptr) << "no method Maintenance." << name;
  return m;
}

// FNV-1a over length-prefixed parts, folded to etcd's 32 bits.
class Hasher {
 public:
  void Add(absl::string_view bytes) {
    uint64_t n = bytes.size();
    for (int i = 0; i < 8; ++i, n >>= 8) Mix(static_cast<unsigned char>(n));
    for (unsigned char c : bytes) Mix(c);
  }
  uint32_t Sum32() const { return static_cast<uint32_t>(h_ ^ (h_ >> 32)); }

 private:
  void Mix(unsigned char c) {
    h_ ^= c;
    h_ *= 1099511628211ull;
  }
  uint64_t h_ = 14695981039346656037ull;
};

etcdserverpb::AlarmType ToEtcd(AlarmType t) {
  return t == AlarmType::kNoSpace ? etcdserverpb::NOSPACE : etcdserverpb::CORRUPT;
}

}  // namespace

absl::Status MaintenanceOptions::Validate() const {
  if (absl::Status s = quota.Validate(); !s.ok()) return s;
  BackupSourceOptions bo;
  bo.bytes_per_sec = snapshot_bytes_per_sec;
  bo.chunk_bytes = snapshot_chunk_bytes;
  return bo.Validate();
}

template <typename Req, typename Resp>
void MaintenanceService::MarkRaw(const char* method,
                                 grpc::Status (MaintenanceService::*handler)(grpc::ServerContext*,
                                                                             const Req*, Resp*)) {
  MarkMethodStreamed(Method(method)->index(),
                     RawUnaryHandler<Req, Resp>(
                         [this, handler](grpc::ServerContext* c, const Req& req, Resp* resp) {
                           return (this->*handler)(c, &req, resp);
                         }));
}

MaintenanceService::MaintenanceService(EtcdContext ctx, MaintenanceOptions options)
    : ctx_(std::move(ctx)),
      options_(std::move(options)),
      quota_(
          options_.quota, [sm = ctx_.sm] { return sm->store()->DataSizes().total(); },
          [sm = ctx_.sm, id = ctx_.member_id] {
            for (const auto& a : sm->etcd_alarms().List(etcdserverpb::NOSPACE)) {
              if (a.memberid() == id) return true;
            }
            return false;
          },
          [this] {
            etcdserverpb::AlarmRequest req;
            req.set_action(etcdserverpb::AlarmRequest::ACTIVATE);
            req.set_memberid(ctx_.member_id);
            req.set_alarm(etcdserverpb::NOSPACE);
            // Not waited for: the quota sees it applied through the store.
            ctx_.propose(AlarmStore::Command(req), absl::Now() + ctx_.default_deadline,
                         [](absl::StatusOr<kvpb::WriteResult> r) {
                           LOG_IF(WARNING, !r.ok()) << "raising NOSPACE: " << r.status();
                         });
          }) {
  MarkRaw("Alarm", &MaintenanceService::Alarm);
  MarkRaw("Status", &MaintenanceService::Status);
  MarkRaw("Defragment", &MaintenanceService::Defragment);
  MarkRaw("Hash", &MaintenanceService::Hash);
  MarkRaw("HashKV", &MaintenanceService::HashKV);
  MarkRaw("MoveLeader", &MaintenanceService::MoveLeader);
  MarkRawSnapshot();
  quota_.Start();
}

MaintenanceService::~MaintenanceService() { quota_.Stop(); }

absl::Status MaintenanceService::CheckRead(const absl::Status& s) const {
  return ctx_.corruption != nullptr ? ctx_.corruption->Check(s) : s;
}

absl::StatusOr<etcdserverpb::AlarmResponse> MaintenanceService::ProposeAlarm(
    const etcdserverpb::AlarmRequest& req, absl::Time deadline) {
  struct State {
    absl::Notification done;
    absl::StatusOr<kvpb::WriteResult> result = absl::UnknownError("no answer");
  };
  auto state = std::make_shared<State>();
  ctx_.propose(AlarmStore::Command(req), deadline, [state](absl::StatusOr<kvpb::WriteResult> r) {
    state->result = std::move(r);
    state->done.Notify();
  });
  // The node fails its callbacks at their deadline (checked every tick).
  if (!state->done.WaitForNotificationWithDeadline(deadline + absl::Seconds(2))) {
    return EtcdError(Error::kTimeout);
  }
  if (!state->result.ok()) return FromNode(state->result.status());
  return state->result->etcd().alarm();
}

grpc::Status MaintenanceService::Alarm(grpc::ServerContext* ctx,
                                       const etcdserverpb::AlarmRequest* req,
                                       etcdserverpb::AlarmResponse* resp) {
  const etcdserverpb::AlarmType type = req->alarm();
  // etcd 3.4 lets any user raise or clear alarms; raftkv keeps that to root.
  if (req->action() != etcdserverpb::AlarmRequest::GET) {
    if (absl::Status s = CheckAdmin(ctx_, *ctx); !s.ok()) return ToGrpc(s);
  }
  switch (req->action()) {
    case etcdserverpb::AlarmRequest::GET: {
      // The replicated alarms (as of this member's applied index) and this
      // member's own, which only it knows (server/alarms.h).
      std::vector<etcdserverpb::AlarmMember> all = ctx_.sm->etcd_alarms().List(type);
      if (ctx_.alarms != nullptr) {
        for (const server::Alarm& a : ctx_.alarms->List()) {
          const etcdserverpb::AlarmType t = ToEtcd(a.type);
          if (type != etcdserverpb::NONE && t != type) continue;
          const bool listed = std::any_of(all.begin(), all.end(), [&](const auto& m) {
            return m.memberid() == ctx_.member_id && m.alarm() == t;
          });
          if (listed) continue;
          etcdserverpb::AlarmMember m;
          m.set_memberid(ctx_.member_id);
          m.set_alarm(t);
          all.push_back(std::move(m));
        }
      }
      for (auto& m : all) *resp->add_alarms() = std::move(m);
      break;
    }
    case etcdserverpb::AlarmRequest::ACTIVATE: {
      if (type != etcdserverpb::NOSPACE || req->memberid() == 0) {
        return ToGrpc(absl::InvalidArgumentError(
            "raftkv: only NOSPACE of a member (memberID set) can be raised through the API; "
            "CORRUPT is raised by the member that finds corrupt data (docs/INTEGRITY.md)"));
      }
      auto r = ProposeAlarm(*req, DeadlineOf(ctx_, ctx->deadline()));
      if (!r.ok()) return ToGrpc(r.status());
      *resp = *std::move(r);
      break;
    }
    case etcdserverpb::AlarmRequest::DEACTIVATE: {
      const std::vector<etcdserverpb::AlarmMember> active = ctx_.sm->etcd_alarms().List(type);
      const bool replicated = std::any_of(active.begin(), active.end(), [&](const auto& m) {
        return m.memberid() == req->memberid();
      });
      if (type == etcdserverpb::CORRUPT && !replicated && req->memberid() == ctx_.member_id &&
          ctx_.alarms != nullptr && ctx_.alarms->Active(AlarmType::kCorrupt)) {
        return ToGrpc(absl::FailedPreconditionError(absl::StrCat(
            "raftkv: member ", ctx_.member_id,
            " found its own data corrupt; it clears CORRUPT only when restarted with "
            "--clear_corrupt_alarm, once an operator chose to keep its data (docs/INTEGRITY.md)")));
      }
      // etcd answers nothing for an alarm that is not active (NONE, member 0).
      if (req->memberid() == 0 || (type != etcdserverpb::NOSPACE && type != etcdserverpb::CORRUPT)) {
        break;
      }
      auto r = ProposeAlarm(*req, DeadlineOf(ctx_, ctx->deadline()));
      if (!r.ok()) return ToGrpc(r.status());
      *resp = *std::move(r);
      break;
    }
    default:
      return ToGrpc(absl::InvalidArgumentError("unknown alarm action"));
  }
  FillHeader(ctx_, ctx_.sm->mvcc()->revision(), resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status MaintenanceService::Status(grpc::ServerContext* /*ctx*/,
                                        const etcdserverpb::StatusRequest* /*req*/,
                                        etcdserverpb::StatusResponse* resp) {
  // Fresh, not as of the last tick: a user compares the indexes of members.
  const raft::Status st = ctx_.node->FreshRaftStatus(absl::Milliseconds(200));
  FillHeader(ctx_, ctx_.sm->mvcc()->revision(), resp->mutable_header());
  resp->mutable_header()->set_raft_term(st.term);
  resp->set_version(kEtcdVersion);
  const storage::LogStore::DataSize size = ctx_.sm->store()->DataSizes();
  resp->set_dbsize(static_cast<int64_t>(size.total()));
  resp->set_dbsizeinuse(static_cast<int64_t>(std::min(size.live_bytes_estimate, size.total())));
  resp->set_leader(st.leader);
  resp->set_raftindex(st.commit);
  resp->set_raftterm(st.term);
  resp->set_raftappliedindex(st.applied);
  for (const auto& a : ctx_.sm->etcd_alarms().List()) {
    // etcd's words for a replicated alarm.
    resp->add_errors(absl::StrCat("memberID:", a.memberid(), " alarm:",
                                  etcdserverpb::AlarmType_Name(a.alarm()), " "));
  }
  if (ctx_.alarms != nullptr) {
    for (auto& d : ctx_.alarms->Describe()) {
      resp->add_errors(absl::StrCat("member ", ctx_.member_id, ": ", d));
    }
  }
  resp->set_islearner(raft::IsLearner(st.conf_state, ctx_.member_id));
  return grpc::Status::OK;
}

grpc::Status MaintenanceService::Defragment(grpc::ServerContext* ctx,
                                            const etcdserverpb::DefragmentRequest* /*req*/,
                                            etcdserverpb::DefragmentResponse* resp) {
  if (absl::Status s = CheckAdmin(ctx_, *ctx); !s.ok()) return ToGrpc(s);  // etcd: root
  // RocksDB has no file to rewrite as bbolt does; the closest is compacting
  // all of the data, which drops deleted and overwritten records. One at a
  // time; writes and background compactions go on.
  absl::MutexLock l(&defrag_mu_);
  const absl::Time start = absl::Now();
  const uint64_t before = ctx_.sm->store()->DataSizes().total();
  absl::Status s = ctx_.sm->store()->CompactData();
  if (!s.ok()) {
    LOG(WARNING) << "defragment from " << ctx->peer() << ": " << s;
    return ToGrpc(CheckRead(s));
  }
  LOG(INFO) << "defragment from " << ctx->peer() << ": data " << before << " -> "
            << ctx_.sm->store()->DataSizes().total() << " bytes in " << absl::Now() - start;
  FillHeader(ctx_, ctx_.sm->mvcc()->revision(), resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status MaintenanceService::Hash(grpc::ServerContext* ctx,
                                      const etcdserverpb::HashRequest* /*req*/,
                                      etcdserverpb::HashResponse* resp) {
  if (absl::Status s = CheckAdmin(ctx_, *ctx); !s.ok()) return ToGrpc(s);  // etcd: root
  auto view = ctx_.sm->store()->OpenDataSnapshot();
  if (!view.ok()) return ToGrpc(view.status());
  auto h = KvStateMachine::StateHash(**view);
  if (!h.ok()) return ToGrpc(CheckRead(h.status()));
  resp->set_hash(static_cast<uint32_t>(*h ^ (*h >> 32)));
  FillHeader(ctx_, mvcc::Store::ReadSnapshot(**view)->revision(), resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status MaintenanceService::HashKV(grpc::ServerContext* ctx,
                                        const etcdserverpb::HashKVRequest* req,
                                        etcdserverpb::HashKVResponse* resp) {
  if (absl::Status s = CheckAdmin(ctx_, *ctx); !s.ok()) return ToGrpc(s);  // etcd: root
  auto view = ctx_.sm->store()->OpenDataSnapshot();
  if (!view.ok()) return ToGrpc(view.status());
  std::unique_ptr<mvcc::View> keys = mvcc::Store::ReadSnapshot(**view);
  const int64_t current = keys->revision();
  const int64_t compacted = keys->compact_revision();
  // etcd's HashByRev checks.
  if (req->revision() > 0 && req->revision() <= compacted) {
    return ToGrpc(EtcdError(Error::kCompacted));
  }
  if (req->revision() > current) return ToGrpc(EtcdError(Error::kFutureRev));
  const int64_t rev = req->revision() > 0 ? req->revision() : current;
  // Every key's records up to `rev` that a read can reach: the same on
  // members with the same history, however far physical compaction got.
  Hasher h;
  mvcc::Store::HashFilter reachable(compacted);
  absl::Status s = (*view)->Scan("g", [&](absl::string_view k, absl::string_view v) {
    if (!k.empty() && k[0] > 'h') return false;  // past the history ('h' + ...)
    int64_t revision = 0;
    if (!mvcc::Store::IsHistoryKey(k, &revision) || !reachable.Include(k, v)) return true;
    if (revision > rev) return true;
    h.Add(k);
    h.Add(v);
    return true;
  });
  if (!s.ok()) return ToGrpc(CheckRead(s));
  resp->set_hash(h.Sum32());
  resp->set_compact_revision(compacted > 0 ? compacted : -1);  // etcd's "never compacted"
  resp->set_hash_revision(rev);
  FillHeader(ctx_, current, resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status MaintenanceService::MoveLeader(grpc::ServerContext* ctx,
                                            const etcdserverpb::MoveLeaderRequest* req,
                                            etcdserverpb::MoveLeaderResponse* resp) {
  // etcd 3.4 lets any user move the leader; raftkv keeps that to root.
  if (absl::Status s = CheckAdmin(ctx_, *ctx); !s.ok()) return ToGrpc(s);
  if (!ctx_.node->is_leader()) return ToGrpc(EtcdError(Error::kNotLeader));
  const uint64_t target = req->targetid();
  if (!raft::IsVoter(ctx_.sm->Membership().second, target)) {
    return ToGrpc(EtcdError(Error::kBadLeaderTransferee));
  }
  if (target != ctx_.member_id) {
    const absl::Time deadline = DeadlineOf(ctx_, ctx->deadline());
    struct State {
      absl::Notification done;
      absl::StatusOr<uint64_t> leader = absl::UnknownError("no answer");
    };
    auto state = std::make_shared<State>();
    ctx_.node->TransferLeadership(target, deadline, [state](absl::StatusOr<uint64_t> r) {
      state->leader = std::move(r);
      state->done.Notify();
    });
    if (!state->done.WaitForNotificationWithDeadline(deadline + absl::Seconds(2))) {
      return ToGrpc(EtcdError(Error::kTimeout));
    }
    if (!state->leader.ok()) return ToGrpc(FromNode(state->leader.status()));
  }
  FillHeader(ctx_, ctx_.sm->mvcc()->revision(), resp->mutable_header());
  return grpc::Status::OK;
}

void MaintenanceService::MarkRawSnapshot() {
  using Streamer = grpc::ServerSplitStreamer<grpc::ByteBuffer, grpc::ByteBuffer>;
  MarkMethodStreamed(
      Method("Snapshot")->index(),
      new grpc::internal::SplitServerStreamingHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
          [this](grpc::ServerContext* ctx, Streamer* stream) {
            grpc::ByteBuffer in;
            etcdserverpb::SnapshotRequest req;
            absl::Status parsed = stream->Read(&in)
                                      ? ParseRequest(in, &req)
                                      : absl::InvalidArgumentError("request has no body");
            if (!parsed.ok()) return ToGrpc(parsed);
            if (absl::Status s = CheckAdmin(ctx_, *ctx); !s.ok()) return ToGrpc(s);  // etcd: root
            BackupSourceOptions bo;
            bo.cluster_id = ctx_.cluster_id;
            bo.member_id = ctx_.member_id;
            bo.bytes_per_sec = options_.snapshot_bytes_per_sec;
            bo.chunk_bytes = options_.snapshot_chunk_bytes;
            bo.etcd_size = true;
            // remaining_bytes: an estimate (the data's live bytes less those
            // sent), at least 1 until the last chunk, which says 0; so each
            // chunk is held until the next one comes.
            const uint64_t estimate = ctx_.sm->store()->DataSizes().live_bytes_estimate;
            const int64_t revision = ctx_.sm->mvcc()->revision();
            std::string held;
            uint64_t sent = 0;
            bool have = false;
            auto send = [&](std::string blob, uint64_t remaining) {
              if (ctx->IsCancelled()) return false;
              etcdserverpb::SnapshotResponse chunk;
              FillHeader(ctx_, revision, chunk.mutable_header());
              chunk.set_remaining_bytes(remaining);
              sent += blob.size();
              *chunk.mutable_blob() = std::move(blob);
              grpc::ByteBuffer out;
              return SerializeResponse(chunk, &out).ok() && stream->Write(out);
            };
            const absl::Time start = absl::Now();
            auto summary = StreamBackup(*ctx_.sm, bo, [&](std::string bytes) {
              bool ok = true;
              if (have) {
                const uint64_t after = sent + held.size();
                ok = send(std::move(held), std::max<uint64_t>(estimate > after ? estimate - after : 0,
                                                              bytes.size()));
              }
              held = std::move(bytes);
              have = true;
              return ok;
            });
            if (summary.ok() && have && !send(std::move(held), 0)) {
              summary = absl::CancelledError("the snapshot's receiver went away");
            }
            if (!summary.ok()) {
              LOG(WARNING) << "etcd snapshot to " << ctx->peer() << ": " << summary.status();
              return ToGrpc(CheckRead(summary.status()));
            }
            LOG(INFO) << "etcd snapshot to " << ctx->peer() << " at index "
                      << summary->applied_index << ": " << summary->keys << " keys, "
                      << summary->bytes << " bytes in " << absl::Now() - start;
            return grpc::Status::OK;
          }));
}

}  // namespace raftkv::server::etcd
