// bench: closed-loop load generator for raftkv and, for comparison, etcd.
//
//   bazel build -c opt //tools:bench
//   bazel-bin/tools/bench --target=raftkv --endpoints=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
//       --op=put --workers=1,16,64 --duration=20s --server_pids=$(pgrep -d, -x server)   (one line)
//   bazel-bin/tools/bench --target=etcd --endpoints=127.0.0.1:2379,... --op=get --workers=64
//
// W workers each keep one request outstanding (closed loop) over C gRPC
// connections (--connections, default min(W, 16); each a channel of its own
// with a local subchannel pool, so really C TCP connections). Writes go to
// the leader (found with raftkv's Admin.Status / etcd's Maintenance.Status;
// a raftkv "not leader" answer redirects the worker). Reads go to the leader
// too, or spread over every endpoint with --read_from=all.
//
// How it talks to raftkv (--api): KV.Batch streams (batch), one unary
// native call per op (unary), or etcd's KV API (etcd): then the calls and
// messages are exactly those it sends to etcd, so rows compare like for like.
//
// Ops: put, get (linearizable), sget (serializable), mix (--read_fraction
// reads, linearizable unless --mix_serializable), txn (compare-and-put).
// Keys are --key_bytes wide, zero-padded decimal numbers drawn uniformly from
// [--key_offset, --key_offset + --keys); values are --value_bytes of
// incompressible printable bytes. --preload first writes every key once (not
// measured) so that reads find something; --preload_only stops there.
//
// txn: each worker owns the keys k with k % workers == its index (no two
// workers contend) and remembers each key's last revision; an op is etcd's
// Txn(if mod_revision(key) == known then put(key) else range(key)), or on
// raftkv's native API CompareAndSwap(key, expected_version = known). A key
// not yet seen is expected absent (0); a failed compare (counted in
// "txn_failed") teaches the worker the current revision. Each run of a
// --workers list uses fresh keys (run i from --key_offset + i * --keys), so
// on keys nobody wrote before every compare holds.
//
// --compact_during (put, get, txn): a quarter into the measured window an
// etcd Compact(physical) at the then-latest revision runs (etcd's API, on
// either target), and the latencies of ops completing while it runs are
// reported apart from the others. --history=N first compacts away what
// earlier runs left, then writes N puts round-robin over the keys (not
// measured), so each system has the same history to remove.
//
// After --warmup (not measured) it measures --duration: requests completing in
// that window count. Per run it prints a table row and a JSON line (starting
// with '{'): ops/s, latency percentiles from a log-bucketed histogram (1/128
// relative precision), errors by kind, and CPU seconds during the window of
// each --server_pids process and of the generator itself.
//
// The generator is one process with --threads completion-queue threads
// (default 1) driving async gRPC calls, so it stays cheap on a small machine.
//
// TLS: --cacert, --cert, --key (etcdctl's names, as kvctl) make every
// channel, to raftkv or etcd, a TLS one presenting that client certificate.
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/tls_credentials.h"
#include "gflags/gflags.h"
#include "grpcpp/alarm.h"
#include "grpcpp/grpcpp.h"
#include "proto/admin.grpc.pb.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "proto/kv.grpc.pb.h"
#include "tools/histogram.h"
#include "tools/proc_cpu.h"

DEFINE_string(target, "raftkv", "raftkv | etcd");
DEFINE_string(endpoints, "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003",
              "The cluster's client endpoints, host:port, comma-separated.");
DEFINE_string(op, "put", "put | get (linearizable) | sget (serializable) | mix | txn");
DEFINE_double(read_fraction, 0.9, "mix: the share of operations that are reads.");
DEFINE_bool(mix_serializable, false, "mix: serializable reads instead of linearizable.");
DEFINE_string(workers, "64", "Comma-separated worker counts; one run each.");
DEFINE_int32(connections, 0, "gRPC connections per run (0: min(workers, 16)).");
DEFINE_string(duration, "10s", "Measured time per run.");
DEFINE_string(warmup, "2s", "Unmeasured load before each run's measurement.");
DEFINE_int32(key_bytes, 8, "Key size (zero-padded decimal).");
DEFINE_int32(value_bytes, 256, "Value size.");
DEFINE_uint64(keys, 100000,
              "Key space: keys are drawn uniformly from [key_offset, key_offset + keys).");
DEFINE_uint64(key_offset, 0, "The first key number (see --keys; txn: see the top).");
DEFINE_bool(preload, false, "Before the runs, write every key once (not measured).");
DEFINE_bool(preload_only, false, "With --preload: write every key once, measure nothing.");
DEFINE_bool(compact_during, false,
            "Run an etcd Compact(physical) of the latest revision a quarter into each "
            "measured window; report latencies during it apart.");
DEFINE_uint64(history, 0,
              "Before the runs: compact (physical) at the latest revision, then write this "
              "many puts round-robin over the keys (not measured).");
DEFINE_string(compact_timeout, "600s", "Deadline of each Compact call.");
DEFINE_string(read_from, "leader", "leader | all: where reads go.");
DEFINE_bool(exactly_once, true,
            "raftkv: puts carry a client session (id, seq) as the client library sends "
            "them; false: client_id 0, no session.");
DEFINE_string(server_pids, "", "Comma-separated pids whose CPU use is measured per run.");
DEFINE_string(timeout, "5s", "Deadline of each request.");
DEFINE_int32(threads, 1, "Completion-queue threads in the generator.");
DEFINE_string(label, "", "Free text copied into the JSON line (e.g. a matrix row name).");
DEFINE_string(wait_for_leader, "0s", "Keep looking for a leader this long before giving up.");
DEFINE_bool(header, true, "Print the table header before the first row.");
DEFINE_string(api, "batch",
              "raftkv: batch (KV.Batch streams, one per connection, as the client library "
              "sends) | unary (one gRPC call per op) | etcd (etcd's KV API, one unary call "
              "per op, exactly as to etcd).");
