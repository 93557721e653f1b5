#include "server/state_machine.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "server/etcd/errors.h"
#include "server/etcd/kv_apply.h"

namespace raftkv::server {
namespace {

// Where an older raftkv kept its keys, without revisions.
constexpr char kFormat1KeyPrefix = 'k';
constexpr char kSessionPrefix = 's';
constexpr char kMemberPrefix = 'm';
constexpr char kIncarnationPrefix = 'i';
constexpr char kConfIndexKey[] = "c";

std::string IdKey(char prefix, uint64_t id) {
  std::string k(9, prefix);
  for (int i = 0; i < 8; ++i) k[1 + i] = static_cast<char>(id >> (56 - 8 * i));
  return k;
}
std::string MemberKey(uint64_t id) { return IdKey(kMemberPrefix, id); }
std::string IncarnationKey(uint64_t id) { return IdKey(kIncarnationPrefix, id); }

uint64_t DecodeId(absl::string_view k) {  // k: prefix + 8 bytes
  uint64_t id = 0;
  for (int i = 1; i < 9; ++i) id = (id << 8) | static_cast<unsigned char>(k[i]);
  return id;
}

std::string SessionKey(uint64_t client_id) {
  std::string k(9, kSessionPrefix);
  for (int i = 0; i < 8; ++i) k[1 + i] = static_cast<char>(client_id >> (56 - 8 * i));
  return k;
}

std::string EncodeValue(uint64_t version, const std::string& value) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(version >> (56 - 8 * i));
  out += value;
  return out;
}

bool DecodeValue(absl::string_view raw, std::string* value, uint64_t* version) {
  if (raw.size() < 8) return false;
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(raw[i]);
  *version = v;
  value->assign(raw.data() + 8, raw.size() - 8);
  return true;
}

bool DecodeValue(absl::string_view raw, uint64_t* version) {
  std::string rest;
  return DecodeValue(raw, &rest, version) && rest.empty();
}

absl::Status ValidateKey(const std::string& key) {
  if (key.empty()) return absl::InvalidArgumentError("empty key");
  if (key.size() > Limits::kMaxKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("key of ", key.size(), " bytes exceeds ", Limits::kMaxKeyBytes));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<KvStateMachine>> KvStateMachine::Open(
    storage::LogStore* store, const mvcc::StoreOptions& mvcc_options) {
  std::unique_ptr<KvStateMachine> sm(new KvStateMachine(store));
  bool format1 = false;
  absl::Status scan =
      store->ScanData(std::string(1, kFormat1KeyPrefix), [&](absl::string_view k, absl::string_view) {
        format1 = !k.empty() && k[0] == kFormat1KeyPrefix;
        return false;
      });
  if (!scan.ok()) return scan;
  if (format1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the data in ", store->dir(),
        " was written by an older raftkv (keys without revisions): start that version, take a "
        "backup with `kvctl snapshot save`, and restore it into a cluster of that version; this "
        "version does not read it"));
  }
  absl::StatusOr<std::unique_ptr<mvcc::Store>> keys = mvcc::Store::Open(store, mvcc_options);
  if (!keys.ok()) return keys.status();
  sm->mvcc_ = *std::move(keys);
  if (absl::Status s = sm->LoadOwnState(); !s.ok()) return s;  // the store loaded its own
  return sm;
}

absl::Status KvStateMachine::Reload() {
  if (absl::Status s = mvcc_->Reload(); !s.ok()) return s;
  return LoadOwnState();
}

