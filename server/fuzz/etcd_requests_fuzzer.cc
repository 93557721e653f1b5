// Fuzz target: etcd's KV requests, decoded from outside bytes as the etcd KV
// service decodes them (server/etcd/kv_service.cc), against two stores:
//  - the real path: writes as kvpb::EtcdWrite commands in log entries
//    through KvStateMachine::Apply (its batches, its MVCC store on a
//    LogStore), reads through kv_apply over the state machine's mvcc view;
//  - the model: kv_apply over mvcc::Model, one write transaction per write,
//    committed only when it succeeds.
// Every answer must be the same: the response's bytes, or the error's code
// and message; the revisions and compact revisions equal after every batch;
// a refused request changes nothing. Any difference, or a crash, is a bug.
//
// The input is a sequence of steps (Step() below): Range, Put, DeleteRange,
// Txn (read-only ones served from a view, as the service does, and also
// through the log) and Compaction requests, built from input choices over a
// small key space (nested txns, compares on every target and result,
// range ends "" / "\0" / prefixes, revisions around the compacted and latest
// ones, limits, sorts, filters), each sent as protobuf bytes that may be
// edited or replaced by raw input bytes; batches of several writes (native
// puts and deletes, and etcd's alarms, among them) in one Apply; physical compaction steps
// (reads and the state hash unchanged); restarts (the state machine reopened
// from its store); replays of applied entries; full comparisons of every
// readable revision. The run's limits (max txn ops, request and range bytes)
// come first.
//
// A store serves many inputs (opening one per input would dominate); each
// input starts by deleting every record in it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_input.h"
#include "server/fuzz/scratch_store.h"
#include "fuzz/temp_dir.h"
#include "glog/logging.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "mvcc/model.h"
#include "mvcc/store.h"
#include "proto/etcd/rpc.pb.h"
#include "proto/kv.pb.h"
#include "server/etcd/errors.h"
#include "server/etcd/kv_apply.h"
#include "server/raw_message.h"
#include "server/state_machine.h"
#include "storage/log_store.h"

namespace raftkv::server {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::CompactionRequest;
using etcdserverpb::DeleteRangeRequest;
using etcdserverpb::PutRequest;
using etcdserverpb::RangeRequest;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;
using fuzz::FuzzInput;

const std::string kZero(1, '\0');  // etcd's range_end "\0"

// A fresh store every kInputsPerStore inputs: every input rewrites the same
// few record keys (revisions start at 1 again), and reads that skip the
// older inputs' versions and tombstones made a long-lived store several
// times slower.
constexpr int kInputsPerStore = 64;

storage::LogStore& Store() {
  static int generation = 0;
  static int inputs = 0;
  static storage::LogStore* store = nullptr;  // left open at exit, as RocksDB prefers
  if (store != nullptr && ++inputs < kInputsPerStore) return *store;
  inputs = 0;
  const std::string base = fuzz::ProcessTempDir("etcd_requests") + "/store";
  delete store;
  std::error_code ec;
  std::filesystem::remove_all(base + std::to_string(generation), ec);
  store = fuzz::OpenScratchStore(base + std::to_string(++generation));
  return *store;
}



// An answer as the client sees it: the error, or the response's bytes.
struct Answer {
  absl::Status status;
  std::string bytes;
  std::string text;  // for failure messages
};

template <typename Resp>
Answer AnswerOf(const absl::StatusOr<Resp>& r) {
  if (!r.ok()) return Answer{etcd::FromMvcc(r.status()), "", ""};
  return Answer{absl::OkStatus(), r->SerializeAsString(), r->ShortDebugString()};
}

// RAFTKV_FUZZ_TRACE=1: every request and its answer on stderr.
bool Trace() {
  static const bool on = getenv("RAFTKV_FUZZ_TRACE") != nullptr;
  return on;
}

void CheckSame(const Answer& got, const Answer& want, const std::string& what) {
  if (Trace()) {
    fprintf(stderr, "%s\n  -> %s\n", what.c_str(),
            got.status.ok() ? got.text.c_str() : got.status.ToString().c_str());
  }
  CHECK(got.status == want.status) << what << ": got " << got.status << ", the model "
                                   << want.status;
  CHECK(got.bytes == want.bytes) << what << ": got " << got.text << "\nthe model: " << want.text;
}

std::string RangeText(const mvcc::RangeResult& r) {
  std::string out = absl::StrCat("count ", r.count, " more ", r.more, ":");
  for (const mvcc::KeyValue& kv : r.kvs) {
    absl::StrAppend(&out, " [", absl::CHexEscape(kv.key), "=", absl::CHexEscape(kv.value), " c",
                    kv.create_revision, " m", kv.mod_revision, " v", kv.version, " l", kv.lease,
                    " i", kv.index, "]");
  }
  return out;
}

class Run {
 public:
  Run(FuzzInput* in, storage::LogStore* store) : in_(*in), store_(*store) {
    fuzz::ClearData(store_);
    Restart();
    max_txn_ops_ = in_.Bool() ? etcd::kDefaultMaxTxnOps : in_.Range(1, 8);
    max_request_bytes_ = in_.Bool() ? (3 << 19) : 16 + in_.U8();
    max_range_bytes_ = in_.Bool() ? (64 << 20) : in_.U8();
  }