DEFINE_string(cacert, "", "TLS: the CA that signed the servers' certificates (PEM).");
DEFINE_string(cert, "", "TLS: the client certificate to present (PEM).");
DEFINE_string(key, "", "TLS: its private key (PEM).");

namespace {

using Clock = std::chrono::steady_clock;
using raftkv::tools::Histogram;
namespace kvpb = raftkv::kvpb;

enum class Target { kRaftkv, kEtcd };
enum class Op { kPut, kGet, kSget, kMix, kTxn };

struct Stubs {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<kvpb::KV::Stub> raftkv;
  std::unique_ptr<etcdserverpb::KV::Stub> etcd;
};

// Channels by (address, index): index i of an address is its own TCP connection.
class Pool {
 public:
  explicit Pool(std::shared_ptr<grpc::ChannelCredentials> credentials)
      : credentials_(std::move(credentials)) {}

  Stubs* Get(const std::string& addr, int index) {
    absl::MutexLock l(&mu_);
    auto& s = stubs_[{addr, index}];
    if (!s) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt("grpc.channel_id", index);  // distinct args: never shared
      s = std::make_unique<Stubs>();
      s->channel = grpc::CreateCustomChannel(addr, credentials_, args);
      s->raftkv = kvpb::KV::NewStub(s->channel);
      s->etcd = etcdserverpb::KV::NewStub(s->channel);
    }
    return s.get();
  }
  bool ConnectAll(absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    const auto deadline = std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout);
    for (auto& [k, s] : stubs_) {
      if (!s->channel->WaitForConnected(deadline)) return false;
    }
    return true;
  }

 private:
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  absl::Mutex mu_;
  std::map<std::pair<std::string, int>, std::unique_ptr<Stubs>> stubs_ ABSL_GUARDED_BY(mu_);
};

// Stats of one completion-queue thread, merged at the end of a run.
struct Stats {
  Histogram latency_ns;
  uint64_t ops = 0, reads = 0, writes = 0, not_found = 0, errors = 0, redirects = 0;
  uint64_t txn_failed = 0;  // txn: compares that did not hold
  // --compact_during: measured ops completing while the Compact ran, and the others.
  Histogram during_ns, outside_ns;
  std::map<std::string, uint64_t> error_kinds;
  std::vector<std::string> first_errors;
  void Merge(const Stats& o) {
    latency_ns.Merge(o.latency_ns);
    during_ns.Merge(o.during_ns);
    outside_ns.Merge(o.outside_ns);
    ops += o.ops, reads += o.reads, writes += o.writes, not_found += o.not_found;
    errors += o.errors, redirects += o.redirects, txn_failed += o.txn_failed;
    for (const auto& [k, n] : o.error_kinds) error_kinds[k] += n;
    for (const auto& e : o.first_errors) {
      if (first_errors.size() < 5) first_errors.push_back(e);
    }
  }
};

struct RunConfig {
  Target target = Target::kRaftkv;
  Op op = Op::kPut;
  int workers = 1, connections = 1;
  // Write `preload_ops` puts over the keys in order (key_base + i % keys),
  // then stop; nothing measured.
  bool preload = false;
  uint64_t preload_ops = 0;
  uint64_t key_base = 0;  // keys are key_base + [0, keys)
  Clock::duration warmup{}, duration{};
  Clock::time_point measure_from, end;  // set when the run starts
  std::string leader;
  std::vector<std::string> endpoints;
  std::string value_pool;  // values are slices of this
  absl::Duration timeout;
  bool batch = false;  // raftkv: ops over KV.Batch streams, not unary calls
  bool etcd_api = false;  // etcd's KV API (always for etcd; --api=etcd for raftkv)
  // --compact_during: set while the Compact runs (ops completing then count apart).
  const std::atomic<bool>* compacting = nullptr;
  // Every channel's: plaintext, or TLS from --cacert/--cert/--key.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  bool tls = false;
};

// One request in flight.
struct Call {
  grpc::ClientContext ctx;
  grpc::Status status;
  bool read = false;
  bool txn = false;
  uint64_t key = 0;  // the key's number
  Clock::time_point start;
  kvpb::PutResponse kput;
  kvpb::GetResponse kget;
  kvpb::CasResponse kcas;
  etcdserverpb::PutResponse eput;
  etcdserverpb::RangeResponse erange;
  etcdserverpb::TxnResponse etxn;
  std::unique_ptr<grpc::ClientAsyncResponseReader<kvpb::PutResponse>> kput_r;
  std::unique_ptr<grpc::ClientAsyncResponseReader<kvpb::GetResponse>> kget_r;
  std::unique_ptr<grpc::ClientAsyncResponseReader<kvpb::CasResponse>> kcas_r;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::PutResponse>> eput_r;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::RangeResponse>> erange_r;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::TxnResponse>> etxn_r;
};

// What a completed op tells the worker.
struct Outcome {
  bool found = false;          // a read found its key
  bool txn_succeeded = false;  // txn: the compare held
  int64_t revision = 0;        // txn: the key's revision (etcd) / version (native) now
};

struct Worker;
struct Stream;

// A completion-queue tag: what finished.
struct Event {
  enum Kind { kCall, kStreamStart, kStreamRead, kStreamWrite, kStreamFinish, kTick };
  Kind kind;
  Worker* worker = nullptr;
  Stream* stream = nullptr;
};

struct Worker {
  int id = 0;
  Stubs* write = nullptr;
  Stubs* read = nullptr;
  uint64_t rng = 0;
  uint64_t client_id = 0, seq = 0;
  // txn: the last revision (etcd) or version (native) seen of each owned
  // key, by key number; absent: expected not to exist (0).
  std::map<uint64_t, int64_t> known;
  std::unique_ptr<Call> call;
  grpc::Alarm alarm;
  bool backing_off = false;
  bool done = false;
  Event event{Event::kCall, this, nullptr};
};

