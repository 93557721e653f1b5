#include "tests/jepsen/history.h"

#include <time.h>

#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace raftkv::jepsen {

const char* OpTypeName(OpType t) {
  switch (t) {
    case OpType::kPut:
      return "put";
    case OpType::kGet:
      return "get";
    case OpType::kDelete:
      return "delete";
    case OpType::kCas:
      return "cas";
    case OpType::kScan:
      return "scan";
  }
  return "?";
}

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "?";
}

namespace {

bool ParseType(absl::string_view s, OpType* t) {
  for (OpType c : {OpType::kPut, OpType::kGet, OpType::kDelete, OpType::kCas, OpType::kScan}) {
    if (s == OpTypeName(c)) {
      *t = c;
      return true;
    }
  }
  return false;
}

bool ParseOutcome(absl::string_view s, Outcome* o) {
  for (Outcome c : {Outcome::kOk, Outcome::kFailed, Outcome::kUnknown}) {
    if (s == OutcomeName(c)) {
      *o = c;
      return true;
    }
  }
  return false;
}

std::string Seconds(int64_t ns) { return absl::StrFormat("%.6fs", ns / 1e9); }

std::string Quote(const std::string& s) { return absl::StrCat("\"", absl::CHexEscape(s), "\""); }

// A scan's keys as one field: entries separated by '\n', their key, value
// and version by '\t', each part C-escaped (so it holds neither).
std::string FormatKvs(const std::vector<ScanKv>& kvs) {
  std::vector<std::string> rows;
  for (const ScanKv& kv : kvs) {
    rows.push_back(absl::StrCat(absl::CEscape(kv.key), "\t", absl::CEscape(kv.value), "\t",
                                kv.version));
  }
  return absl::StrJoin(rows, "\n");
}

bool ParseKvs(absl::string_view text, std::vector<ScanKv>* kvs) {
  kvs->clear();
  if (text.empty()) return true;
  for (absl::string_view row : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> parts = absl::StrSplit(row, '\t');
    ScanKv kv;
    if (parts.size() != 3 || !absl::CUnescape(parts[0], &kv.key) ||
        !absl::CUnescape(parts[1], &kv.value) || !absl::SimpleAtoi(parts[2], &kv.version)) {
      return false;
    }
    kvs->push_back(std::move(kv));
  }
  return true;
}

}  // namespace

std::string FormatOp(const Op& op) {
  std::vector<std::string> f;
  f.push_back(absl::StrCat("id=", op.id));
  f.push_back(absl::StrCat("client=", op.client));
  f.push_back(absl::StrCat("type=", OpTypeName(op.type)));
  f.push_back(absl::StrCat("key=", absl::CEscape(op.key)));
  if (op.type == OpType::kPut || op.type == OpType::kCas) {
    f.push_back(absl::StrCat("value=", absl::CEscape(op.value)));
  }
  if (op.type == OpType::kCas) {
    if (op.cas_by_version) {
      f.push_back(absl::StrCat("expected_version=", op.expected_version));
    } else {
      f.push_back(absl::StrCat("expected_value=", absl::CEscape(op.expected_value)));
    }
  }
  if (op.serializable) f.push_back("serializable=1");
  f.push_back(absl::StrCat("invoke=", op.invoke_ns));
  f.push_back(absl::StrCat("complete=", op.complete_ns));
  f.push_back(absl::StrCat("outcome=", OutcomeName(op.outcome)));
  if (op.outcome == Outcome::kOk) {
    f.push_back(absl::StrCat("found=", op.found ? 1 : 0));
    f.push_back(absl::StrCat("succeeded=", op.succeeded ? 1 : 0));
    f.push_back(absl::StrCat("out_value=", absl::CEscape(op.out_value)));
    f.push_back(absl::StrCat("version=", op.version));
    if (op.type == OpType::kScan) {
      f.push_back(absl::StrCat("kvs=", absl::CEscape(FormatKvs(op.kvs))));
      f.push_back(absl::StrCat("more=", op.more ? 1 : 0));
    }
    if (op.member != 0) f.push_back(absl::StrCat("member=", op.member));
    if (op.applied != 0) f.push_back(absl::StrCat("applied=", op.applied));
  }
  if (!op.error.empty()) f.push_back(absl::StrCat("error=", absl::CEscape(op.error)));
  return absl::StrJoin(f, "\t");
}