  bool Step() {
    if (in_.exhausted()) return false;
    const uint8_t op = in_.U8() % 16;
    if (Trace()) fprintf(stderr, "step %d (revision %ld, compacted %ld)\n", op,
                         static_cast<long>(model_.revision()),
                         static_cast<long>(model_.compact_revision()));
    switch (op) {
      case 0:
      case 1:
        SendRange();
        break;
      case 2:
      case 3:
        SendPut();
        break;
      case 4:
        SendDeleteRange();
        break;
      case 5:
      case 6:
      case 7:
        SendTxn();
        break;
      case 8:
        SendCompaction();
        break;
      case 9:
        SendBatch();
        break;
      case 10:
        CompactStep();
        break;
      case 11:
        Restart();
        CheckAll();
        break;
      case 12:
        Replay();
        break;
      case 13:
        CheckAll();
        break;
      default:  // more writes than anything else
        if (in_.Bool()) {
          SendPut();
        } else {
          SendTxn();
        }
        break;
    }
    return true;
  }

  // Readable revisions of both stores, at the mvcc level (KeyValue's Raft
  // index included), and the bounds around them.
  void CheckAll() {
    mvcc::Store* real = sm_->mvcc();
    CHECK_EQ(real->revision(), model_.revision());
    CHECK_EQ(real->compact_revision(), model_.compact_revision());
    std::unique_ptr<mvcc::View> view = real->Read();
    std::unique_ptr<mvcc::Reader> want = model_.Read();
    CHECK_EQ(view->revision(), want->revision());
    CHECK_EQ(view->compact_revision(), want->compact_revision());
    const int64_t first = std::max<int64_t>(1, want->compact_revision());
    const int64_t last = want->revision();
    // At most about 12 of them (each a scan of the store: most of a run's
    // time when every one was read).
    std::vector<int64_t> revs;
    const int64_t stride = std::max<int64_t>(1, (last - first) / 10);
    for (int64_t r = first; r < last; r += stride) revs.push_back(r);
    revs.push_back(last);
    revs.push_back(first - 1);
    revs.push_back(last + 1);
    for (int64_t r : revs) {
      mvcc::RangeOptions o;
      o.revision = r;
      absl::StatusOr<mvcc::RangeResult> g = view->Range(kZero, kZero, o);
      absl::StatusOr<mvcc::RangeResult> w = want->Range(kZero, kZero, o);
      CHECK(g.status() == w.status()) << "revision " << r << ": " << g.status() << " vs "
                                      << w.status();
      if (!g.ok()) continue;
      CHECK(g->kvs == w->kvs && g->count == w->count && g->more == w->more)
          << "every key at revision " << r << ": got " << RangeText(*g) << "\nthe model "
          << RangeText(*w);
    }
    // The native scans' path: the latest value of each key.
    std::vector<mvcc::KeyValue> latest;
    CHECK(view->ForEachLatest(kZero, kZero, [&](const mvcc::KeyValue& kv) {
                 latest.push_back(kv);
                 return true;
               }).ok());
    absl::StatusOr<mvcc::RangeResult> w = want->Range(kZero, kZero, mvcc::RangeOptions());
    CHECK(w.ok());
    CHECK(latest == w->kvs) << "ForEachLatest differs from the model's latest: "
                            << RangeText(*w);
  }

 private:
  // ---- request parts from the input ----

  std::string Key() {
    static const std::string kKeys[] = {"a",  "ab",    "abc",        "b",    "c",
                                        kZero, std::string("a\0", 2), "\xff",       "\xff\xff", ""};
    const uint8_t k = in_.U8();
    if (k < 250) return kKeys[k % 10];
    return in_.Bytes(4);
  }

