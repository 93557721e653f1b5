#include "tests/jepsen/history_gen.h"

#include <map>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"

namespace raftkv::jepsen {
namespace {

struct Stored {
  std::string value;
  uint64_t version = 0;
};

class Sequential {
 public:
  using Data = std::map<std::string, Stored>;

  Sequential() { log_.push_back({0, data_}); }

  // Applies `op` (arguments only) and fills in its answer. Every write takes
  // a log index, `gap` above the last (other keys' entries, no-ops).
  void Apply(Op* op, uint64_t gap) {
    auto it = data_.find(op->key);
    std::optional<Stored> cur;
    if (it != data_.end()) cur = it->second;
    switch (op->type) {
      case OpType::kGet:
      case OpType::kScan:
        Read(data_, op);
        return;
      case OpType::kPut:
        index_ += gap;
        data_[op->key] = Stored{op->value, index_};
        op->version = index_;
        break;
      case OpType::kDelete:
        index_ += gap;
        op->found = cur.has_value();
        data_.erase(op->key);
        break;
      case OpType::kCas: {
        index_ += gap;
        bool match;
        if (op->cas_by_version) {
          match = op->expected_version == 0 ? !cur.has_value()
                                            : cur && cur->version == op->expected_version;
        } else {
          match = cur && cur->value == op->expected_value;
        }
        op->succeeded = match;
        if (match) {
          data_[op->key] = Stored{op->value, index_};
          op->version = index_;
        } else {
          op->found = cur.has_value();
          if (cur) {
            op->out_value = cur->value;
            op->version = cur->version;
          }
        }
        break;
      }
    }
    log_.push_back({index_, data_});
  }

  // A read (get or scan) answered from the state after log entry `pos`.
  void ReadAt(size_t pos, Op* op) const { Read(log_[pos].second, op); }

  std::optional<Stored> Current(const std::string& key) const {
    auto it = data_.find(key);
    if (it == data_.end()) return std::nullopt;
    return it->second;
  }

  size_t last() const { return log_.size() - 1; }
  uint64_t index_at(size_t pos) const { return log_[pos].first; }

 private:
  static void Read(const Data& data, Op* op) {
    if (op->type == OpType::kScan) {
      op->kvs.clear();
      for (auto it = data.lower_bound(op->key); it != data.end(); ++it) {
        if (it->first.compare(0, op->key.size(), op->key) != 0) break;
        op->kvs.push_back(ScanKv{it->first, it->second.value, it->second.version});
      }
      return;
    }
    auto it = data.find(op->key);
    op->found = it != data.end();
    if (op->found) {
      op->out_value = it->second.value;
      op->version = it->second.version;
    }
  }

  Data data_;
  uint64_t index_ = 0;
  // (index, data after it) for every entry so far, for members that lag.
  std::vector<std::pair<uint64_t, Data>> log_;
};

}  // namespace

std::vector<Op> GenerateLinearizable(const GenOptions& o) {
  std::mt19937_64 rng(o.seed);
  auto uniform = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };

  Sequential store;
  std::vector<Op> history;
  enum class Phase { kIdle, kInvoked, kApplied };
  struct Client {
    Phase phase = Phase::kIdle;
    size_t op = 0;
    bool unknown = false;
    bool failed = false;
  };
  std::vector<Client> clients(o.clients);
  // Unknown writes whose effect is still to come (or never).
  std::vector<size_t> limbo;
  std::vector<std::string> written;  // values written so far (for CAS guesses)
  int issued = 0, counter = 0;
  int64_t now = 1000;