absl::StatusOr<Op> ParseOp(absl::string_view line) {
  Op op;
  bool has_type = false;
  for (absl::string_view field : absl::StrSplit(line, '\t', absl::SkipEmpty())) {
    const size_t eq = field.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("field without '=': ", field));
    }
    const absl::string_view name = field.substr(0, eq);
    const absl::string_view raw = field.substr(eq + 1);
    std::string text;
    std::string err;
    if (!absl::CUnescape(raw, &text, &err)) {
      return absl::InvalidArgumentError(absl::StrCat("bad escape in ", name, ": ", err));
    }
    bool ok = true;
    int64_t i64 = 0;
    uint64_t u64 = 0;
    if (name == "id") {
      ok = absl::SimpleAtoi(text, &op.id);
    } else if (name == "client") {
      ok = absl::SimpleAtoi(text, &op.client);
    } else if (name == "type") {
      ok = ParseType(text, &op.type);
      has_type = ok;
    } else if (name == "key") {
      op.key = text;
    } else if (name == "value") {
      op.value = text;
    } else if (name == "expected_version") {
      op.cas_by_version = true;
      ok = absl::SimpleAtoi(text, &op.expected_version);
    } else if (name == "expected_value") {
      op.cas_by_version = false;
      op.expected_value = text;
    } else if (name == "invoke") {
      ok = absl::SimpleAtoi(text, &i64);
      op.invoke_ns = i64;
    } else if (name == "complete") {
      ok = absl::SimpleAtoi(text, &i64);
      op.complete_ns = i64;
    } else if (name == "outcome") {
      ok = ParseOutcome(text, &op.outcome);
    } else if (name == "found") {
      op.found = text == "1";
    } else if (name == "succeeded") {
      op.succeeded = text == "1";
    } else if (name == "out_value") {
      op.out_value = text;
    } else if (name == "version") {
      ok = absl::SimpleAtoi(text, &u64);
      op.version = u64;
    } else if (name == "serializable") {
      op.serializable = text == "1";
    } else if (name == "kvs") {
      ok = ParseKvs(text, &op.kvs);
    } else if (name == "more") {
      op.more = text == "1";
    } else if (name == "member") {
      ok = absl::SimpleAtoi(text, &op.member);
    } else if (name == "applied") {
      ok = absl::SimpleAtoi(text, &op.applied);
    } else if (name == "error") {
      op.error = text;
    }  // unknown fields are ignored (newer writers)
    if (!ok) return absl::InvalidArgumentError(absl::StrCat("bad value of ", name, ": ", raw));
  }
  if (!has_type) return absl::InvalidArgumentError(absl::StrCat("no type in: ", line));
  return op;
}

std::string DescribeOp(const Op& op) {
  std::string s = absl::StrCat("#", op.id, " c", op.client, " [", Seconds(op.invoke_ns), ", ",
                               op.outcome == Outcome::kUnknown ? std::string("?")
                                                               : Seconds(op.complete_ns),
                               "] ", OpTypeName(op.type), " ", op.key);
  switch (op.type) {
    case OpType::kPut:
      absl::StrAppend(&s, " ", Quote(op.value));
      break;
    case OpType::kCas:
      if (op.cas_by_version) {
        absl::StrAppend(&s, " @", op.expected_version);
      } else {
        absl::StrAppend(&s, " ", Quote(op.expected_value));
      }
      absl::StrAppend(&s, " -> ", Quote(op.value));
      break;
    case OpType::kScan:
      absl::StrAppend(&s, "*");
      break;
    default:
      break;
  }
  if (op.serializable) absl::StrAppend(&s, " serializable");
  absl::StrAppend(&s, ": ", OutcomeName(op.outcome));
  if (op.outcome != Outcome::kOk) {
    if (!op.error.empty()) absl::StrAppend(&s, " (", op.error.substr(0, 120), ")");
    return s;
  }
  switch (op.type) {
    case OpType::kPut:
      absl::StrAppend(&s, " @", op.version);
      break;
    case OpType::kGet:
      if (op.found) {
        absl::StrAppend(&s, " ", Quote(op.out_value), "@", op.version);
      } else {
        absl::StrAppend(&s, " not found");
      }
      break;
    case OpType::kDelete:
      absl::StrAppend(&s, op.found ? " deleted" : " was absent");
      break;
    case OpType::kCas:
      if (op.succeeded) {
        absl::StrAppend(&s, " swapped @", op.version);
      } else if (op.found) {
        absl::StrAppend(&s, " no match, current ", Quote(op.out_value), "@", op.version);
      } else {
        absl::StrAppend(&s, " no match, key absent");
      }
      break;
    case OpType::kScan:
      for (const ScanKv& kv : op.kvs) {
        absl::StrAppend(&s, " ", kv.key, "=", Quote(kv.value), "@", kv.version);
      }
      if (op.kvs.empty()) absl::StrAppend(&s, " nothing");
      if (op.more) absl::StrAppend(&s, " (more)");
      break;
  }
  if (op.member != 0 || op.applied != 0) {
    absl::StrAppend(&s, " [n", op.member, " applied ", op.applied, "]");
  }
  return s;
}

std::string FormatHistory(const std::vector<Op>& ops) {
  std::string out;
  for (const Op& op : ops) absl::StrAppend(&out, FormatOp(op), "\n");
  return out;
}

absl::StatusOr<std::vector<Op>> ParseHistory(absl::string_view text) {
  std::vector<Op> out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    auto op = ParseOp(line);
    if (!op.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_no, ": ", op.status().message()));
    }
    out.push_back(std::move(*op));
  }
  return out;
}

int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t Recorder::Invoke(Op op) {
  absl::MutexLock l(&mu_);
  op.id = static_cast<int64_t>(ops_.size());
  op.outcome = Outcome::kUnknown;
  op.invoke_ns = MonotonicNanos();
  op.complete_ns = 0;
  ops_.push_back(std::move(op));
  done_.push_back(false);
  return ops_.back().id;
}

void Recorder::Complete(int64_t id, const Op& result) {
  const int64_t now = MonotonicNanos();
  absl::MutexLock l(&mu_);
  Op& op = ops_.at(id);
  op.complete_ns = now;
  op.outcome = result.outcome;
  op.found = result.found;
  op.succeeded = result.succeeded;
  op.out_value = result.out_value;
  op.version = result.version;
  op.kvs = result.kvs;
  op.more = result.more;
  op.member = result.member;
  op.applied = result.applied;
  op.error = result.error;
  done_[id] = true;
}

std::vector<Op> Recorder::Snapshot() const {
  absl::MutexLock l(&mu_);
  std::vector<Op> out = ops_;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!done_[i]) {
      out[i].outcome = Outcome::kUnknown;
      out[i].error = "never completed";
    }
  }
  return out;
}

size_t Recorder::size() const {
  absl::MutexLock l(&mu_);
  return ops_.size();
}

}  // namespace raftkv::jepsen