  // etcd's clientv3.GetPrefixRangeEnd: the first key after every key with
  // prefix `key` ("\0": none is, every key from `key` on).
  static std::string PrefixEnd(std::string key) {
    while (!key.empty() && static_cast<uint8_t>(key.back()) == 0xff) key.pop_back();
    if (key.empty()) return kZero;
    key.back() = static_cast<char>(static_cast<uint8_t>(key.back()) + 1);
    return key;
  }

  std::string RangeEnd(const std::string& key) {
    switch (in_.U8() % 8) {
      case 0:
      case 1:
        return "";
      case 2:
        return kZero;
      case 3:
      case 4:
        return PrefixEnd(key);
      case 5:
        return Key();
      case 6:
        return key;  // an empty range
      default:
        return in_.Bytes(3);
    }
  }

  std::string Value() {
    switch (in_.U8() % 5) {
      case 0:
        return "";
      case 1:
        return "v";
      case 2:
        return "w";
      case 3:
        return "vv";
      default:
        return in_.Bytes(8);
    }
  }

  // A revision around the interesting ones of the model's state.
  int64_t Revision() {
    const int64_t latest = model_.revision(), compact = model_.compact_revision();
    switch (in_.U8() % 11) {
      case 0:
        return 0;
      case 1:
        return latest;
      case 2:
        return latest - 1;
      case 3:
        return compact;
      case 4:
        return compact - 1;
      case 5:
        return compact + 1;
      case 6:
        return latest + 1;
      case 7:
        return -static_cast<int64_t>(in_.Range(1, 3));
      case 8:
        return in_.Range(0, 30);
      case 9:
        return in_.Bool() ? std::numeric_limits<int64_t>::max()
                          : std::numeric_limits<int64_t>::min();
      default:
        return static_cast<int64_t>(in_.U64());
    }
  }

  RangeRequest MakeRange() {
    RangeRequest r;
    r.set_key(Key());
    r.set_range_end(RangeEnd(r.key()));
    const uint8_t f = in_.U8();  // which options
    if (f & 1) {
      static const int64_t kLimits[] = {1, 2, 3, -1, std::numeric_limits<int64_t>::max(), 0};
      r.set_limit(kLimits[in_.U8() % 6]);
    }
    if (f & 2) r.set_revision(Revision());
    if (f & 4) {
      r.set_sort_order(static_cast<RangeRequest::SortOrder>(in_.U8() % 4));  // 3: unknown
      r.set_sort_target(static_cast<RangeRequest::SortTarget>(in_.U8() % 6));  // 5: unknown
    }
    if (f & 8) r.set_serializable(true);
    if (f & 16) r.set_keys_only(true);
    if (f & 32) r.set_count_only(true);
    if (f & 64) {
      const uint8_t which = in_.U8();
      if (which & 1) r.set_min_mod_revision(Revision());
      if (which & 2) r.set_max_mod_revision(Revision());
      if (which & 4) r.set_min_create_revision(Revision());
      if (which & 8) r.set_max_create_revision(Revision());
    }
    return r;
  }

  PutRequest MakePut() {
    PutRequest p;
    p.set_key(Key());
    const uint8_t f = in_.U8();
    if (!(f & 1)) p.set_value(Value());
    if (f & 2) p.set_prev_kv(true);
    if (f & 4) p.set_ignore_value(true);
    if (f & 8) p.set_ignore_lease(true);
    if ((f & 0x30) == 0x30) p.set_lease(in_.Range(1, 3));  // no lease exists
    return p;
  }

  DeleteRangeRequest MakeDeleteRange() {
    DeleteRangeRequest d;
    d.set_key(Key());
    d.set_range_end(RangeEnd(d.key()));
    d.set_prev_kv(in_.Bool());
    return d;
  }

  Compare MakeCompare() {
    Compare c;
    c.set_key(Key());
    if (in_.Bool()) c.set_range_end(RangeEnd(c.key()));
    c.set_target(static_cast<Compare::CompareTarget>(in_.U8() % 6));  // 5: unknown
    c.set_result(static_cast<Compare::CompareResult>(in_.U8() % 5));  // 4: unknown
    int operand = in_.U8() % 8;  // 0-2: the target's own, 3-7: any of the five
    if (operand < 3) operand = 3 + (c.target() < 5 ? c.target() : 5);
    switch (operand - 3) {
      case Compare::VERSION:
        c.set_version(in_.Range(0, 4));
        break;
      case Compare::CREATE:
        c.set_create_revision(Revision());
        break;
      case Compare::MOD:
        c.set_mod_revision(Revision());
        break;
      case Compare::VALUE:
        c.set_value(Value());
        break;
      case Compare::LEASE:
        c.set_lease(in_.Range(0, 2));
        break;
      default:
        break;  // no operand
    }
    return c;
  }