absl::Status KvStateMachine::LoadOwnState() {
  if (absl::Status s = etcd_alarms_.Load(*store_); !s.ok()) return s;
  if (absl::Status s = etcd_auth_.Load(*store_); !s.ok()) return s;
  sessions_.clear();
  by_last_index_.clear();
  absl::Status parse = absl::OkStatus();
  absl::Status s = store_->ScanData(std::string(1, kSessionPrefix),
                                    [&](absl::string_view k, absl::string_view v) {
                                      if (k.empty() || k[0] != kSessionPrefix) return false;
                                      statepb::SessionRecord rec;
                                      if (!rec.ParseFromArray(v.data(), v.size())) {
                                        parse = absl::DataLossError(absl::StrCat(
                                            "undecodable session record in ", store_->dir()));
                                        return false;
                                      }
                                      by_last_index_.emplace(rec.last_index(), rec.client_id());
                                      sessions_[rec.client_id()] = std::move(rec);
                                      return true;
                                    });
  if (!s.ok()) return s;
  if (!parse.ok()) return parse;
  std::map<uint64_t, uint64_t> incarnations;
  s = store_->ScanData(std::string(1, kIncarnationPrefix),
                       [&](absl::string_view k, absl::string_view v) {
                         if (k.size() != 9 || k[0] != kIncarnationPrefix) return false;
                         uint64_t inc = 0;
                         if (!DecodeValue(v, &inc)) {
                           parse = absl::DataLossError("corrupt incarnation record");
                           return false;
                         }
                         incarnations[DecodeId(k)] = inc;
                         return true;
                       });
  if (!s.ok()) return s;
  if (!parse.ok()) return parse;
  uint64_t conf_index = 0;
  if (auto raw = store_->Get(kConfIndexKey); raw.ok()) {
    if (!DecodeValue(*raw, &conf_index)) return absl::DataLossError("corrupt membership index");
  } else if (!absl::IsNotFound(raw.status())) {
    return raw.status();
  }
  std::optional<raftpb::ConfState> conf = store_->applied_conf();
  if (!conf.has_value()) {
    auto snap = store_->GetSnapshot();
    if (!snap.ok()) return snap.status();
    conf = snap->metadata().conf_state();
  }
  absl::MutexLock l(&incarnations_mu_);
  incarnations_ = std::move(incarnations);
  conf_index_ = conf_index;
  conf_ = std::move(*conf);
  records_version_.fetch_add(1);
  return absl::OkStatus();
}

std::pair<uint64_t, raftpb::ConfState> KvStateMachine::Membership() const {
  absl::MutexLock l(&incarnations_mu_);
  return {conf_index_, conf_};
}

std::optional<uint64_t> KvStateMachine::Incarnation(uint64_t id) const {
  absl::MutexLock l(&incarnations_mu_);
  auto it = incarnations_.find(id);
  if (it == incarnations_.end()) return std::nullopt;
  return it->second;
}

std::map<uint64_t, uint64_t> KvStateMachine::Incarnations() const {
  absl::MutexLock l(&incarnations_mu_);
  return incarnations_;
}

std::string KvStateMachine::IncarnationCommand(uint64_t node_id, uint64_t incarnation,
                                               uint64_t conf_index) {
  kvpb::Command cmd;
  cmd.mutable_incarnation()->set_node_id(node_id);
  cmd.mutable_incarnation()->set_incarnation(incarnation);
  cmd.mutable_incarnation()->set_conf_index(conf_index);
  return cmd.SerializeAsString();
}

std::string KvStateMachine::HashCheckCommand() {
  kvpb::Command cmd;
  cmd.mutable_hash_check();
  return cmd.SerializeAsString();
}

absl::StatusOr<uint64_t> KvStateMachine::StateHash(const storage::DataSnapshot& view,
                                                   const std::atomic<bool>* cancel,
                                                   const std::function<bool(size_t)>& pace) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a, 64-bit
  auto mix = [&h](absl::string_view bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  auto mix_len = [&](absl::string_view bytes) {  // length-prefixed: no ambiguity
    mix(EncodeValue(bytes.size(), ""));  // 8 bytes, big-endian
    mix(bytes);
  };
  absl::StatusOr<int64_t> compact = mvcc::Store::CompactRevisionOf(view);
  if (!compact.ok()) return compact.status();
  mvcc::Store::HashFilter keep(*compact);
  bool cancelled = false;
  absl::Status s = view.Scan("", [&](absl::string_view k, absl::string_view v) {
    if (!keep.Include(k, v)) return true;
    mix_len(k);
    mix_len(v);
    cancelled = (cancel != nullptr && cancel->load(std::memory_order_relaxed)) ||
                (pace && !pace(k.size() + v.size()));
    return !cancelled;
  });
  if (!s.ok()) return s;
  if (cancelled) return absl::CancelledError("hash check cancelled");
  return h;
}

void KvStateMachine::RecordIncarnation(const kvpb::MemberIncarnation& r, uint64_t conf_index,
                                       Overlay* overlay) {
  if (r.node_id() == 0 || r.incarnation() == 0 || r.conf_index() != conf_index) return;
  absl::MutexLock l(&incarnations_mu_);
  if (incarnations_.count(r.node_id()) > 0) return;  // the first one stands
  overlay->batch.Put(IncarnationKey(r.node_id()), EncodeValue(r.incarnation(), ""));
  incarnations_[r.node_id()] = r.incarnation();
  records_version_.fetch_add(1);
}

