#include "storage/crash_workload.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace raftkv::storage::crash {

std::string KeyName(int i) { return absl::StrCat("k", i); }

std::string Payload(uint64_t index, uint64_t term) {
  const uint64_t h = index * 0x9E3779B97F4A7C15ull ^ (term + 1) * 0xC2B2AE3D27D4EB4Full;
  std::string s(h % 300, '\0');
  for (size_t i = 0; i < s.size(); ++i) {
    s[i] = static_cast<char>((h >> (8 * (i % 8))) + i);
  }
  return s;
}

uint64_t ModelState::LastIndex() const {
  return terms.empty() ? snapshot_index : terms.rbegin()->first;
}

uint64_t ModelState::LastTerm() const {
  return terms.empty() ? snapshot_term : terms.rbegin()->second;
}

uint64_t ModelState::TermAt(uint64_t index) const {
  if (index == snapshot_index) return snapshot_term;
  return terms.at(index);
}

bool ModelState::operator==(const ModelState& o) const {
  return snapshot_index == o.snapshot_index &&
         snapshot_term == o.snapshot_term && terms == o.terms &&
         hard_state.term() == o.hard_state.term() &&
         hard_state.vote() == o.hard_state.vote() &&
         hard_state.commit() == o.hard_state.commit() &&
         applied_index == o.applied_index && data == o.data;
}

std::string ModelState::Summary() const {
  return absl::StrCat("snapshot ", snapshot_index, "/", snapshot_term,
                      " log ", snapshot_index + 1, "..", LastIndex(),
                      " last term ", LastTerm(), " hs {term ",
                      hard_state.term(), " vote ", hard_state.vote(),
                      " commit ", hard_state.commit(), "} applied ",
                      applied_index, " keys ", data.size());
}

std::string Diff(const ModelState& a, const ModelState& b) {
  if (a == b) return "";
  std::string out = absl::StrCat("  ", a.Summary(), "\n  ", b.Summary());
  if (a.terms != b.terms) {
    for (const auto& [index, term] : a.terms) {
      auto it = b.terms.find(index);
      if (it == b.terms.end() || it->second != term) {
        absl::StrAppend(&out, "\n  first log difference at index ", index);
        break;
      }
    }
  }
  if (a.data != b.data) absl::StrAppend(&out, "\n  data differs");
  return out;
}

absl::StatusOr<ModelState> ReadState(const LogStore& store) {
  ModelState m;
  absl::StatusOr<raft::InitialState> init = store.GetInitialState();
  if (!init.ok()) return init.status();
  m.snapshot_index = init->snapshot.index();
  m.snapshot_term = init->snapshot.term();
  m.hard_state = init->hard_state;
  m.applied_index = store.applied_index();
  if (store.FirstIndex() != m.snapshot_index + 1) {
    return absl::InternalError("FirstIndex() != snapshot index + 1");
  }
  absl::StatusOr<uint64_t> t = store.Term(m.snapshot_index);
  if (!t.ok() || *t != m.snapshot_term) {
    return absl::InternalError("Term(snapshot index) != snapshot term");
  }
  const uint64_t last = store.LastIndex();
  for (uint64_t lo = store.FirstIndex(); lo <= last;) {
    absl::StatusOr<std::vector<raftpb::Entry>> entries =
        store.Entries(lo, last + 1, 64 << 10);
    if (!entries.ok()) return entries.status();
    for (const raftpb::Entry& e : *entries) {
      if (e.index() != lo) {
        return absl::InternalError(absl::StrCat("hole at index ", lo));
      }
      if (e.data() != Payload(e.index(), e.term())) {
        return absl::InternalError(
            absl::StrCat("wrong payload at index ", e.index()));
      }
      m.terms[e.index()] = e.term();
      ++lo;
    }
  }
  absl::StatusOr<uint64_t> last_term = store.Term(last);
  if (!last_term.ok()) return last_term.status();
  if (m.LastTerm() != *last_term) {
    return absl::InternalError("Term(LastIndex()) differs from the entry");
  }
  for (int i = 0; i < kNumKeys; ++i) {
    absl::StatusOr<std::string> v = store.Get(KeyName(i));
    if (v.ok()) {
      m.data[KeyName(i)] = *v;
    } else if (!absl::IsNotFound(v.status())) {
      return v.status();
    }
  }
  return m;
}

absl::Status Execute(const Op& op, LogStore* store) {
  switch (op.kind) {
    case Op::Kind::kAppend:
      return store->Append(op.entries,
                           op.has_hard_state ? &op.hard_state : nullptr);
    case Op::Kind::kApply:
      return store->ApplyBatch(op.changes, op.index);
    case Op::Kind::kCompact: {
      raftpb::ConfState cs;
      cs.add_voters(1);
      return store->Compact(op.index, op.term, cs);
    }
    case Op::Kind::kSnapshot: {
      raftpb::SnapshotMetadata meta;
      meta.set_index(op.index);
      meta.set_term(op.term);
      meta.mutable_conf_state()->add_voters(1);
      return store->ApplySnapshot(meta, &op.changes);
    }
  }
  return absl::InternalError("unknown op");
}