// raftkv's KV.Batch stream over one connection, as the client library uses
// it: ops queued while a write is in flight go out together in the next.
struct Stream {
  explicit Stream(Stubs* s) : stubs(s) {}
  Stubs* stubs;
  grpc::ClientContext ctx;
  grpc::Status final_status;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<kvpb::BatchRequest, kvpb::BatchResponse>> rw;
  kvpb::BatchRequest queued, writing;
  kvpb::BatchResponse in;
  bool started = false, writing_now = false, dispatching = false, broken = false;
  std::map<uint64_t, Worker*> waiting;  // op id -> its worker
  Event start{Event::kStreamStart, nullptr, this};
  Event read{Event::kStreamRead, nullptr, this};
  Event write{Event::kStreamWrite, nullptr, this};
  Event finish{Event::kStreamFinish, nullptr, this};
};

uint64_t Next(uint64_t* s) {  // xorshift64*
  *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

std::string KeyOf(uint64_t n) {
  return absl::StrFormat("%0*d", FLAGS_key_bytes, n);
}

class Driver {
 public:
  Driver(const RunConfig& cfg, Pool* pool, std::atomic<uint64_t>* next_key)
      : cfg_(cfg), pool_(pool), next_key_(next_key) {}

  // Runs `workers` on the calling thread until the run ends.
  void Run(std::vector<Worker*> workers) {
    live_ = workers.size();
    for (Worker* w : workers) Start(w);
    if (cfg_.batch) ArmTick();
    void* tag;
    bool ok;
    while (live_ > 0 && cq_.Next(&tag, &ok)) {
      Event* e = static_cast<Event*>(tag);
      switch (e->kind) {
        case Event::kCall: {
          Worker* w = e->worker;
          if (w->backing_off) {
            w->backing_off = false;
            Start(w);
          } else {
            CompleteCall(w);
          }
          break;
        }
        case Event::kStreamStart: OnStreamStart(e->stream, ok); break;
        case Event::kStreamRead: OnStreamRead(e->stream, ok); break;
        case Event::kStreamWrite: OnStreamWrite(e->stream, ok); break;
        case Event::kStreamFinish: break;
        case Event::kTick: OnTick(); break;
      }
    }
    for (auto& s : streams_) s->ctx.TryCancel();
    cq_.Shutdown();
    while (cq_.Next(&tag, &ok)) {
    }
  }

  Stats stats;

 private:
  void Start(Worker* w) {
    const Clock::time_point now = Clock::now();
    uint64_t k;
    bool read;
    bool txn = false;
    if (cfg_.preload) {
      const uint64_t i = next_key_->fetch_add(1);
      if (i >= cfg_.preload_ops) {
        return Done(w);
      }
      k = cfg_.key_base + i % FLAGS_keys;
      read = false;
    } else {
      if (now >= cfg_.end) return Done(w);
      txn = cfg_.op == Op::kTxn;
      if (txn) {  // one of this worker's keys: id + workers * j
        const uint64_t owned = (FLAGS_keys - w->id + cfg_.workers - 1) / cfg_.workers;
        k = cfg_.key_base + w->id + cfg_.workers * (Next(&w->rng) % owned);
      } else {
        k = cfg_.key_base + Next(&w->rng) % FLAGS_keys;
      }
      read = cfg_.op == Op::kGet || cfg_.op == Op::kSget ||
             (cfg_.op == Op::kMix &&
              static_cast<double>(Next(&w->rng) % 1000000) < FLAGS_read_fraction * 1e6);
    }
    const bool serializable =
        cfg_.op == Op::kSget || (cfg_.op == Op::kMix && FLAGS_mix_serializable);
    auto c = std::make_unique<Call>();
    c->read = read;
    c->txn = txn;
    c->key = k;
    c->start = now;
    const std::string key = KeyOf(k);
    int64_t expected = 0;
    if (txn) {
      auto it = w->known.find(k);
      if (it != w->known.end()) expected = it->second;
    }
    if (cfg_.target == Target::kRaftkv && cfg_.batch) {
      kvpb::RequestOp op;
      op.set_id(++next_op_id_);
      op.set_timeout_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(cfg_.timeout)));
      if (read) {
        op.mutable_get()->set_key(key);
        op.mutable_get()->set_serializable(serializable);
      } else if (txn) {
        FillCas(w, key, expected, op.mutable_cas());
      } else {
        FillPut(w, key, op.mutable_put());
      }
      w->call = std::move(c);
      Send(StreamFor(read ? w->read : w->write), w, std::move(op));
      return;
    }
    c->ctx.set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoNanoseconds(cfg_.timeout));
    void* tag = &w->event;
    if (!cfg_.etcd_api) {
      if (txn) {
        kvpb::CasRequest req;
        FillCas(w, key, expected, &req);
        c->kcas_r = w->write->raftkv->AsyncCompareAndSwap(&c->ctx, req, &cq_);
        c->kcas_r->Finish(&c->kcas, &c->status, tag);
      } else if (read) {
        kvpb::GetRequest req;
        req.set_key(key);
        req.set_serializable(serializable);
        c->kget_r = w->read->raftkv->AsyncGet(&c->ctx, req, &cq_);
        c->kget_r->Finish(&c->kget, &c->status, tag);
      } else {
        kvpb::PutRequest req;
        FillPut(w, key, &req);
        c->kput_r = w->write->raftkv->AsyncPut(&c->ctx, req, &cq_);
        c->kput_r->Finish(&c->kput, &c->status, tag);
      }
    } else {
      if (txn) {
        etcdserverpb::TxnRequest req;
        etcdserverpb::Compare* cmp = req.add_compare();
        cmp->set_result(etcdserverpb::Compare::EQUAL);
        cmp->set_target(etcdserverpb::Compare::MOD);
        cmp->set_key(key);
        cmp->set_mod_revision(expected);
        etcdserverpb::PutRequest* put = req.add_success()->mutable_request_put();
        put->set_key(key);
        put->set_value(Value(w));
        req.add_failure()->mutable_request_range()->set_key(key);
        c->etxn_r = w->write->etcd->AsyncTxn(&c->ctx, req, &cq_);
        c->etxn_r->Finish(&c->etxn, &c->status, tag);
      } else if (read) {
        etcdserverpb::RangeRequest req;
        req.set_key(key);
        req.set_serializable(serializable);
        c->erange_r = w->read->etcd->AsyncRange(&c->ctx, req, &cq_);
        c->erange_r->Finish(&c->erange, &c->status, tag);
      } else {
        etcdserverpb::PutRequest req;
        req.set_key(key);
        req.set_value(Value(w));
        c->eput_r = w->write->etcd->AsyncPut(&c->ctx, req, &cq_);
        c->eput_r->Finish(&c->eput, &c->status, tag);
      }
    }
    w->call = std::move(c);
  }

  void Done(Worker* w) {
    if (w->done) return;
    w->done = true;
    if (live_ > 0) --live_;
  }

  void FillHeader(Worker* w, kvpb::WriteHeader* h) {
    if (FLAGS_exactly_once) {
      ++w->seq;
      h->set_client_id(w->client_id);
      h->set_seq(w->seq);
      h->set_first_incomplete(w->seq);
    }
  }

  void FillPut(Worker* w, const std::string& key, kvpb::PutRequest* req) {
    FillHeader(w, req->mutable_header());
    req->set_key(key);
    req->set_value(Value(w));
  }

  void FillCas(Worker* w, const std::string& key, int64_t expected, kvpb::CasRequest* req) {
    FillHeader(w, req->mutable_header());
    req->set_key(key);
    req->set_expected_version(static_cast<uint64_t>(expected));
    req->set_new_value(Value(w));
  }

  std::string Value(Worker* w) {
    const size_t spare = cfg_.value_pool.size() - FLAGS_value_bytes;
    return cfg_.value_pool.substr(Next(&w->rng) % (spare + 1), FLAGS_value_bytes);
  }

  // --- unary calls
  void CompleteCall(Worker* w) {
    Call* c = w->call.get();
    std::string leader_addr;
    if (c->status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      const auto& md = c->ctx.GetServerTrailingMetadata();
      auto it = md.find("raftkv-leader-addr");
      if (it != md.end()) leader_addr.assign(it->second.data(), it->second.size());
    }
    Outcome o;
    if (!cfg_.etcd_api) {
      o.found = c->kget.found();
      o.txn_succeeded = c->kcas.succeeded();
      o.revision = static_cast<int64_t>(c->kcas.succeeded() ? c->kcas.version()
                                                            : c->kcas.current().version());
    } else {
      o.found = c->erange.kvs_size() > 0;
      o.txn_succeeded = c->etxn.succeeded();
      if (c->etxn.succeeded()) {
        o.revision = c->etxn.header().revision();  // the put's mod_revision
      } else if (c->etxn.responses_size() > 0 &&
                 c->etxn.responses(0).response_range().kvs_size() > 0) {
        o.revision = c->etxn.responses(0).response_range().kvs(0).mod_revision();
      }
    }
    Complete(w, c->status.error_code(), c->status.error_message(), leader_addr, o);
  }

  // --- Batch streams
  Stream* StreamFor(Stubs* stubs) {
    Stream*& s = stream_of_[stubs];
    if (s == nullptr || s->broken) {
      streams_.push_back(std::make_unique<Stream>(stubs));
      s = streams_.back().get();
      s->rw = stubs->raftkv->AsyncBatch(&s->ctx, &cq_, &s->start);
    }
    return s;
  }

  void Send(Stream* s, Worker* w, kvpb::RequestOp op) {
    s->waiting[op.id()] = w;
    *s->queued.add_ops() = std::move(op);
    Flush(s);
  }

  void Flush(Stream* s) {
    if (!s->started || s->writing_now || s->dispatching || s->broken ||
        s->queued.ops_size() == 0) {
      return;
    }
    s->writing.Swap(&s->queued);
    s->queued.Clear();
    s->writing_now = true;
    s->rw->Write(s->writing, &s->write);
  }

  void OnStreamStart(Stream* s, bool ok) {
    if (!ok) return Break(s, "stream did not start");
    s->started = true;
    s->rw->Read(&s->in, &s->read);
    Flush(s);
  }

  void OnStreamWrite(Stream* s, bool ok) {
    s->writing_now = false;
    if (!ok) return Break(s, "stream write failed");
    Flush(s);
  }

  void OnStreamRead(Stream* s, bool ok) {
    if (!ok) return Break(s, "stream ended");
    // Workers answered here start their next op; hold the write until all
    // of them have queued, so they share it.
    s->dispatching = true;
    for (const kvpb::ResponseOp& r : s->in.ops()) {
      auto it = s->waiting.find(r.id());
      if (it == s->waiting.end()) continue;
      Worker* w = it->second;
      s->waiting.erase(it);
      Outcome o;
      o.found = r.get().found();
      o.txn_succeeded = r.cas().succeeded();
      o.revision = static_cast<int64_t>(r.cas().succeeded() ? r.cas().version()
                                                            : r.cas().current().version());
      Complete(w, static_cast<grpc::StatusCode>(r.code()), r.message(), r.leader_addr(), o);
    }
    s->dispatching = false;
    s->rw->Read(&s->in, &s->read);
    Flush(s);
  }

  // Fails every op waiting on `s`; their workers back off and start over
  // on a new stream.
  void Break(Stream* s, const std::string& why) {
    if (s->broken) return;
    s->broken = true;
    s->ctx.TryCancel();
    s->rw->Finish(&s->final_status, &s->finish);
    auto waiting = std::move(s->waiting);
    s->waiting.clear();
    for (auto& [id, w] : waiting) Complete(w, grpc::StatusCode::UNAVAILABLE, why, "", Outcome());
  }

  // Streams have no deadline of their own: a stream with an op older than
  // twice the op timeout (the server did not answer) is broken off.
  void ArmTick() {
    tick_alarm_.Set(&cq_, std::chrono::system_clock::now() + std::chrono::milliseconds(100),
                    &tick_);
  }
  void OnTick() {
    const auto too_old = Clock::now() - 2 * absl::ToChronoNanoseconds(cfg_.timeout);
    for (auto& s : streams_) {
      if (s->broken) continue;
      for (auto& [id, w] : s->waiting) {
        if (w->call->start < too_old) {
          Break(s.get(), "no answer in twice the timeout");
          break;
        }
      }
    }
    if (live_ > 0) ArmTick();
  }

  // --- both
  void Complete(Worker* w, grpc::StatusCode code, const std::string& msg,
                const std::string& leader_addr, const Outcome& outcome) {
    const Clock::time_point now = Clock::now();
    std::unique_ptr<Call> c = std::move(w->call);
    const bool counted = !cfg_.preload && now >= cfg_.measure_from && now < cfg_.end;
    bool retry_now = false;
    if (code == grpc::StatusCode::OK) {
      if (c->txn) w->known[c->key] = outcome.revision;
      if (counted) {
        const int64_t ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - c->start).count();
        stats.latency_ns.Record(ns);
        if (cfg_.compacting != nullptr) {
          (cfg_.compacting->load(std::memory_order_relaxed) ? stats.during_ns : stats.outside_ns)
              .Record(ns);
        }
        ++stats.ops;
        ++(c->read ? stats.reads : stats.writes);
        if (c->read && !outcome.found) ++stats.not_found;
        if (c->txn && !outcome.txn_succeeded) ++stats.txn_failed;
      }
    } else {
      if (counted || cfg_.preload) {
        ++stats.errors;
        ++stats.error_kinds[absl::StrCat("code_", code)];
        if (stats.first_errors.size() < 5) {
          stats.first_errors.push_back(absl::StrCat(code, ": ", msg));
        }
      }
      // raftkv's "not leader": follow the hint.
      if (!cfg_.etcd_api && code == grpc::StatusCode::FAILED_PRECONDITION &&
          msg.rfind("not leader", 0) == 0 && !c->read && !leader_addr.empty()) {
        w->write = pool_->Get(leader_addr, w->id % cfg_.connections);
        ++stats.redirects;
        retry_now = true;
      }
      if (!retry_now) {  // back off 10 ms so a dead server is not hammered
        w->backing_off = true;
        w->alarm.Set(&cq_, std::chrono::system_clock::now() + std::chrono::milliseconds(10),
                     &w->event);
        return;
      }
    }
    Start(w);
  }

  const RunConfig& cfg_;
  Pool* pool_;
  std::atomic<uint64_t>* next_key_;
  grpc::CompletionQueue cq_;
  size_t live_ = 0;
  uint64_t next_op_id_ = 0;
  std::map<Stubs*, Stream*> stream_of_;
  std::vector<std::unique_ptr<Stream>> streams_;
  grpc::Alarm tick_alarm_;
  Event tick_{Event::kTick};
};