  TxnRequest MakeTxn(int depth) {
    TxnRequest t;
    for (int n = in_.U8() % 4; n > 0; --n) *t.add_compare() = MakeCompare();
    const uint8_t sizes = in_.U8();
    for (int branch = 0; branch < 2; ++branch) {
      const int n = branch == 0 ? sizes % 5 : (sizes >> 4) % 4;
      for (int i = 0; i < n; ++i) {
        RequestOp* op = branch == 0 ? t.add_success() : t.add_failure();
        switch (in_.U8() % 8) {
          case 0:
          case 1:
            *op->mutable_request_range() = MakeRange();
            break;
          case 2:
          case 3:
            *op->mutable_request_put() = MakePut();
            break;
          case 4:
            *op->mutable_request_delete_range() = MakeDeleteRange();
            break;
          case 5:
          case 6:
            if (depth < 3) {
              *op->mutable_request_txn() = MakeTxn(depth + 1);
            } else {
              *op->mutable_request_range() = MakeRange();
            }
            break;
          default:
            break;  // an op without a request
        }
      }
    }
    return t;
  }

  // The bytes a client sends for `msg`: as protobuf serializes it, edited,
  // or replaced by raw input bytes.
  std::string Encode(const google::protobuf::MessageLite& msg) {
    std::string bytes = msg.SerializeAsString();
    if (in_.U8() % 8 != 7) return bytes;
    for (int n = 1 + in_.U8() % 3; n > 0; --n) {
      const size_t pos = bytes.empty() ? 0 : in_.U16() % (bytes.size() + 1);
      const uint8_t b = in_.U8();
      switch (in_.U8() % 4) {
        case 0:
          if (pos < bytes.size()) bytes[pos] = static_cast<char>(b);
          break;
        case 1:
          bytes.insert(pos, 1, static_cast<char>(b));
          break;
        case 2:
          bytes.resize(pos);
          break;
        default:
          bytes = in_.Bytes(64);
          break;
      }
    }
    return bytes;
  }

  // ParseRequest of the bytes as gRPC hands them over.
  template <typename Req>
  absl::Status Parse(const std::string& bytes, Req* req) {
    grpc::Slice slice(bytes.data(), bytes.size());
    grpc::ByteBuffer buffer(&slice, 1);
    return ParseRequest(buffer, req);
  }

  // The service's size check of a write's bytes.
  absl::Status CheckSize(const std::string& bytes) const {
    if (bytes.size() > max_request_bytes_) return etcd::EtcdError(etcd::Error::kRequestTooLarge);
    return absl::OkStatus();
  }

  // ---- requests ----

  void SendRange() {
    RangeRequest req;
    const std::string bytes = Encode(MakeRange());
    absl::Status s = Parse(bytes, &req);
    if (s.ok()) s = etcd::CheckRangeRequest(req);
    if (!s.ok()) return Refused(s);
    Read(
        [&](const mvcc::Reader& v) { return AnswerOf(etcd::Range(v, req)); },
        "range " + req.ShortDebugString(),
        [&](const Answer& a) { CheckRangeAnswer(req, a); });
  }

  void SendPut() {
    kvpb::Command cmd;
    const std::string bytes = Encode(MakePut());
    absl::Status s = CheckSize(bytes);
    if (s.ok()) s = Parse(bytes, cmd.mutable_etcd()->mutable_put());
    if (s.ok()) s = etcd::CheckPutRequest(cmd.etcd().put());
    if (!s.ok()) return Refused(s);
    Apply({cmd});
  }

  void SendDeleteRange() {
    kvpb::Command cmd;
    const std::string bytes = Encode(MakeDeleteRange());
    absl::Status s = CheckSize(bytes);
    if (s.ok()) s = Parse(bytes, cmd.mutable_etcd()->mutable_delete_range());
    if (s.ok()) s = etcd::CheckDeleteRangeRequest(cmd.etcd().delete_range());
    if (!s.ok()) return Refused(s);
    Apply({cmd});
  }

