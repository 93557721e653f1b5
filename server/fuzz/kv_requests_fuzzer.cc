// Fuzz target: client requests against the state machine, compared with a
// model. The input is a sequence of operations: batches of log entries for
// KvStateMachine::Apply (puts, deletes, compare-and-swaps with and without a
// client session, retries, malformed commands, internal commands, conf
// changes, entries applied before), Get and Scan pages, and restarts (the
// state machine reloaded from its store). A std::map and a session table
// written from the contract (state_machine.h, kv.proto) say what every
// answer must be; any difference, or a crash, is a bug.
//
// The store is shared by all inputs of a process (opening one per input
// would dominate); each input starts by deleting every key in it.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_input.h"
#include "server/fuzz/scratch_store.h"
#include "fuzz/temp_dir.h"
#include "glog/logging.h"
#include "proto/kv.pb.h"
#include "server/state_machine.h"
#include "storage/log_store.h"

namespace raftkv::server {
namespace {

using fuzz::FuzzInput;

storage::LogStore& Store() {
  static storage::LogStore* store =
      fuzz::OpenScratchStore(fuzz::ProcessTempDir("kv_requests") + "/store");
  return *store;
}

// The contract, as plainly as it can be written.
class Model {
 public:
  struct Value {
    std::string value;
    uint64_t version = 0;
  };
  struct Session {
    uint64_t forgotten_below = 0;
    std::map<uint64_t, kvpb::WriteResult> results;  // by seq
  };

  absl::StatusOr<kvpb::WriteResult> Apply(const kvpb::Command& cmd, uint64_t index) {
    const kvpb::WriteHeader& h = cmd.header();
    if (h.client_id() == 0) return Execute(cmd, index);
    Session s = sessions_[h.client_id()];  // a copy: kept only if the write is new and valid
    if (h.first_incomplete() > s.forgotten_below) {
      s.forgotten_below = h.first_incomplete();
      s.results.erase(s.results.begin(), s.results.lower_bound(h.first_incomplete()));
    }
    if (auto it = s.results.find(h.seq()); it != s.results.end()) return it->second;
    if (h.seq() < s.forgotten_below) {
      return absl::FailedPreconditionError("already answered");
    }
    absl::StatusOr<kvpb::WriteResult> r = Execute(cmd, index);
    if (!r.ok()) return r;
    s.results[h.seq()] = *r;
    if (s.results.size() > Limits::kMaxResultsPerSession) {
      s.forgotten_below = s.results.begin()->first + 1;
      s.results.erase(s.results.begin());
    }
    sessions_[h.client_id()] = std::move(s);
    return r;
  }

  const std::map<std::string, Value>& kv() const { return kv_; }

  // A page of Scan (state_machine.h): keys with `prefix`, after
  // `start_after`, at most `limit`, and past the first about `max_bytes`
  // (counted as stored: a one-byte prefix on the key, an 8-byte version on
  // the value).
  ScanResult Scan(const std::string& prefix, const std::string& start_after, size_t limit,
                  size_t max_bytes) const {
    ScanResult out;
    size_t bytes = 0;
    for (auto it = kv_.lower_bound(std::max(prefix, start_after)); it != kv_.end(); ++it) {
      const std::string& k = it->first;
      if (k.compare(0, prefix.size(), prefix) != 0) break;
      if (!start_after.empty() && k == start_after) continue;
      const size_t size = 1 + k.size() + 8 + it->second.value.size();
      if (out.kvs.size() == limit || (!out.kvs.empty() && bytes + size > max_bytes)) {
        out.more = true;
        break;
      }
      bytes += size;
      kvpb::KeyValue kv;
      kv.set_key(k);
      kv.set_value(it->second.value);
      kv.set_version(it->second.version);
      out.kvs.push_back(std::move(kv));
    }
    return out;
  }