bool KvStateMachine::KeptOnRestore(absl::string_view k) {
  if (k.empty()) return false;
  return (k[0] != kMemberPrefix && k[0] != kIncarnationPrefix && k != kConfIndexKey &&
          !etcd::AlarmStore::IsAlarmKey(k) && k != kBackupPaddingKey);
}

absl::StatusOr<std::map<uint64_t, std::string>> KvStateMachine::MemberAddresses() const {
  std::map<uint64_t, std::string> out;
  absl::Status s = store_->ScanData(std::string(1, kMemberPrefix),
                                    [&](absl::string_view k, absl::string_view v) {
                                      if (k.size() != 9 || k[0] != kMemberPrefix) return false;
                                      uint64_t id = 0;
                                      for (int i = 1; i < 9; ++i) {
                                        id = (id << 8) | static_cast<unsigned char>(k[i]);
                                      }
                                      out[id] = std::string(v);
                                      return true;
                                    });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<ApplyResult>> KvStateMachine::Apply(
    const std::vector<raftpb::Entry>& entries) {
  std::vector<ApplyResult> results;
  if (entries.empty()) return results;
  Overlay overlay;
  std::optional<raftpb::ConfState> conf;
  uint64_t conf_index;
  {
    absl::MutexLock l(&incarnations_mu_);
    conf_index = conf_index_;
  }
  for (const raftpb::Entry& e : entries) {
    if (e.index() <= applied_index()) continue;  // already reflected (restart)
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
      raftpb::ConfChange cc;
      if (cc.ParseFromString(e.data()) && cc.has_result()) {
        conf = cc.result();
        // The address book: kept with the data so snapshots carry it.
        conf_index = e.index();
        overlay.batch.Put(kConfIndexKey, EncodeValue(conf_index, ""));
        absl::MutexLock l(&incarnations_mu_);
        if (cc.type() == raftpb::CONF_REMOVE_NODE) {
          overlay.batch.Delete(MemberKey(cc.node_id()));
          // The id may be added again, as a fresh node.
          overlay.batch.Delete(IncarnationKey(cc.node_id()));
          incarnations_.erase(cc.node_id());
        } else if (!cc.context().empty()) {
          overlay.batch.Put(MemberKey(cc.node_id()), cc.context());
        }
        conf_index_ = conf_index;
        conf_ = cc.result();
        records_version_.fetch_add(1);
      }
      continue;
    }
    if (e.type() != raftpb::ENTRY_NORMAL || e.data().empty()) continue;
    kvpb::Command cmd;
    ApplyResult r;
    r.index = e.index();
    r.term = e.term();
    if (!cmd.ParseFromString(e.data())) {
      r.result = absl::InvalidArgumentError("malformed command in the log");
    } else if (cmd.op_case() == kvpb::Command::kHashCheck) {
      r.result = kvpb::WriteResult();
      if (checkpoint_hook_) {
        // Everything up to this entry is written first, so the view is the
        // state exactly as of it on every member, however they batch.
        if (absl::Status s = Flush(&overlay, e.index(), conf ? &*conf : nullptr); !s.ok()) {
          return s;
        }
        overlay = Overlay();
        conf.reset();
        auto view = store_->OpenDataSnapshot();
        if (!view.ok()) return view.status();
        checkpoint_hook_(e.index(), std::move(*view));
      }
    } else if (cmd.op_case() == kvpb::Command::kIncarnation) {
      RecordIncarnation(cmd.incarnation(), conf_index, &overlay);
      r.result = kvpb::WriteResult();
    } else {
      r.result = ApplyCommand(cmd, e.index(), &overlay);
      if (!overlay.storage_error.ok()) {
        return absl::Status(overlay.storage_error.code(),
                            absl::StrCat("applying entry ", e.index(), ": ",
                                         overlay.storage_error.message()));
      }
    }
    results.push_back(std::move(r));
  }
  const uint64_t last = entries.back().index();
  if (last > applied_index()) {
    if (absl::Status s = Flush(&overlay, last, conf ? &*conf : nullptr); !s.ok()) return s;
  }
  return results;
}