  void SendTxn() {
    kvpb::Command cmd;
    TxnRequest* req = cmd.mutable_etcd()->mutable_txn();
    const std::string bytes = Encode(MakeTxn(0));
    absl::Status s = CheckSize(bytes);
    if (s.ok()) s = Parse(bytes, req);
    if (s.ok()) s = etcd::CheckTxnRequest(*req, max_txn_ops_);
    if (!s.ok()) return Refused(s);
    if (!etcd::IsReadOnly(*req)) {
      Apply({cmd});
      return;
    }
    // Served from a view, as the service does; through the log it must
    // answer the same (a write txn that writes nothing).
    Answer read;
    Read([&](const mvcc::Reader& v) { return AnswerOf(etcd::ReadOnlyTxn(v, *req)); },
         "read-only txn " + req->ShortDebugString(), [&](const Answer& a) { read = a; });
    if (!in_.Bool()) return;
    const int64_t before = model_.revision();
    std::vector<Answer> got = Apply({cmd});
    CHECK_EQ(model_.revision(), before) << "a read-only txn wrote";
    if (read.status.ok()) {
      CHECK(got[0].status.ok()) << "a read-only txn through the log failed: " << got[0].status
                                << ", from a view " << read.text;
      kvpb::WriteResult wr;
      CHECK(wr.ParseFromString(got[0].bytes));
      CHECK(wr.etcd().txn().SerializeAsString() == read.bytes)
          << "a read-only txn through the log answered " << wr.etcd().txn().ShortDebugString()
          << ", from a view " << read.text;
    } else if (!mvcc::IsTooLarge(read.status)) {  // the log's reads are not bounded
      CHECK(got[0].status == read.status) << got[0].status << " vs " << read.status;
    }
  }

  void SendCompaction() {
    CompactionRequest c;
    c.set_revision(Revision());
    c.set_physical(in_.Bool());
    kvpb::Command cmd;
    if (!Parse(Encode(c), cmd.mutable_etcd()->mutable_compaction()).ok()) return;
    std::vector<Answer> got = Apply({cmd});
    if (got[0].status.ok() && cmd.etcd().compaction().physical()) {
      // The service waits until the history is removed.
      for (int n = 0; n < 1000; ++n) {
        absl::StatusOr<bool> more = sm_->mvcc()->CompactStep(1 + n);
        CHECK(more.ok()) << more.status();
        if (!*more) break;
      }
      CHECK_EQ(sm_->mvcc()->physically_compacted(), model_.compact_revision());
    }
  }

  // Several writes, each checked as the service checks it, in one Apply;
  // native writes among them.
  void SendBatch() {
    std::vector<kvpb::Command> cmds;
    for (int n = 2 + in_.U8() % 3; n > 0; --n) {
      kvpb::Command cmd;
      switch (in_.U8() % 7) {
        case 6: {  // etcd's alarms: NOSPACE refuses puts and writing txns
          etcdserverpb::AlarmRequest* a = cmd.mutable_alarm();
          a->set_action(static_cast<etcdserverpb::AlarmRequest::AlarmAction>(in_.U8() % 4));
          a->set_memberid(in_.Range(0, 2));
          a->set_alarm(static_cast<etcdserverpb::AlarmType>(in_.U8() % 4));
          break;
        }
        case 0:
          *cmd.mutable_etcd()->mutable_put() = MakePut();
          if (!etcd::CheckPutRequest(cmd.etcd().put()).ok()) continue;
          break;
        case 1:
          *cmd.mutable_etcd()->mutable_delete_range() = MakeDeleteRange();
          if (!etcd::CheckDeleteRangeRequest(cmd.etcd().delete_range()).ok()) continue;
          break;
        case 2:
          *cmd.mutable_etcd()->mutable_txn() = MakeTxn(0);
          if (!etcd::CheckTxnRequest(cmd.etcd().txn(), max_txn_ops_).ok()) continue;
          break;
        case 3:
          cmd.mutable_etcd()->mutable_compaction()->set_revision(Revision());
          break;
        case 4:
          cmd.mutable_put()->set_key(Key());
          cmd.mutable_put()->set_value(Value());
          break;
        default:
          cmd.mutable_delete_()->set_key(Key());
          break;
      }
      cmds.push_back(std::move(cmd));
    }
    if (!cmds.empty()) Apply(cmds);
  }

  // A request refused before the log: nothing changes.
  void Refused(const absl::Status& s) {
    if (Trace()) fprintf(stderr, "refused: %s\n", s.ToString().c_str());
    CHECK(!s.ok());
    CHECK(etcd::IsEtcdError(s) || s.code() == absl::StatusCode::kInvalidArgument) << s;
    CHECK_EQ(sm_->mvcc()->revision(), model_.revision());
  }