 private:
  absl::StatusOr<kvpb::WriteResult> Execute(const kvpb::Command& cmd, uint64_t index) {
    auto bad_key = [](const std::string& k) {
      return k.empty() || k.size() > Limits::kMaxKeyBytes;
    };
    kvpb::WriteResult out;
    if (cmd.has_put()) {
      if (bad_key(cmd.put().key())) return absl::InvalidArgumentError("key");
      kv_[cmd.put().key()] = Value{cmd.put().value(), index};
      out.mutable_put()->set_version(index);
    } else if (cmd.has_delete_()) {
      if (bad_key(cmd.delete_().key())) return absl::InvalidArgumentError("key");
      out.mutable_delete_()->set_deleted(kv_.erase(cmd.delete_().key()) > 0);
    } else if (cmd.has_cas()) {
      const kvpb::CasRequest& cas = cmd.cas();
      if (bad_key(cas.key())) return absl::InvalidArgumentError("key");
      auto it = kv_.find(cas.key());
      bool match;
      if (cas.expected_case() == kvpb::CasRequest::kExpectedValue) {
        match = it != kv_.end() && it->second.value == cas.expected_value();
      } else if (cas.expected_version() == 0) {
        match = it == kv_.end();
      } else {
        match = it != kv_.end() && it->second.version == cas.expected_version();
      }
      kvpb::CasResponse* r = out.mutable_cas();
      r->set_succeeded(match);
      if (match) {
        kv_[cas.key()] = Value{cas.new_value(), index};
        r->set_version(index);
      } else if (it != kv_.end()) {
        r->set_found(true);
        r->mutable_current()->set_key(cas.key());
        r->mutable_current()->set_value(it->second.value);
        r->mutable_current()->set_version(it->second.version);
      }
    } else {
      return absl::InvalidArgumentError("command without an operation");
    }
    return out;
  }

  std::map<std::string, Value> kv_;
  std::map<uint64_t, Session> sessions_;
};

class Run {
 public:
  Run(FuzzInput* in, storage::LogStore* store) : in_(*in), store_(*store) {
    fuzz::ClearData(store_);
    Restart();
  }

  bool Step() {
    if (in_.exhausted()) return false;
    switch (in_.U8() % 8) {
      case 0:
      case 1:
      case 2:
        Batch();
        break;
      case 3:
        Replay();
        break;
      case 4:
        Get(Key());
        break;
      case 5:
        Scan();
        break;
      case 6:
        Restart();
        CheckAll();
        break;
      default: {  // a batch of one write, retried in the next batch
        Batch(/*retry_last=*/true);
        break;
      }
    }
    return true;
  }

  void CheckAll() {
    for (const auto& [k, v] : model_.kv()) Get(k);
    auto digest = sm_->Digest();
    CHECK(digest.ok()) << digest.status();
    CHECK_EQ(digest->second, model_.kv().size()) << "the key count differs from the model's";
    const ScanResult all = model_.Scan("", "", SIZE_MAX, SIZE_MAX);
    auto got = sm_->Scan("", "", 1 << 20, SIZE_MAX);
    CHECK(got.ok()) << got.status();
    CHECK_EQ(got->kvs.size(), all.kvs.size()) << "the state machine holds other keys";
  }

 private:
  std::string Key() {
    static const char* const kKeys[] = {"a", "ab", "abc", "b", "", "a\0b", "\xff"};
    const uint8_t k = in_.U8();
    if (k < 200) return std::string(kKeys[k % 7], k % 7 == 5 ? 3 : strlen(kKeys[k % 7]));
    if (k < 254) return in_.Bytes(6);
    return std::string(Limits::kMaxKeyBytes + (k & 1), 'k');  // the limit, and one past it
  }