absl::Status KvStateMachine::Flush(Overlay* overlay, uint64_t index,
                                   const raftpb::ConfState* conf) {
  if (overlay->keys != nullptr) overlay->keys->Finish(&overlay->batch);
  absl::Status s = store_->ApplyBatch(overlay->batch, index, conf);
  // A failed write is fatal to the node: the MVCC store's counters, which
  // Finish advanced, are never used again.
  overlay->keys.reset();
  return s;
}

std::unique_ptr<mvcc::Store::Txn> KvStateMachine::BeginTxn(uint64_t index, Overlay* overlay) {
  if (overlay->keys == nullptr) overlay->keys = mvcc_->BeginBatch();
  return overlay->keys->Begin(index);
}

absl::StatusOr<kvpb::WriteResult> KvStateMachine::ExecuteEtcd(const kvpb::EtcdWrite& w,
                                                              uint64_t index, Overlay* overlay) {
  kvpb::WriteResult out;
  kvpb::EtcdWriteResult* r = out.mutable_etcd();
  // While NOSPACE is raised, etcd's writes that may add data are refused.
  if (absl::Status s = etcd_alarms_.AdmitWrite(w); !s.ok()) return s;
  // Rights were checked at the revision the request carries: refused if
  // auth changed since (the member checks again and re-proposes).
  if (w.has_auth() && etcd_auth_.enabled() && w.auth().revision() < etcd_auth_.revision()) {
    return etcd::EtcdError(etcd::Error::kAuthOldRevision);
  }
  if (w.request_case() == kvpb::EtcdWrite::kCompaction) {
    if (overlay->keys == nullptr) overlay->keys = mvcc_->BeginBatch();
    absl::Status s = etcd::FromMvcc(overlay->keys->Compact(w.compaction().revision()));
    if (!s.ok()) return s;
    r->mutable_compaction()->mutable_header()->set_revision(overlay->keys->revision());
    return out;
  }
  std::unique_ptr<mvcc::Store::Txn> txn = BeginTxn(index, overlay);
  // Leases come with etcd's Lease API; until then none exists.
  const etcd::LeaseExists no_leases;
  absl::Status s;
  switch (w.request_case()) {
    case kvpb::EtcdWrite::kPut: {
      auto resp = etcd::Put(txn.get(), w.put(), no_leases);
      if (resp.ok()) *r->mutable_put() = *std::move(resp);
      s = resp.status();
      break;
    }
    case kvpb::EtcdWrite::kDeleteRange: {
      auto resp = etcd::DeleteRange(txn.get(), w.delete_range());
      if (resp.ok()) *r->mutable_delete_range() = *std::move(resp);
      s = resp.status();
      break;
    }
    case kvpb::EtcdWrite::kTxn: {
      auto resp = etcd::Txn(txn.get(), w.txn(), no_leases);
      if (resp.ok()) *r->mutable_txn() = *std::move(resp);
      s = resp.status();
      break;
    }
    default:
      return absl::InvalidArgumentError("etcd write without a request");
  }
  if (!s.ok()) {
    // etcd's errors answer the client and change nothing; any other is the
    // store failing, fatal to the apply.
    if (etcd::IsEtcdError(s)) return s;
    return StorageError(s, overlay);
  }
  txn->Commit();
  return out;
}

absl::Status KvStateMachine::AdmitNativeWrite(bool deletes) const {
  if (etcd_auth_.enabled()) {
    return absl::PermissionDeniedError(
        "etcd's auth is enabled: raftkv's native API has no credentials; write through etcd's "
        "API with a user");
  }
  if (deletes) return absl::OkStatus();
  // The quota bounds the store, whichever API writes: as etcd's Put and Txn.
  if (etcd_alarms_.Active(etcdserverpb::NOSPACE)) return etcd::EtcdError(etcd::Error::kNoSpace);
  return absl::OkStatus();
}

absl::Status KvStateMachine::StorageError(const absl::Status& s, Overlay* overlay) const {
  overlay->storage_error = s;
  return s;
}