  // ---- both stores ----

  // `read` against a bounded view of each; the answers must be the same.
  template <typename ReadFn, typename Then>
  void Read(const ReadFn& read, const std::string& what, const Then& then) {
    std::unique_ptr<mvcc::View> view = sm_->mvcc()->Read();
    std::unique_ptr<mvcc::Reader> want_view = model_.Read();
    const Answer got = read(mvcc::BoundedReader(*view, max_range_bytes_));
    const Answer want = read(mvcc::BoundedReader(*want_view, max_range_bytes_));
    CheckSame(got, want, what);
    then(got);
  }

  // etcd's Range rules that hold whatever the store holds.
  void CheckRangeAnswer(const RangeRequest& req, const Answer& a) {
    if (!a.status.ok()) return;
    etcdserverpb::RangeResponse r;
    CHECK(r.ParseFromString(a.bytes));
    CHECK_EQ(r.header().revision(), model_.revision());
    CHECK_GE(r.count(), r.kvs_size()) << a.text;
    if (req.limit() > 0) CHECK_LE(r.kvs_size(), req.limit()) << a.text;
    if (r.more()) CHECK_GT(req.limit(), 0) << a.text;
    if (req.count_only()) CHECK_EQ(r.kvs_size(), 0) << a.text;
    const int64_t at = req.revision() > 0 ? req.revision() : model_.revision();
    for (const mvccpb::KeyValue& kv : r.kvs()) {
      if (req.keys_only()) CHECK(kv.value().empty()) << a.text;
      CHECK_LE(kv.mod_revision(), at) << a.text;
      CHECK_LE(kv.create_revision(), kv.mod_revision()) << a.text;
      CHECK_GE(kv.version(), 1) << a.text;
      CHECK_GE(kv.key(), req.key()) << a.text;
      if (req.range_end().empty()) CHECK_EQ(kv.key(), req.key()) << a.text;
      if (!req.range_end().empty() && req.range_end() != kZero) {
        CHECK_LT(kv.key(), req.range_end()) << a.text;
      }
      if (req.min_mod_revision() != 0) CHECK_GE(kv.mod_revision(), req.min_mod_revision());
      if (req.max_mod_revision() != 0) CHECK_LE(kv.mod_revision(), req.max_mod_revision());
      if (req.min_create_revision() != 0) {
        CHECK_GE(kv.create_revision(), req.min_create_revision());
      }
      if (req.max_create_revision() != 0) {
        CHECK_LE(kv.create_revision(), req.max_create_revision());
      }
    }
    // The order asked for: by key when unsorted; a target other than KEY
    // with no order sorts ascending.
    RangeRequest::SortOrder order = req.sort_order();
    if (req.sort_target() != RangeRequest::KEY && order == RangeRequest::NONE) {
      order = RangeRequest::ASCEND;
    }
    auto sort_key = [&](const mvccpb::KeyValue& kv) -> std::string {
      switch (req.sort_target()) {
        case RangeRequest::VERSION:
          return absl::StrCat(absl::Hex(kv.version(), absl::kZeroPad16));
        case RangeRequest::CREATE:
          return absl::StrCat(absl::Hex(kv.create_revision(), absl::kZeroPad16));
        case RangeRequest::MOD:
          return absl::StrCat(absl::Hex(kv.mod_revision(), absl::kZeroPad16));
        default:
          return kv.key();  // VALUE: the values are not all there (keys_only)
      }
    };
    if (req.sort_target() == RangeRequest::VALUE) return;
    for (int i = 1; i < r.kvs_size(); ++i) {
      const std::string prev = sort_key(r.kvs(i - 1)), cur = sort_key(r.kvs(i));
      if (order == RangeRequest::DESCEND) {
        CHECK_GE(prev, cur) << "out of order: " << a.text;
      } else {
        CHECK_LE(prev, cur) << "out of order: " << a.text;
      }
      if (req.sort_target() == RangeRequest::KEY) CHECK_NE(prev, cur) << a.text;
    }
  }