  kvpb::Command Command() {
    kvpb::Command c;
    const uint8_t h = in_.U8();
    if (h & 1) {
      c.mutable_header()->set_client_id(1 + in_.Range(0, 2));
      c.mutable_header()->set_seq(in_.Range(0, 7));
      c.mutable_header()->set_first_incomplete(in_.Range(0, 7));
    }
    switch (in_.U8() % 8) {
      case 0:
      case 1:
        c.mutable_put()->set_key(Key());
        c.mutable_put()->set_value(in_.Bytes(8));
        break;
      case 2:
        c.mutable_delete_()->set_key(Key());
        break;
      case 3:
      case 4: {
        kvpb::CasRequest* cas = c.mutable_cas();
        cas->set_key(Key());
        const uint8_t e = in_.U8() % 4;
        if (e == 0) {
          cas->set_expected_value(in_.Bytes(8));
        } else if (e == 1) {
          auto it = model_.kv().find(cas->key());
          cas->set_expected_version(it == model_.kv().end() ? 0 : it->second.version);
        } else if (e == 2) {
          cas->set_expected_version(in_.Range(0, 40));
        }  // else: neither set (expected version 0)
        cas->set_new_value(in_.Bytes(8));
        break;
      }
      case 5:
        c.mutable_incarnation()->set_node_id(in_.Range(0, 3));
        c.mutable_incarnation()->set_incarnation(in_.Range(0, 3));
        c.mutable_incarnation()->set_conf_index(in_.Range(0, 3));
        break;
      case 6:
        c.mutable_hash_check();
        break;
      default:
        break;  // no operation
    }
    return c;
  }

  // A batch of entries applied as one, and each result checked.
  void Batch(bool retry_last = false) {
    std::vector<raftpb::Entry> entries;
    std::vector<std::optional<kvpb::Command>> cmds;  // per entry: the model's input
    const int n = retry_last ? 1 : 1 + in_.Range(0, 3);
    for (int i = 0; i < n; ++i) {
      raftpb::Entry e;
      e.set_index(next_index_++);
      e.set_term(1);
      std::optional<kvpb::Command> cmd;
      switch (retry_last ? 0 : in_.U8() % 16) {
        case 13:  // the leader's no-op
          break;
        case 14:  // not a command
          e.set_data(in_.Bytes(12));
          break;
        case 15: {  // a membership change
          e.set_type(raftpb::ENTRY_CONF_CHANGE);
          raftpb::ConfChange cc;
          cc.set_type(static_cast<raftpb::ConfChangeType>(in_.U8() % 3));
          cc.set_node_id(in_.Range(1, 4));
          cc.set_context(in_.Bytes(6));
          if (in_.Bool()) cc.mutable_result()->add_voters(1);
          e.set_data(in_.Bool() ? cc.SerializeAsString() : in_.Bytes(8));
          break;
        }
        default:
          cmd = retry_last && last_write_ ? *last_write_ : Command();
          if (cmd->header().client_id() != 0 && !retry_last) last_write_ = cmd;
          e.set_data(cmd->SerializeAsString());
          break;
      }
      entries.push_back(std::move(e));
      cmds.push_back(std::move(cmd));
    }
    absl::StatusOr<std::vector<ApplyResult>> got = sm_->Apply(entries);
    CHECK(got.ok()) << got.status();
    size_t r = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
      const raftpb::Entry& e = entries[i];
      if (e.type() != raftpb::ENTRY_NORMAL || e.data().empty()) continue;
      CHECK_LT(r, got->size()) << "no result for entry " << e.index();
      const ApplyResult& res = (*got)[r++];
      CHECK_EQ(res.index, e.index());
      CHECK_EQ(res.term, e.term());
      kvpb::Command parsed;
      if (!parsed.ParseFromString(e.data())) {
        CHECK(res.result.status().code() == absl::StatusCode::kInvalidArgument)
            << "entry " << e.index() << ": " << res.result.status();
        continue;
      }
      if (parsed.has_incarnation() || parsed.has_hash_check()) {
        CHECK(res.result.ok()) << res.result.status();
        continue;
      }
      const absl::StatusOr<kvpb::WriteResult> want = model_.Apply(parsed, e.index());
      CHECK(res.result.status().code() == want.status().code())
          << "entry " << e.index() << " " << parsed.ShortDebugString() << ": got "
          << res.result.status() << ", the model wants " << want.status();
      if (want.ok()) {
        CHECK_EQ(res.result->SerializeAsString(), want->SerializeAsString())
            << "entry " << e.index() << " " << parsed.ShortDebugString() << ": got "
            << res.result->ShortDebugString() << ", the model wants " << want->ShortDebugString();
      }
    }
    CHECK_EQ(r, got->size()) << "results for entries that carry no command";
    CHECK_EQ(sm_->applied_index(), entries.back().index());
    last_batch_ = std::move(entries);
  }