absl::StatusOr<kvpb::WriteResult> KvStateMachine::ApplyCommand(const kvpb::Command& cmd,
                                                               uint64_t index,
                                                               Overlay* overlay) {
  const kvpb::WriteHeader& h = cmd.header();
  if (h.client_id() == 0) return Execute(cmd, index, overlay);

  auto it = sessions_.find(h.client_id());
  const bool is_new = it == sessions_.end();
  statepb::SessionRecord s;
  if (!is_new) s = it->second;
  s.set_client_id(h.client_id());
  // The client no longer waits for sequences below first_incomplete.
  if (h.first_incomplete() > s.forgotten_below()) {
    s.set_forgotten_below(h.first_incomplete());
    auto* rs = s.mutable_results();
    rs->erase(std::remove_if(rs->begin(), rs->end(),
                             [&](const statepb::SessionResult& r) {
                               return r.seq() < h.first_incomplete();
                             }),
              rs->end());
  }
  for (const auto& r : s.results()) {
    if (r.seq() == h.seq()) return r.result();  // a retry: answer as before
  }
  if (h.seq() < s.forgotten_below()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "write ", h.seq(), " of client ", h.client_id(), " was already answered"));
  }
  absl::StatusOr<kvpb::WriteResult> result = Execute(cmd, index, overlay);
  if (!result.ok()) return result;  // invalid writes change nothing
  statepb::SessionResult* sr = s.add_results();
  sr->set_seq(h.seq());
  *sr->mutable_result() = *result;
  if (static_cast<size_t>(s.results_size()) > Limits::kMaxResultsPerSession) {
    std::sort(s.mutable_results()->begin(), s.mutable_results()->end(),
              [](const auto& a, const auto& b) { return a.seq() < b.seq(); });
    s.set_forgotten_below(s.results(0).seq() + 1);
    s.mutable_results()->erase(s.mutable_results()->begin());
  }
  if (!is_new) by_last_index_.erase({it->second.last_index(), h.client_id()});
  s.set_last_index(index);
  by_last_index_.emplace(index, h.client_id());
  SaveSession(s, overlay);
  sessions_[h.client_id()] = std::move(s);
  if (is_new) MaybeEvictSession(overlay);
  return result;
}

absl::StatusOr<kvpb::WriteResult> KvStateMachine::Execute(const kvpb::Command& cmd,
                                                          uint64_t index,
                                                          Overlay* overlay) {
  kvpb::WriteResult out;
  switch (cmd.op_case()) {
    case kvpb::Command::kPut: {
      const auto& put = cmd.put();
      if (absl::Status s = ValidateKey(put.key()); !s.ok()) return s;
      if (absl::Status s = AdmitNativeWrite(); !s.ok()) return s;
      std::unique_ptr<mvcc::Store::Txn> txn = BeginTxn(index, overlay);
      if (auto prev = txn->Put(put.key(), put.value(), 0, mvcc::PrevKv::kSkip); !prev.ok()) {
        return StorageError(prev.status(), overlay);
      }
      txn->Commit();
      out.mutable_put()->set_version(index);
      return out;
    }
    case kvpb::Command::kDelete: {
      const auto& del = cmd.delete_();
      if (absl::Status s = ValidateKey(del.key()); !s.ok()) return s;
      if (absl::Status s = AdmitNativeWrite(/*deletes=*/true); !s.ok()) return s;
      std::unique_ptr<mvcc::Store::Txn> txn = BeginTxn(index, overlay);
      absl::StatusOr<std::vector<mvcc::KeyValue>> gone = txn->DeleteRange(del.key(), "");
      if (!gone.ok()) return StorageError(gone.status(), overlay);
      txn->Commit();
      out.mutable_delete_()->set_deleted(!gone->empty());
      return out;
    }
    case kvpb::Command::kCas: {
      const auto& cas = cmd.cas();
      if (absl::Status s = ValidateKey(cas.key()); !s.ok()) return s;
      if (absl::Status s = AdmitNativeWrite(); !s.ok()) return s;
      std::unique_ptr<mvcc::Store::Txn> txn = BeginTxn(index, overlay);
      absl::StatusOr<mvcc::RangeResult> read = txn->Range(cas.key(), "", mvcc::RangeOptions());
      if (!read.ok()) return StorageError(read.status(), overlay);
      const mvcc::KeyValue* cur = read->kvs.empty() ? nullptr : &read->kvs[0];
      bool match = false;
      if (cas.expected_case() == kvpb::CasRequest::kExpectedValue) {
        match = cur != nullptr && cur->value == cas.expected_value();
      } else {
        const uint64_t want = cas.expected_version();
        match = want == 0 ? cur == nullptr : (cur != nullptr && cur->index == want);
      }
      kvpb::CasResponse* r = out.mutable_cas();
      r->set_succeeded(match);
      if (match) {
        if (auto prev = txn->Put(cas.key(), cas.new_value(), 0, mvcc::PrevKv::kSkip); !prev.ok()) {
          return StorageError(prev.status(), overlay);
        }
        txn->Commit();
        r->set_version(index);
      } else if (cur != nullptr) {
        r->set_found(true);
        r->mutable_current()->set_key(cas.key());
        r->mutable_current()->set_value(cur->value);
        r->mutable_current()->set_version(cur->index);
      }
      return out;
    }
    case kvpb::Command::kEtcd:
      return ExecuteEtcd(cmd.etcd(), index, overlay);
    case kvpb::Command::kAlarm: {
      auto resp = etcd_alarms_.Apply(cmd.alarm(), &overlay->batch);
      if (!resp.ok()) return resp.status();
      *out.mutable_etcd()->mutable_alarm() = *std::move(resp);
      return out;
    }
    case kvpb::Command::kAuth: {
      auto rev = etcd_auth_.Apply(cmd.auth(), &overlay->batch);
      if (!rev.ok()) return rev.status();
      out.mutable_etcd()->set_auth_revision(*rev);
      return out;
    }
    case kvpb::Command::kIncarnation:  // handled by Apply
    case kvpb::Command::kHashCheck:
    case kvpb::Command::OP_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("command without an operation");
}

void KvStateMachine::SaveSession(const statepb::SessionRecord& s, Overlay* overlay) {
  overlay->batch.Put(SessionKey(s.client_id()), s.SerializeAsString());
}

void KvStateMachine::MaybeEvictSession(Overlay* overlay) {
  while (sessions_.size() > Limits::kMaxSessions) {
    auto oldest = by_last_index_.begin();
    const uint64_t client = oldest->second;
    by_last_index_.erase(oldest);
    sessions_.erase(client);
    overlay->batch.Delete(SessionKey(client));
  }
}

namespace {

kvpb::KeyValue ToNative(const mvcc::KeyValue& kv) {
  kvpb::KeyValue out;
  out.set_key(kv.key);
  out.set_value(kv.value);
  out.set_version(kv.index);
  return out;
}

// etcd's end of the range of keys with `prefix`: "\0" (every key) if none.
std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) return std::string(1, '\0');
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

}  // namespace