struct Result {
  Stats stats;
  // --compact_during: the Compact's revision, wall time and error ("" if none).
  int64_t compact_revision = 0;
  double compact_ms = -1;
  std::string compact_error;
  double seconds = 0;
  std::vector<double> server_cpu;  // -1: unreadable
  double bench_cpu = 0;
  double loadavg1 = -1;  // the machine's 1-minute load average at the end
};

double LoadAverage() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return -1;
  double l = -1;
  if (std::fscanf(f, "%lf", &l) != 1) l = -1;
  std::fclose(f);
  return l;
}

std::unique_ptr<etcdserverpb::KV::Stub> EtcdKv(const RunConfig& cfg) {
  return etcdserverpb::KV::NewStub(grpc::CreateChannel(cfg.leader, cfg.credentials));
}

// The store's latest revision, from a Range's header (etcd's API, either target).
absl::StatusOr<int64_t> LatestRevision(const RunConfig& cfg) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(cfg.timeout));
  etcdserverpb::RangeRequest req;
  req.set_key(KeyOf(cfg.key_base));
  req.set_limit(1);
  req.set_keys_only(true);
  etcdserverpb::RangeResponse resp;
  grpc::Status s = EtcdKv(cfg)->Range(&ctx, req, &resp);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("Range: ", s.error_message()));
  return resp.header().revision();
}