  // Writes `cmds` as one batch of log entries into the state machine, and
  // one by one into the model; each answer must be the same.
  std::vector<Answer> Apply(const std::vector<kvpb::Command>& cmds) {
    std::vector<raftpb::Entry> entries;
    for (const kvpb::Command& cmd : cmds) {
      raftpb::Entry e;
      e.set_index(next_index_++);
      e.set_term(1);
      e.set_data(cmd.SerializeAsString());
      entries.push_back(std::move(e));
    }
    absl::StatusOr<std::vector<ApplyResult>> got = sm_->Apply(entries);
    CHECK(got.ok()) << got.status();
    CHECK_EQ(got->size(), cmds.size());
    std::vector<Answer> answers;
    for (size_t i = 0; i < cmds.size(); ++i) {
      const ApplyResult& res = (*got)[i];
      CHECK_EQ(res.index, entries[i].index());
      const int64_t before = model_.revision();
      const Answer want = AnswerOf(ModelApply(cmds[i], entries[i].index()));
      const Answer have = AnswerOf(res.result);
      if (cmds[i].has_alarm()) {  // the alarm store's own rules; the model follows them
        const etcdserverpb::AlarmRequest& a = cmds[i].alarm();
        if (have.status.ok() && a.alarm() == etcdserverpb::NOSPACE) {
          if (a.action() == etcdserverpb::AlarmRequest::ACTIVATE) nospace_.insert(a.memberid());
          if (a.action() == etcdserverpb::AlarmRequest::DEACTIVATE) nospace_.erase(a.memberid());
        }
        if (Trace()) fprintf(stderr, "alarm %s -> %s\n", a.ShortDebugString().c_str(),
                             have.status.ToString().c_str());
        answers.push_back(have);
        continue;
      }
      if (!cmds[i].has_etcd() && !want.status.ok()) {  // a native write's own words
        CHECK(have.status.code() == want.status.code()) << have.status << " vs " << want.status;
      } else {
        CheckSame(have, want, "entry " + cmds[i].ShortDebugString());
      }
      CheckWriteAnswer(cmds[i], want, before);
      answers.push_back(have);
    }
    CHECK_EQ(sm_->applied_index(), entries.back().index());
    CHECK_EQ(sm_->etcd_alarms().Active(etcdserverpb::NOSPACE), !nospace_.empty());
    CHECK_EQ(sm_->mvcc()->revision(), model_.revision());
    CHECK_EQ(sm_->mvcc()->compact_revision(), model_.compact_revision());
    last_batch_ = std::move(entries);
    return answers;
  }

  // A write's revision rules: a failed write changes nothing; a put takes
  // one revision; a header carries the revision after the write.
  void CheckWriteAnswer(const kvpb::Command& cmd, const Answer& a, int64_t before) {
    if (!a.status.ok()) {
      CHECK_EQ(model_.revision(), before) << "a refused write changed the store";
      return;
    }
    if (!cmd.has_etcd()) return;
    kvpb::WriteResult wr;
    CHECK(wr.ParseFromString(a.bytes));
    const kvpb::EtcdWriteResult& r = wr.etcd();
    switch (cmd.etcd().request_case()) {
      case kvpb::EtcdWrite::kPut:
        CHECK_EQ(model_.revision(), before + 1);
        CHECK_EQ(r.put().header().revision(), before + 1);
        break;
      case kvpb::EtcdWrite::kDeleteRange:
        CHECK_EQ(model_.revision(), before + (r.delete_range().deleted() > 0 ? 1 : 0));
        CHECK_EQ(r.delete_range().header().revision(), model_.revision());
        break;
      case kvpb::EtcdWrite::kTxn:
        CHECK_LE(model_.revision(), before + 1);
        CHECK_EQ(r.txn().header().revision(), model_.revision());
        break;
      case kvpb::EtcdWrite::kCompaction:
        CHECK_EQ(model_.compact_revision(), cmd.etcd().compaction().revision());
        break;
      default:
        break;
    }
  }