absl::StatusOr<kvpb::KeyValue> KvStateMachine::Get(const std::string& key,
                                                  uint64_t* applied) const {
  std::unique_ptr<mvcc::View> view = mvcc_->Read();
  if (applied != nullptr) *applied = view->applied_index();
  absl::StatusOr<mvcc::RangeResult> r = view->Range(key, "", mvcc::RangeOptions());
  if (!r.ok()) return r.status();
  if (r->kvs.empty()) return absl::NotFoundError("key not found");
  return ToNative(r->kvs[0]);
}

absl::StatusOr<ScanResult> KvStateMachine::Scan(const std::string& prefix,
                                                const std::string& start_after, size_t limit,
                                                size_t max_bytes) const {
  ScanResult out;
  size_t bytes = 0;
  std::string from = prefix;
  if (!start_after.empty() && start_after >= prefix) from = start_after + std::string(1, '\0');
  std::unique_ptr<mvcc::View> view = mvcc_->Read();
  out.applied_index = view->applied_index();
  absl::Status s = view->ForEachLatest(from, PrefixEnd(prefix), [&](const mvcc::KeyValue& kv) {
    if (kv.key.compare(0, prefix.size(), prefix) != 0) return false;
    const size_t size = kv.key.size() + kv.value.size() + 8;
    if (out.kvs.size() == limit || (!out.kvs.empty() && bytes + size > max_bytes)) {
      out.more = true;
      return false;
    }
    bytes += size;
    out.kvs.push_back(ToNative(kv));
    return true;
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::pair<uint64_t, uint64_t>> KvStateMachine::Digest() const {
  uint64_t h = 14695981039346656037ull, count = 0;
  auto mix = [&h](absl::string_view bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0xff;  // separator
    h *= 1099511628211ull;
  };
  std::unique_ptr<mvcc::View> view = mvcc_->Read();
  absl::Status s = view->ForEachLatest("", std::string(1, '\0'), [&](const mvcc::KeyValue& kv) {
    mix(kv.key);
    mix(kv.value);
    mix(EncodeValue(kv.index, ""));
    ++count;
    return true;
  });
  if (!s.ok()) return s;
  return std::make_pair(h, count);
}

}  // namespace raftkv::server