// etcd's Compact(revision, physical): returns once the history is removed.
absl::Status CompactPhysical(const RunConfig& cfg, int64_t revision) {
  absl::Duration timeout;
  if (!absl::ParseDuration(FLAGS_compact_timeout, &timeout)) {
    return absl::InvalidArgumentError("bad --compact_timeout");
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout));
  etcdserverpb::CompactionRequest req;
  req.set_revision(revision);
  req.set_physical(true);
  etcdserverpb::CompactionResponse resp;
  grpc::Status s = EtcdKv(cfg)->Compact(&ctx, req, &resp);
  if (!s.ok()) {
    return absl::UnavailableError(absl::StrCat("Compact at ", revision, ": ", s.error_message()));
  }
  return absl::OkStatus();
}

// Runs one configuration; for preload, until every key is written.
Result RunOnce(RunConfig cfg, const std::vector<pid_t>& pids) {
  Pool pool(cfg.credentials);
  const int n = static_cast<int>(cfg.endpoints.size());
  std::vector<std::unique_ptr<Worker>> workers;
  std::mt19937_64 seed(std::random_device{}());
  const bool spread = FLAGS_read_from == "all";
  for (int i = 0; i < cfg.workers; ++i) {
    auto w = std::make_unique<Worker>();
    w->id = i;
    const int c = i % cfg.connections;
    w->write = pool.Get(cfg.leader, c);
    w->read = spread ? pool.Get(cfg.endpoints[c % n], c) : w->write;
    if (cfg.op == Op::kPut || cfg.preload) w->read = w->write;
    w->rng = seed() | 1;
    w->client_id = seed() | 1;
    workers.push_back(std::move(w));
  }
  if (!pool.ConnectAll(absl::Seconds(10))) {
    std::cerr << "bench: could not connect to every endpoint within 10 s\n";
    std::exit(2);
  }
  // Set the clock only now: connecting is not part of the warm-up.
  cfg.measure_from = Clock::now() + cfg.warmup;
  cfg.end = cfg.measure_from + cfg.duration;
  std::atomic<bool> compacting{false};
  const bool compact = FLAGS_compact_during && !cfg.preload;
  if (compact) cfg.compacting = &compacting;
  const int threads = std::max(1, FLAGS_threads);
  std::atomic<uint64_t> next_key{0};
  std::vector<std::unique_ptr<Driver>> drivers;
  for (int t = 0; t < threads; ++t) {
    drivers.push_back(std::make_unique<Driver>(cfg, &pool, &next_key));
  }
  Result r;
  std::thread compactor;
  if (compact) {  // a quarter into the window, the latest revision, removed
    compactor = std::thread([&cfg, &compacting, &r] {
      std::this_thread::sleep_until(cfg.measure_from + cfg.duration / 4);
      auto rev = LatestRevision(cfg);
      if (!rev.ok()) {
        r.compact_error = std::string(rev.status().message());
        return;
      }
      r.compact_revision = *rev;
      compacting.store(true);
      const auto t0 = Clock::now();
      absl::Status s = CompactPhysical(cfg, *rev);
      compacting.store(false);
      r.compact_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (!s.ok()) r.compact_error = std::string(s.message());
    });
  }
  std::vector<double> cpu0(pids.size());
  double self0 = 0;
  auto snapshot = [&](std::vector<double>* out, double* self) {
    for (size_t i = 0; i < pids.size(); ++i) {
      auto s = raftkv::tools::ProcessCpuSeconds(pids[i]);
      (*out)[i] = s ? *s : -1;
    }
    *self = raftkv::tools::SelfCpuSeconds();
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    std::vector<Worker*> mine;
    for (int i = t; i < cfg.workers; i += threads) mine.push_back(workers[i].get());
    ts.emplace_back([d = drivers[t].get(), mine] { d->Run(mine); });
  }
  if (!cfg.preload) {
    std::this_thread::sleep_until(cfg.measure_from);
    snapshot(&cpu0, &self0);
    std::this_thread::sleep_until(cfg.end);
    r.server_cpu.resize(pids.size());
    snapshot(&r.server_cpu, &r.bench_cpu);
    for (size_t i = 0; i < pids.size(); ++i) {
      r.server_cpu[i] = (cpu0[i] < 0 || r.server_cpu[i] < 0) ? -1 : r.server_cpu[i] - cpu0[i];
    }
    r.bench_cpu -= self0;
    r.loadavg1 = LoadAverage();
    r.seconds = std::chrono::duration<double>(cfg.end - cfg.measure_from).count();
  }
  for (auto& t : ts) t.join();
  if (compactor.joinable()) compactor.join();
  for (auto& d : drivers) r.stats.Merge(d->stats);
  return r;
}