Workload::Workload(ModelState initial, uint64_t seed)
    : rng_(seed), model_(std::move(initial)) {}

uint64_t Workload::Uniform(uint64_t lo, uint64_t hi) {
  return lo + rng_() % (hi - lo + 1);
}

bool Workload::Chance(int percent) { return Uniform(1, 100) <= percent; }

Op Workload::Next() {
  const uint64_t r = Uniform(0, 99);
  const ModelState& m = model_;
  if (r < 10 && m.LastIndex() > std::max(m.hard_state.commit(), m.snapshot_index)) {
    return NextConflictingAppend();
  }
  if (r >= 50 && r < 80 && m.applied_index < m.hard_state.commit()) {
    return NextApply();
  }
  if (r >= 80 && r < 90 && m.applied_index > m.snapshot_index + 5) {
    return NextCompact();
  }
  if (r >= 90 && r < 92) return NextSnapshot();
  return NextAppend();
}

Op Workload::NextAppend() {
  ModelState& m = model_;
  Op op;
  op.kind = Op::Kind::kAppend;
  const uint64_t term = std::max<uint64_t>({m.hard_state.term(), m.LastTerm(), 1});
  const uint64_t first = m.LastIndex() + 1;
  const uint64_t n = Uniform(1, 8);
  for (uint64_t i = first; i < first + n; ++i) {
    raftpb::Entry& e = op.entries.emplace_back();
    e.set_index(i);
    e.set_term(term);
    e.set_data(Payload(i, term));
    m.terms[i] = term;
  }
  if (Chance(80) || m.hard_state.term() != term) {
    op.has_hard_state = true;
    m.hard_state.set_term(term);
    m.hard_state.set_vote(1);
    m.hard_state.set_commit(Uniform(m.hard_state.commit(), m.LastIndex()));
    op.hard_state = m.hard_state;
  }
  return op;
}

Op Workload::NextConflictingAppend() {
  ModelState& m = model_;
  Op op;
  op.kind = Op::Kind::kAppend;
  const uint64_t term = std::max(m.hard_state.term(), m.LastTerm()) + 1;
  const uint64_t lo = std::max(m.hard_state.commit(), m.snapshot_index) + 1;
  const uint64_t first = Uniform(lo, m.LastIndex());
  const uint64_t n = Uniform(1, 4);
  m.terms.erase(m.terms.lower_bound(first), m.terms.end());
  for (uint64_t i = first; i < first + n; ++i) {
    raftpb::Entry& e = op.entries.emplace_back();
    e.set_index(i);
    e.set_term(term);
    e.set_data(Payload(i, term));
    m.terms[i] = term;
  }
  op.has_hard_state = true;
  m.hard_state.set_term(term);
  m.hard_state.set_vote(Uniform(1, 3));
  op.hard_state = m.hard_state;
  return op;
}

Op Workload::NextApply() {
  ModelState& m = model_;
  Op op;
  op.kind = Op::Kind::kApply;
  op.index = Uniform(m.applied_index + 1, m.hard_state.commit());
  const uint64_t n = Uniform(0, 4);
  for (uint64_t j = 0; j < n; ++j) {
    const std::string key = KeyName(static_cast<int>(Uniform(0, kNumKeys - 1)));
    if (Chance(20)) {
      op.changes.Delete(key);
      m.data.erase(key);
    } else {
      const std::string value = absl::StrCat("v", op.index, ".", j);
      op.changes.Put(key, value);
      m.data[key] = value;
    }
  }
  m.applied_index = op.index;
  return op;
}

Op Workload::NextCompact() {
  ModelState& m = model_;
  Op op;
  op.kind = Op::Kind::kCompact;
  op.index = Uniform(m.snapshot_index + 1,
                     std::min(m.applied_index, m.LastIndex()));
  op.term = m.TermAt(op.index);
  m.terms.erase(m.terms.begin(), m.terms.upper_bound(op.index));
  m.snapshot_index = op.index;
  m.snapshot_term = op.term;
  return op;
}

Op Workload::NextSnapshot() {
  ModelState& m = model_;
  Op op;
  op.kind = Op::Kind::kSnapshot;
  op.index = m.LastIndex() + Uniform(1, 10);
  op.term = std::max(m.hard_state.term(), m.LastTerm());
  m.data.clear();
  const uint64_t n = Uniform(0, 6);
  for (uint64_t j = 0; j < n; ++j) {
    const std::string key = KeyName(static_cast<int>(Uniform(0, kNumKeys - 1)));
    const std::string value = absl::StrCat("snap", op.index, ".", j);
    op.changes.Put(key, value);
    m.data[key] = value;
  }
  m.terms.clear();
  m.snapshot_index = op.index;
  m.snapshot_term = op.term;
  m.hard_state.set_commit(std::max(m.hard_state.commit(), op.index));
  m.applied_index = op.index;
  return op;
}

}  // namespace raftkv::storage::crash