  // Each member's applied position in the store's log; it only moves on.
  std::vector<size_t> member_pos(o.members, 0);
  auto apply = [&](size_t i) {
    Op copy = history[i];
    if (copy.member != 0) {
      // A read on a member: linearizable reads wait until it caught up; a
      // serializable one reads whatever it has applied. Its answer's
      // applied index is read after the data, so it may be a bit newer.
      size_t& pos = member_pos[copy.member - 1];
      auto between = [&](size_t lo, size_t hi) { return lo + pick(static_cast<int>(hi - lo + 1)); };
      pos = copy.serializable ? between(pos, store.last()) : store.last();
      store.ReadAt(pos, &copy);
      pos = between(pos, store.last());
      copy.applied = store.index_at(pos);
    } else {
      store.Apply(&copy, 1 + pick(3));
    }
    if (history[i].outcome == Outcome::kOk) {
      history[i].found = copy.found;
      history[i].succeeded = copy.succeeded;
      history[i].out_value = copy.out_value;
      history[i].version = copy.version;
      history[i].kvs = copy.kvs;
      history[i].applied = copy.applied;
    }
  };

  while (true) {
    bool busy = !limbo.empty();
    for (const Client& c : clients) busy = busy || c.phase != Phase::kIdle;
    if (!busy && issued >= o.ops) break;
    now += 1 + pick(1000);
    // Sometimes an unknown write finally takes effect, or is given up.
    if (!limbo.empty() && uniform(0.05)) {
      const size_t k = pick(static_cast<int>(limbo.size()));
      if (uniform(0.6)) apply(limbo[k]);
      limbo.erase(limbo.begin() + k);
      continue;
    }
    const int ci = pick(o.clients);
    Client& c = clients[ci];
    switch (c.phase) {
      case Phase::kIdle: {
        if (issued >= o.ops) break;
        ++issued;
        Op op;
        op.id = static_cast<int64_t>(history.size());
        op.client = ci;
        op.key = absl::StrCat("k", pick(o.keys));
        op.invoke_ns = now;
        const double r = std::uniform_real_distribution<double>(0, 1)(rng);
        if (o.scans > 0 && uniform(o.scans)) {
          op.type = OpType::kScan;
          op.key = "k";
          if (o.members > 0) op.member = 1 + pick(o.members);
          op.serializable = op.member != 0 && uniform(0.5);
        } else if (r < o.reads) {
          op.type = OpType::kGet;
          if (o.members > 0 && uniform(o.member_reads)) {
            op.member = 1 + pick(o.members);
            op.serializable = uniform(0.5);
          }
        } else if (r < o.reads + (1 - o.reads) * 0.4) {
          op.type = OpType::kPut;
        } else if (r < o.reads + (1 - o.reads) * 0.55) {
          op.type = OpType::kDelete;
        } else {
          op.type = OpType::kCas;
          auto cur = store.Current(op.key);
          if (uniform(0.3)) {
            op.cas_by_version = true;
            op.expected_version = cur && uniform(0.7) ? cur->version : pick(2) * (1 + pick(50));
          } else if (cur && uniform(0.6)) {
            op.expected_value = cur->value;
          } else if (!written.empty()) {
            op.expected_value = written[pick(static_cast<int>(written.size()))];
          }
        }
        if (op.type == OpType::kPut || op.type == OpType::kCas) {
          op.value = absl::StrCat("c", ci, "-", ++counter);
          written.push_back(op.value);
        }
        const bool read = op.type == OpType::kGet || op.type == OpType::kScan;
        c.unknown = !read && uniform(o.unknown);
        c.failed = !c.unknown && !read && uniform(o.failed);
        op.outcome = c.unknown ? Outcome::kUnknown : c.failed ? Outcome::kFailed : Outcome::kOk;
        if (c.unknown) op.error = "timed out";
        if (c.failed) op.error = "refused";
        c.op = history.size();
        history.push_back(op);
        c.phase = Phase::kInvoked;
        break;
      }
      case Phase::kInvoked:
        if (c.unknown) {
          // Either right now, or later (in limbo), or never.
          if (uniform(0.5)) {
            apply(c.op);
          } else {
            limbo.push_back(c.op);
          }
        } else if (!c.failed) {
          apply(c.op);
        }
        c.phase = Phase::kApplied;
        break;
      case Phase::kApplied:
        history[c.op].complete_ns = now;
        c.phase = Phase::kIdle;
        break;
    }
  }
  return history;
}

}  // namespace raftkv::jepsen