// The leader's client address, as listed in the endpoints when possible.
std::string FindLeader(Target target, const std::vector<std::string>& endpoints,
                       const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  for (const std::string& ep : endpoints) {
    auto ch = grpc::CreateChannel(ep, credentials);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    if (target == Target::kRaftkv) {
      raftkv::adminpb::StatusResponse resp;
      if (!raftkv::adminpb::Admin::NewStub(ch)
               ->Status(&ctx, raftkv::adminpb::StatusRequest(), &resp).ok()) {
        continue;
      }
      if (resp.role() == "leader") return ep;
      if (!resp.leader_address().empty()) return resp.leader_address();
    } else {
      etcdserverpb::StatusResponse resp;
      if (!etcdserverpb::Maintenance::NewStub(ch)
               ->Status(&ctx, etcdserverpb::StatusRequest(), &resp).ok()) {
        continue;
      }
      if (resp.leader() != 0 && resp.leader() == resp.header().member_id()) return ep;
    }
  }
  return "";
}

const char* ApiName(const RunConfig& cfg) {
  if (cfg.target == Target::kEtcd) return "etcd";
  return cfg.batch ? "batch" : cfg.etcd_api ? "etcd" : "unary";
}

const char* OpName(Op op) {
  switch (op) {
    case Op::kPut: return "put";
    case Op::kGet: return "get";
    case Op::kSget: return "sget";
    case Op::kMix: return "mix";
    case Op::kTxn: return "txn";
  }
  return "?";
}

double Ms(uint64_t ns) { return ns / 1e6; }