  // The last batch again, as after a restart that re-applies entries the
  // state machine already holds: nothing happens.
  void Replay() {
    if (last_batch_.empty()) return;
    absl::StatusOr<std::vector<ApplyResult>> got = sm_->Apply(last_batch_);
    CHECK(got.ok()) << got.status();
    CHECK(got->empty()) << "entries applied before were applied again";
    CHECK_EQ(sm_->applied_index(), next_index_ - 1);
  }

  void Get(const std::string& key) {
    absl::StatusOr<kvpb::KeyValue> got = sm_->Get(key);
    auto it = model_.kv().find(key);
    if (it == model_.kv().end()) {
      CHECK(got.status().code() == absl::StatusCode::kNotFound) << got.status();
      return;
    }
    CHECK(got.ok()) << got.status();
    CHECK_EQ(got->key(), key);
    CHECK_EQ(got->value(), it->second.value);
    CHECK_EQ(got->version(), it->second.version);
  }

  void Scan() {
    const std::string prefix = in_.Bool() ? "" : Key();
    const std::string start_after = in_.Bool() ? "" : Key();
    const size_t limit = in_.Range(1, 5);
    const size_t max_bytes = in_.Bool() ? KvStateMachine::kMaxScanBytes : in_.Range(0, 64);
    absl::StatusOr<ScanResult> got = sm_->Scan(prefix, start_after, limit, max_bytes);
    CHECK(got.ok()) << got.status();
    const ScanResult want = model_.Scan(prefix, start_after, limit, max_bytes);
    CHECK_EQ(got->more, want.more) << "scan of prefix " << prefix;
    CHECK_EQ(got->kvs.size(), want.kvs.size()) << "scan of prefix " << prefix;
    for (size_t i = 0; i < want.kvs.size(); ++i) {
      CHECK_EQ(got->kvs[i].SerializeAsString(), want.kvs[i].SerializeAsString())
          << got->kvs[i].ShortDebugString() << " vs " << want.kvs[i].ShortDebugString();
    }
    CHECK_EQ(got->applied_index, next_index_ - 1);
  }

  void Restart() {
    sm_.reset();
    absl::StatusOr<std::unique_ptr<KvStateMachine>> sm = KvStateMachine::Open(&store_);
    CHECK(sm.ok()) << sm.status();
    sm_ = std::move(*sm);
    next_index_ = store_.applied_index() + 1;
  }

  FuzzInput& in_;
  storage::LogStore& store_;
  std::unique_ptr<KvStateMachine> sm_;
  Model model_;
  uint64_t next_index_ = 1;
  std::vector<raftpb::Entry> last_batch_;
  std::optional<kvpb::Command> last_write_;
};

}  // namespace
}  // namespace raftkv::server

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    FLAGS_minloglevel = 2;
    return true;
  }();
  (void)quiet;
  raftkv::fuzz::FuzzInput in(data, size);
  raftkv::server::Run run(&in, &raftkv::server::Store());
  for (int n = 0; n < 256 && run.Step(); ++n) {
  }
  run.CheckAll();
  return 0;
}
