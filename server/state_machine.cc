#include "server/state_machine.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace raftkv::server {
namespace {

constexpr char kKeyPrefix = 'k';
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

std::string DataKey(const std::string& key) { return std::string(1, kKeyPrefix) + key; }

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
    storage::LogStore* store) {
  std::unique_ptr<KvStateMachine> sm(new KvStateMachine(store));
  if (absl::Status s = sm->Reload(); !s.ok()) return s;
  return sm;
}

absl::Status KvStateMachine::Reload() {
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
  bool cancelled = false;
  absl::Status s = view.Scan("", [&](absl::string_view k, absl::string_view v) {
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

bool KvStateMachine::IsUserKey(absl::string_view k) { return !k.empty() && k[0] == kKeyPrefix; }

bool KvStateMachine::KeptOnRestore(absl::string_view k) {
  if (k.empty()) return false;
  return (k[0] != kMemberPrefix && k[0] != kIncarnationPrefix && k != kConfIndexKey);
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
        if (absl::Status s = store_->ApplyBatch(overlay.batch, e.index(), conf ? &*conf : nullptr);
            !s.ok()) {
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
    if (absl::Status s = store_->ApplyBatch(overlay.batch, last, conf ? &*conf : nullptr);
        !s.ok()) {
      return s;
    }
  }
  return results;
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
      Write(put.key(), Stored{put.value(), index}, overlay);
      out.mutable_put()->set_version(index);
      return out;
    }
    case kvpb::Command::kDelete: {
      const auto& del = cmd.delete_();
      if (absl::Status s = ValidateKey(del.key()); !s.ok()) return s;
      absl::StatusOr<std::optional<Stored>> cur = Read(del.key(), overlay);
      if (!cur.ok()) return cur.status();
      const bool existed = cur->has_value();
      if (existed) Write(del.key(), std::nullopt, overlay);
      out.mutable_delete_()->set_deleted(existed);
      return out;
    }
    case kvpb::Command::kCas: {
      const auto& cas = cmd.cas();
      if (absl::Status s = ValidateKey(cas.key()); !s.ok()) return s;
      absl::StatusOr<std::optional<Stored>> read = Read(cas.key(), overlay);
      if (!read.ok()) return read.status();
      const std::optional<Stored>& cur = *read;
      bool match = false;
      if (cas.expected_case() == kvpb::CasRequest::kExpectedValue) {
        match = cur.has_value() && cur->value == cas.expected_value();
      } else {
        const uint64_t want = cas.expected_version();
        match = want == 0 ? !cur.has_value() : (cur.has_value() && cur->version == want);
      }
      kvpb::CasResponse* r = out.mutable_cas();
      r->set_succeeded(match);
      if (match) {
        Write(cas.key(), Stored{cas.new_value(), index}, overlay);
        r->set_version(index);
      } else if (cur.has_value()) {
        r->set_found(true);
        r->mutable_current()->set_key(cas.key());
        r->mutable_current()->set_value(cur->value);
        r->mutable_current()->set_version(cur->version);
      }
      return out;
    }
    case kvpb::Command::kIncarnation:  // handled by Apply
    case kvpb::Command::kHashCheck:
    case kvpb::Command::OP_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("command without an operation");
}

absl::StatusOr<std::optional<KvStateMachine::Stored>> KvStateMachine::Read(
    const std::string& key, Overlay* overlay) const {
  auto it = overlay->writes.find(key);
  if (it != overlay->writes.end()) return it->second;
  auto raw = store_->Get(DataKey(key));
  if (!raw.ok()) {
    if (absl::IsNotFound(raw.status())) return std::nullopt;
    overlay->storage_error = absl::Status(
        raw.status().code(),
        absl::StrCat("reading key \"", absl::CEscape(key), "\": ", raw.status().message()));
    return overlay->storage_error;
  }
  Stored s;
  if (!DecodeValue(*raw, &s.value, &s.version)) {
    overlay->storage_error = absl::DataLossError(
        absl::StrCat("undecodable value for key \"", absl::CEscape(key), "\" in ", store_->dir()));
    return overlay->storage_error;
  }
  return s;
}

void KvStateMachine::Write(const std::string& key, std::optional<Stored> v,
                           Overlay* overlay) {
  if (v) {
    overlay->batch.Put(DataKey(key), EncodeValue(v->version, v->value));
  } else {
    overlay->batch.Delete(DataKey(key));
  }
  overlay->writes[key] = std::move(v);
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

absl::StatusOr<kvpb::KeyValue> KvStateMachine::Get(const std::string& key,
                                                  uint64_t* applied) const {
  auto raw = store_->Get(DataKey(key), applied);
  if (!raw.ok()) return raw.status();
  kvpb::KeyValue kv;
  kv.set_key(key);
  uint64_t version = 0;
  if (!DecodeValue(*raw, kv.mutable_value(), &version)) {
    return absl::DataLossError(absl::StrCat("undecodable value for key \"", absl::CEscape(key),
                                            "\" in ", store_->dir()));
  }
  kv.set_version(version);
  return kv;
}

absl::StatusOr<ScanResult> KvStateMachine::Scan(const std::string& prefix,
                                                const std::string& start_after, size_t limit,
                                                size_t max_bytes) const {
  ScanResult out;
  absl::Status decode;
  size_t bytes = 0;
  const std::string lo = DataKey(std::max(prefix, start_after));
  const std::string want = DataKey(prefix);
  const std::string skip = start_after.empty() ? "" : DataKey(start_after);
  absl::Status s = store_->ScanData(lo, [&](absl::string_view k, absl::string_view v) {
    if (k.substr(0, want.size()) != want) return false;
    if (!skip.empty() && k == skip) return true;
    if (out.kvs.size() == limit || (!out.kvs.empty() && bytes + k.size() + v.size() > max_bytes)) {
      out.more = true;
      return false;
    }
    kvpb::KeyValue kv;
    kv.set_key(std::string(k.substr(1)));
    uint64_t version = 0;
    if (!DecodeValue(v, kv.mutable_value(), &version)) {
      decode = absl::DataLossError(absl::StrCat("undecodable value for key \"",
                                                absl::CEscape(kv.key()), "\" in ", store_->dir()));
      return false;
    }
    bytes += k.size() + v.size();
    kv.set_version(version);
    out.kvs.push_back(std::move(kv));
    return true;
  }, &out.applied_index);
  if (!s.ok()) return s;
  if (!decode.ok()) return decode;
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
  absl::Status s = store_->ScanData(std::string(1, kKeyPrefix),
                                    [&](absl::string_view k, absl::string_view v) {
                                      if (k.empty() || k[0] != kKeyPrefix) return false;
                                      mix(k);
                                      mix(v);
                                      ++count;
                                      return true;
                                    });
  if (!s.ok()) return s;
  return std::make_pair(h, count);
}

}  // namespace raftkv::server
