#include "server/etcd/alarm_store.h"

#include "absl/strings/str_cat.h"
#include "server/etcd/errors.h"

namespace raftkv::server::etcd {
namespace {

constexpr char kPrefix = 'a';

std::string Key(uint64_t member, int type) {
  std::string k(10, kPrefix);
  for (int i = 0; i < 8; ++i) k[1 + i] = static_cast<char>(member >> (56 - 8 * i));
  k[9] = static_cast<char>(type);
  return k;
}

bool KnownType(int type) { return type == etcdserverpb::NOSPACE || type == etcdserverpb::CORRUPT; }

// etcd's isTxnReadonly, applied to nested txns too.
bool ReadOnly(const etcdserverpb::TxnRequest& t) {
  for (const auto* ops : {&t.success(), &t.failure()}) {
    for (const etcdserverpb::RequestOp& op : *ops) {
      if (op.request_case() != etcdserverpb::RequestOp::kRequestRange) return false;
    }
  }
  return true;
}

}  // namespace

bool AlarmStore::IsAlarmKey(absl::string_view data_key) {
  return data_key.size() == 10 && data_key[0] == kPrefix;
}

std::string AlarmStore::Command(const etcdserverpb::AlarmRequest& req) {
  kvpb::Command cmd;
  *cmd.mutable_alarm() = req;
  return cmd.SerializeAsString();
}

absl::Status AlarmStore::Load(const storage::LogStore& store) {
  std::set<std::pair<uint64_t, int>> active;
  absl::Status bad;
  absl::Status s = store.ScanData(std::string(1, kPrefix), [&](absl::string_view k,
                                                              absl::string_view) {
    if (k.empty() || k[0] != kPrefix) return false;
    if (!IsAlarmKey(k) || !KnownType(static_cast<unsigned char>(k[9]))) {
      bad = absl::DataLossError(absl::StrCat("undecodable alarm record in ", store.dir()));
      return false;
    }
    uint64_t member = 0;
    for (int i = 1; i < 9; ++i) member = (member << 8) | static_cast<unsigned char>(k[i]);
    active.emplace(member, static_cast<unsigned char>(k[9]));
    return true;
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  absl::MutexLock l(&mu_);
  active_ = std::move(active);
  UpdateFlagsLocked();
  return absl::OkStatus();
}

absl::StatusOr<etcdserverpb::AlarmResponse> AlarmStore::Apply(
    const etcdserverpb::AlarmRequest& req, storage::DataBatch* batch) {
  if (req.memberid() == 0 || !KnownType(req.alarm())) {
    return absl::InvalidArgumentError(
        absl::StrCat("alarm ", etcdserverpb::AlarmType_Name(req.alarm()), " of member ",
                     req.memberid(), ": only NOSPACE and CORRUPT of a member are kept"));
  }
  etcdserverpb::AlarmResponse resp;
  const std::pair<uint64_t, int> a(req.memberid(), req.alarm());
  absl::MutexLock l(&mu_);
  switch (req.action()) {
    case etcdserverpb::AlarmRequest::ACTIVATE:
      if (active_.insert(a).second) batch->Put(Key(a.first, a.second), "");
      break;
    case etcdserverpb::AlarmRequest::DEACTIVATE:
      if (active_.erase(a) == 0) return resp;
      batch->Delete(Key(a.first, a.second));
      break;
    default:
      return absl::InvalidArgumentError("only ACTIVATE and DEACTIVATE go through the log");
  }
  UpdateFlagsLocked();
  etcdserverpb::AlarmMember* m = resp.add_alarms();
  m->set_memberid(a.first);
  m->set_alarm(req.alarm());
  return resp;
}

std::vector<etcdserverpb::AlarmMember> AlarmStore::List(etcdserverpb::AlarmType type) const {
  std::vector<etcdserverpb::AlarmMember> out;
  absl::MutexLock l(&mu_);
  for (const auto& [member, t] : active_) {
    if (type != etcdserverpb::NONE && t != type) continue;
    etcdserverpb::AlarmMember m;
    m.set_memberid(member);
    m.set_alarm(static_cast<etcdserverpb::AlarmType>(t));
    out.push_back(std::move(m));
  }
  return out;
}

absl::Status AlarmStore::AdmitWrite(const kvpb::EtcdWrite& w) const {
  if (!Active(etcdserverpb::NOSPACE)) return absl::OkStatus();
  switch (w.request_case()) {
    case kvpb::EtcdWrite::kPut:
      return EtcdError(Error::kNoSpace);
    case kvpb::EtcdWrite::kTxn:
      return ReadOnly(w.txn()) ? absl::OkStatus() : EtcdError(Error::kNoSpace);
    default:
      return absl::OkStatus();
  }
}

void AlarmStore::UpdateFlagsLocked() {
  bool nospace = false;
  for (const auto& a : active_) nospace = nospace || a.second == etcdserverpb::NOSPACE;
  nospace_.store(nospace, std::memory_order_release);
}

}  // namespace raftkv::server::etcd