  // What the state machine's ExecuteEtcd (and Execute, for native writes)
  // does, on the model: one write transaction, kept when it succeeds.
  absl::StatusOr<kvpb::WriteResult> ModelApply(const kvpb::Command& cmd, uint64_t index) {
    kvpb::WriteResult out;
    if (cmd.has_alarm()) return out;  // not called: Apply follows the alarm store
    if (cmd.has_put() || cmd.has_delete_()) {  // native
      const std::string& key = cmd.has_put() ? cmd.put().key() : cmd.delete_().key();
      if (key.empty() || key.size() > Limits::kMaxKeyBytes) {
        return absl::InvalidArgumentError("key");
      }
      // NOSPACE bounds the store whichever API writes; deletes go on.
      if (cmd.has_put() && !nospace_.empty()) return etcd::EtcdError(etcd::Error::kNoSpace);
      std::unique_ptr<mvcc::ModelTxn> txn = model_.Write(index);
      if (cmd.has_put()) {
        CHECK(txn->Put(key, cmd.put().value(), 0, mvcc::PrevKv::kSkip).ok());
        out.mutable_put()->set_version(index);
      } else {
        auto gone = txn->DeleteRange(key, "");
        CHECK(gone.ok());
        out.mutable_delete_()->set_deleted(!gone->empty());
      }
      txn->Commit();
      return out;
    }
    const kvpb::EtcdWrite& w = cmd.etcd();
    kvpb::EtcdWriteResult* r = out.mutable_etcd();
    if (!nospace_.empty() && (w.has_put() || (w.has_txn() && !etcd::IsReadOnly(w.txn())))) {
      return etcd::EtcdError(etcd::Error::kNoSpace);
    }
    if (w.has_compaction()) {
      absl::Status s = etcd::FromMvcc(model_.Compact(w.compaction().revision()));
      if (!s.ok()) return s;
      r->mutable_compaction()->mutable_header()->set_revision(model_.revision());
      return out;
    }
    std::unique_ptr<mvcc::ModelTxn> txn = model_.Write(index);
    const etcd::LeaseExists no_leases;
    absl::Status s;
    if (w.has_put()) {
      auto resp = etcd::Put(txn.get(), w.put(), no_leases);
      if (resp.ok()) *r->mutable_put() = *std::move(resp);
      s = resp.status();
    } else if (w.has_delete_range()) {
      auto resp = etcd::DeleteRange(txn.get(), w.delete_range());
      if (resp.ok()) *r->mutable_delete_range() = *std::move(resp);
      s = resp.status();
    } else if (w.has_txn()) {
      auto resp = etcd::Txn(txn.get(), w.txn(), no_leases);
      if (resp.ok()) *r->mutable_txn() = *std::move(resp);
      s = resp.status();
    } else {
      return absl::InvalidArgumentError("etcd write without a request");
    }
    if (!s.ok()) return s;
    txn->Commit();
    return out;
  }

  // The last batch again, as after a restart that re-applies entries the
  // state machine already holds: nothing happens.
  void Replay() {
    if (last_batch_.empty()) return;
    absl::StatusOr<std::vector<ApplyResult>> got = sm_->Apply(last_batch_);
    CHECK(got.ok()) << got.status();
    CHECK(got->empty()) << "entries applied before were applied again";
    CHECK_EQ(sm_->mvcc()->revision(), model_.revision());
  }

  // Removes some unreachable history: every read, and the state's hash,
  // stay as they were.
  void CompactStep() {
    const size_t max_records = in_.Range(1, 16);
    const uint64_t before = Hash();
    absl::StatusOr<bool> more = sm_->mvcc()->CompactStep(max_records);
    CHECK(more.ok()) << more.status();
    CHECK_EQ(Hash(), before) << "a compaction step changed the state's hash";
    if (!*more) {
      CHECK_EQ(sm_->mvcc()->physically_compacted(), model_.compact_revision());
    }
  }

  uint64_t Hash() {
    absl::StatusOr<std::unique_ptr<storage::DataSnapshot>> view = store_.OpenDataSnapshot();
    CHECK(view.ok()) << view.status();
    absl::StatusOr<uint64_t> h = KvStateMachine::StateHash(**view);
    CHECK(h.ok()) << h.status();
    return *h;
  }

  void Restart() {
    sm_.reset();
    absl::StatusOr<std::unique_ptr<KvStateMachine>> sm = KvStateMachine::Open(&store_);
    CHECK(sm.ok()) << sm.status();
    sm_ = std::move(*sm);
    next_index_ = store_.applied_index() + 1;
    CHECK_EQ(sm_->etcd_alarms().Active(etcdserverpb::NOSPACE), !nospace_.empty());
  }

  FuzzInput& in_;
  storage::LogStore& store_;
  std::unique_ptr<KvStateMachine> sm_;
  mvcc::Model model_;
  uint64_t next_index_ = 1;
  std::vector<raftpb::Entry> last_batch_;
  std::set<uint64_t> nospace_;  // members whose NOSPACE alarm is active
  int64_t max_txn_ops_ = etcd::kDefaultMaxTxnOps;
  size_t max_request_bytes_ = 0;
  int64_t max_range_bytes_ = 0;
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