void Report(const RunConfig& cfg, const Result& r, const std::vector<pid_t>& pids) {
  const Stats& s = r.stats;
  const Histogram& h = s.latency_ns;
  const double ops_s = r.seconds > 0 ? s.ops / r.seconds : 0;
  double server_total = 0;
  std::vector<std::string> per;
  for (double c : r.server_cpu) {
    per.push_back(c < 0 ? "?" : absl::StrFormat("%.2f", c));
    if (c > 0) server_total += c;
  }
  const double us_per_op = s.ops > 0 ? server_total / s.ops * 1e6 : 0;
  const double bench_us_per_op = s.ops > 0 ? r.bench_cpu / s.ops * 1e6 : 0;
  if (FLAGS_header) {
    std::printf("%-6s %-4s %4s %4s %9s %8s %8s %8s %8s %8s %6s %18s %8s %8s\n", "target", "op",
                "wrk", "conn", "ops/s", "p50ms", "p90ms", "p99ms", "p99.9ms", "maxms", "errs",
                "server_cpu_s", "srv_us/op", "gen_us/op");
    FLAGS_header = false;
  }
  std::printf("%-6s %-4s %4d %4d %9.0f %8.2f %8.2f %8.2f %8.2f %8.2f %6llu %18s %8.0f %8.0f\n",
              FLAGS_target.c_str(), OpName(cfg.op), cfg.workers, cfg.connections, ops_s,
              Ms(h.Percentile(50)), Ms(h.Percentile(90)), Ms(h.Percentile(99)),
              Ms(h.Percentile(99.9)), Ms(h.max()), static_cast<unsigned long long>(s.errors),
              per.empty() ? "-" : absl::StrJoin(per, "+").c_str(), us_per_op, bench_us_per_op);
  std::vector<std::string> kinds;
  for (const auto& [k, n] : s.error_kinds) kinds.push_back(absl::StrFormat("\"%s\":%d", k, n));
  std::vector<std::string> cpus;
  for (double c : r.server_cpu) cpus.push_back(absl::StrFormat("%.3f", c));
  std::string compact;  // --compact_during's fields
  if (FLAGS_compact_during) {
    compact = absl::StrFormat(
        ",\"compact_revision\":%d,\"compact_ms\":%.1f,\"compact_error\":\"%s\","
        "\"during_ops\":%d,\"during_p50_ms\":%.3f,\"during_p99_ms\":%.3f,"
        "\"outside_ops\":%d,\"outside_p50_ms\":%.3f,\"outside_p99_ms\":%.3f",
        r.compact_revision, r.compact_ms, absl::CEscape(r.compact_error), s.during_ns.count(),
        Ms(s.during_ns.Percentile(50)), Ms(s.during_ns.Percentile(99)), s.outside_ns.count(),
        Ms(s.outside_ns.Percentile(50)), Ms(s.outside_ns.Percentile(99)));
    std::fprintf(stderr,
                 "  compact at revision %lld: %.0f ms%s%s; during it %llu ops p50 %.2f p99 %.2f "
                 "ms, outside %llu ops p50 %.2f p99 %.2f ms\n",
                 static_cast<long long>(r.compact_revision), r.compact_ms,
                 r.compact_error.empty() ? "" : ", error: ", r.compact_error.c_str(),
                 static_cast<unsigned long long>(s.during_ns.count()),
                 Ms(s.during_ns.Percentile(50)), Ms(s.during_ns.Percentile(99)),
                 static_cast<unsigned long long>(s.outside_ns.count()),
                 Ms(s.outside_ns.Percentile(50)), Ms(s.outside_ns.Percentile(99)));
  }
  if (s.txn_failed > 0) {
    std::fprintf(stderr, "  %llu txn compares did not hold\n",
                 static_cast<unsigned long long>(s.txn_failed));
  }
  absl::PrintF(
      "{\"label\":\"%s\",\"target\":\"%s\",\"api\":\"%s\",\"op\":\"%s\",\"workers\":%d,\"connections\":%d,"
      "\"key_bytes\":%d,\"value_bytes\":%d,\"keys\":%d,\"key_base\":%d,\"read_fraction\":%.3f,"
      "\"seconds\":%.3f,\"ops\":%d,\"reads\":%d,\"writes\":%d,\"ops_per_sec\":%.1f,"
      "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
      "\"mean_ms\":%.3f,\"errors\":%d,\"redirects\":%d,\"not_found\":%d,\"txn_failed\":%d,"
      "\"error_kinds\":{%s},"
      "\"server_pids\":[%s],\"server_cpu_s\":[%s],\"server_cpu_total_s\":%.3f,"
      "\"server_cpu_us_per_op\":%.1f,\"bench_cpu_s\":%.3f,\"bench_cpu_us_per_op\":%.1f,"
      "\"loadavg1\":%.2f,\"leader\":\"%s\",\"tls\":%s%s}\n",
      FLAGS_label, FLAGS_target, ApiName(cfg), OpName(cfg.op), cfg.workers, cfg.connections,
      FLAGS_key_bytes, FLAGS_value_bytes, FLAGS_keys, cfg.key_base,
      cfg.op == Op::kMix ? FLAGS_read_fraction : 0.0, r.seconds, s.ops, s.reads, s.writes, ops_s,
      Ms(h.Percentile(50)), Ms(h.Percentile(90)), Ms(h.Percentile(99)), Ms(h.Percentile(99.9)),
      Ms(h.max()), h.mean() / 1e6, s.errors, s.redirects, s.not_found, s.txn_failed,
      absl::StrJoin(kinds, ","), absl::StrJoin(pids, ","), absl::StrJoin(cpus, ","),
      server_total, us_per_op, r.bench_cpu, bench_us_per_op, r.loadavg1, cfg.leader,
      cfg.tls ? "true" : "false", compact);
  for (const auto& e : s.first_errors) std::fprintf(stderr, "  error: %s\n", e.c_str());
  std::fflush(stdout);
}

int Fail(const std::string& msg) {
  std::cerr << "bench: " << msg << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "closed-loop load: bench --target=raftkv|etcd --endpoints=H:P,... --op=put|get|sget|mix "
      "--workers=1,16,64 [--duration=10s] [--server_pids=1,2,3]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  RunConfig cfg;
  if (FLAGS_target == "raftkv") {
    cfg.target = Target::kRaftkv;
  } else if (FLAGS_target == "etcd") {
    cfg.target = Target::kEtcd;
  } else {
    return Fail("--target must be raftkv or etcd");
  }
  const std::map<std::string, Op> ops = {{"put", Op::kPut},   {"get", Op::kGet},
                                         {"sget", Op::kSget}, {"mix", Op::kMix},
                                         {"txn", Op::kTxn}};
  if (!ops.count(FLAGS_op)) return Fail("--op must be put, get, sget, mix or txn");
  cfg.op = ops.at(FLAGS_op);
  absl::Duration duration, warmup;
  if (!absl::ParseDuration(FLAGS_duration, &duration) || duration <= absl::ZeroDuration() ||
      !absl::ParseDuration(FLAGS_warmup, &warmup) || warmup < absl::ZeroDuration() ||
      !absl::ParseDuration(FLAGS_timeout, &cfg.timeout) || cfg.timeout <= absl::ZeroDuration()) {
    return Fail("bad --duration, --warmup or --timeout");
  }
  if (FLAGS_api != "batch" && FLAGS_api != "unary" && FLAGS_api != "etcd") {
    return Fail("--api must be batch, unary or etcd");
  }
  cfg.batch = cfg.target == Target::kRaftkv && FLAGS_api == "batch";
  cfg.etcd_api = cfg.target == Target::kEtcd || FLAGS_api == "etcd";
  if (cfg.op == Op::kTxn && FLAGS_preload) return Fail("--op=txn takes no --preload");
  if (FLAGS_read_from != "leader" && FLAGS_read_from != "all") {
    return Fail("--read_from must be leader or all");
  }
  auto pids = raftkv::tools::ParsePids(FLAGS_server_pids);
  if (!pids) return Fail("bad --server_pids");
  std::vector<int> counts;
  for (absl::string_view s : absl::StrSplit(FLAGS_workers, ',', absl::SkipEmpty())) {
    int n = 0;
    if (!absl::SimpleAtoi(s, &n) || n <= 0) return Fail("bad --workers");
    counts.push_back(n);
  }
  for (absl::string_view s : absl::StrSplit(FLAGS_endpoints, ',', absl::SkipEmpty())) {
    cfg.endpoints.emplace_back(s);
  }
  if (counts.empty() || cfg.endpoints.empty()) return Fail("no --workers or --endpoints");
  // txn: run i uses keys from key_offset + i * keys, so the last key must fit too.
  const uint64_t key_sets = cfg.op == Op::kTxn ? counts.size() : 1;
  if (FLAGS_keys == 0 || FLAGS_value_bytes < 0 || FLAGS_key_bytes <= 0 ||
      KeyOf(FLAGS_key_offset + key_sets * FLAGS_keys - 1).size() !=
          static_cast<size_t>(FLAGS_key_bytes)) {
    return Fail("--keys must be > 0 and --key_offset + --keys (per txn run) fit in --key_bytes "
                "digits");
  }
  if (cfg.op == Op::kTxn && FLAGS_keys < static_cast<uint64_t>(
                                             *std::max_element(counts.begin(), counts.end()))) {
    return Fail("--op=txn needs --keys >= --workers (each worker owns keys)");
  }
  if (FLAGS_preload_only && !FLAGS_preload) return Fail("--preload_only needs --preload");
  if ((FLAGS_compact_during || FLAGS_history > 0) && FLAGS_preload_only) {
    return Fail("--compact_during and --history measure runs: not with --preload_only");
  }
  cfg.key_base = FLAGS_key_offset;

  const raftkv::client::TlsClientFiles tls{FLAGS_cacert, FLAGS_cert, FLAGS_key};
  auto credentials = raftkv::client::ChannelCredentialsFor(tls);
  if (!credentials.ok()) return Fail(std::string(credentials.status().message()));
  cfg.credentials = *credentials;
  cfg.tls = tls.enabled();

  std::mt19937_64 rng(1);
  cfg.value_pool.resize(FLAGS_value_bytes + 4096);
  for (char& ch : cfg.value_pool) ch = static_cast<char>('!' + rng() % 94);

  absl::Duration wait;
  if (!absl::ParseDuration(FLAGS_wait_for_leader, &wait)) return Fail("bad --wait_for_leader");
  const absl::Time give_up = absl::Now() + wait;
  while ((cfg.leader = FindLeader(cfg.target, cfg.endpoints, cfg.credentials)).empty() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  if (cfg.leader.empty()) return Fail("no leader found at " + FLAGS_endpoints);

  // Unmeasured writes: `ops` puts over the keys in order, at 256 workers.
  auto write_keys = [&](uint64_t ops, const char* what) {
    RunConfig p = cfg;
    p.preload = true;
    p.preload_ops = ops;
    p.workers = std::max(256, counts.front());
    p.connections = FLAGS_connections > 0 ? FLAGS_connections : 16;
    const auto t0 = Clock::now();
    Result r = RunOnce(p, {});
    std::fprintf(stderr, "bench: %s: %llu puts over %llu keys in %.1f s (%llu errors)\n", what,
                 static_cast<unsigned long long>(ops), static_cast<unsigned long long>(FLAGS_keys),
                 std::chrono::duration<double>(Clock::now() - t0).count(),
                 static_cast<unsigned long long>(r.stats.errors));
    for (const auto& e : r.stats.first_errors) std::fprintf(stderr, "  error: %s\n", e.c_str());
    return r.stats.errors == 0;
  };
  if (FLAGS_preload && !write_keys(FLAGS_keys, "preload") && FLAGS_preload_only) return 1;
  if (FLAGS_preload_only) return 0;
  if (FLAGS_history > 0) {
    // Earlier runs' history first, so every system starts from one version per key.
    auto rev = LatestRevision(cfg);
    if (!rev.ok()) return Fail(std::string(rev.status().message()));
    const auto t0 = Clock::now();
    absl::Status s = CompactPhysical(cfg, *rev);
    // Compacted already at this revision (nothing written since): as good.
    if (!s.ok() && s.message().find("compacted") == std::string::npos) {
      return Fail(std::string(s.message()));
    }
    std::fprintf(stderr, "bench: compacted at revision %lld in %.1f s\n",
                 static_cast<long long>(*rev),
                 std::chrono::duration<double>(Clock::now() - t0).count());
    if (!write_keys(FLAGS_history, "history")) return 1;
  }
  bool failed = false;
  for (size_t i = 0; i < counts.size(); ++i) {
    const int n = counts[i];
    RunConfig c = cfg;
    c.preload = false;
    if (c.op == Op::kTxn) c.key_base = FLAGS_key_offset + i * FLAGS_keys;
    c.workers = n;
    c.connections = FLAGS_connections > 0 ? FLAGS_connections : std::min(n, 16);
    c.warmup = absl::ToChronoNanoseconds(warmup);
    c.duration = absl::ToChronoNanoseconds(duration);
    Result r = RunOnce(c, *pids);
    Report(c, r, *pids);
    if (r.stats.errors > 0 || r.stats.ops == 0 || !r.compact_error.empty()) failed = true;
  }
  return failed ? 1 : 0;
}
