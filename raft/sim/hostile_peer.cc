#include "raft/sim/hostile_peer.h"

#include <algorithm>
#include <limits>

namespace raftkv::raft::sim {
namespace {

using raftpb::Message;
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

class Maker {
 public:
  Maker(std::mt19937_64& rng, const Raft& r, uint64_t from)
      : rng_(rng), r_(r), log_(r.log()), from_(from), term_(r.term()) {}

  uint64_t Uniform(uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }
  bool Coin() { return Uniform(0, 1) == 1; }
  // t + k, not past UINT64_MAX.
  static uint64_t Add(uint64_t t, uint64_t k) { return t > kU64Max - k ? kU64Max : t + k; }

  // Values around the receiver's state and the edges of the range.
  uint64_t Interesting() {
    switch (Uniform(0, 9)) {
      case 0: return 0;
      case 1: return 1;
      case 2: return term_;
      case 3: return Add(term_, 1);
      case 4: return log_.committed();
      case 5: return log_.LastIndex();
      case 6: return Add(log_.LastIndex(), 1);
      case 7: return kMaxTerm;
      case 8: return kU64Max;
      default: return rng_();
    }
  }

  Message Base(raftpb::MessageType type, uint64_t term) {
    Message m;
    m.set_type(type);
    m.set_from(from_);
    m.set_to(r_.id());
    m.set_term(term);
    return m;
  }

  // A message of `type` and `term` whose other fields are anything.
  Message Junk(raftpb::MessageType type, uint64_t term) {
    Message m = Base(type, term);
    m.set_index(Interesting());
    m.set_log_term(Interesting());
    m.set_commit(Interesting());
    m.set_reject(Coin());
    m.set_reject_hint(Interesting());
    m.set_reject_term(Interesting());
    m.set_read_round(Interesting());
    m.set_commit_only(Coin());
    if (Coin()) m.set_context(Coin() ? "transfer" : "hostile");
    for (uint64_t k = Uniform(0, 3), i = m.index(); k > 0; --k) {
      raftpb::Entry* e = m.add_entries();
      i = Coin() ? Add(i, 1) : Interesting();
      e->set_index(i);
      e->set_term(Coin() ? m.log_term() : Interesting());
    }
    if (type == raftpb::MSG_SNAPSHOT || Coin()) {
      raftpb::SnapshotMetadata* meta = m.mutable_snapshot()->mutable_metadata();
      meta->set_index(Interesting());
      meta->set_term(Interesting());
      if (Coin()) *meta->mutable_conf_state() = r_.conf_state();
    }
    return m;
  }

  raftpb::MessageType AnyType() {
    return static_cast<raftpb::MessageType>(Uniform(raftpb::MSG_APPEND,
                                                    raftpb::MSG_READ_INDEX_RESP));
  }

  // The receiver holds (and can read) entry i.
  bool Known(uint64_t i) { return log_.Term(i).ok(); }

  HostileMessage Make(bool term_bumps);

 private:
  HostileMessage Refused(Message m, const char* kind) { return {std::move(m), true, kind}; }
  HostileMessage Harmless(Message m, const char* kind) { return {std::move(m), false, kind}; }
  HostileMessage Malformed();
  HostileMessage CommitPastLog();
  HostileMessage AgainstCommitted();

  std::mt19937_64& rng_;
  const Raft& r_;
  const RaftLog& log_;
  const uint64_t from_;
  const uint64_t term_;
};

HostileMessage Maker::Malformed() {
  const uint64_t last = log_.LastIndex();
  const uint64_t term = std::max<uint64_t>(1, Coin() ? term_ : Add(term_, 1));
  Message m = Base(raftpb::MSG_APPEND, std::min(term, kMaxTerm));
  m.set_index(last);
  m.set_log_term(log_.LastTerm());
  switch (Uniform(0, 9)) {
    case 0: {
      raftpb::Entry* e = m.add_entries();
      e->set_index(last + 1);  // of term 0
      break;
    }
    case 1: {
      raftpb::Entry* e = m.add_entries();
      e->set_index(last + 1 + Uniform(1, 5));  // a gap
      e->set_term(m.term());
      break;
    }
    case 2:
      m.set_log_term(Add(m.term(), Uniform(1, 3)));
      break;
    case 3:
      m.set_index(Add(last, Uniform(1, 100)));
      m.set_log_term(0);
      m.set_commit(m.index());
      break;
    case 4: {
      m.set_index(kU64Max - Uniform(0, 1));
      for (int k = 0; k < 2; ++k) {
        raftpb::Entry* e = m.add_entries();
        e->set_index(m.index() + 1 + k);  // wraps
        e->set_term(m.term());
      }
      break;
    }
    case 5:
      m = Junk(Coin() ? raftpb::MSG_HEARTBEAT : raftpb::MSG_VOTE, 0);
      break;
    case 6: {
      m = Junk(raftpb::MSG_SNAPSHOT, std::min(term, kMaxTerm));
      raftpb::SnapshotMetadata* meta = m.mutable_snapshot()->mutable_metadata();
      meta->set_index(Uniform(1, kU64Max));
      meta->set_term(Coin() ? 0 : Add(m.term(), Uniform(1, 3)));
      break;
    }
    case 7:
      m = Junk(raftpb::MSG_APPEND_RESP, term_);
      m.set_reject(true);
      m.set_index(Uniform(0, kU64Max - 1));
      m.set_reject_hint(Add(m.index(), Uniform(1, 10)));
      break;
    case 8:
      m = Junk(AnyType(), term_);
      m.set_to(r_.id() + Uniform(1, 3));
      break;
    default:
      m = Junk(AnyType(), term_);
      m.set_from(Coin() ? 0 : r_.id());
      break;
  }
  return Refused(std::move(m), "malformed");
}

HostileMessage Maker::CommitPastLog() {
  Message m = Base(raftpb::MSG_HEARTBEAT, std::max<uint64_t>(1, std::min(Add(term_, Uniform(0, 1)),
                                                                           kMaxTerm)));
  m.set_commit(Coin() ? Add(log_.LastIndex(), Uniform(1, 1000)) : kU64Max);
  m.set_read_round(Interesting());
  return Refused(std::move(m), "heartbeat committing past the log");
}

// An append or snapshot that disagrees with an entry at or below the
// receiver's commit index, in a term >= the receiver's.
HostileMessage Maker::AgainstCommitted() {
  const uint64_t commit = log_.committed();
  const uint64_t lo = log_.FirstIndex() - 1;  // the snapshot's entry: known
  if (commit == 0 || lo >= commit) return CommitPastLog();
  const uint64_t i = Uniform(lo, commit - 1);
  if (!Known(i) || !Known(i + 1)) return CommitPastLog();
  const uint64_t ti = log_.TermOrZero(i), next = log_.TermOrZero(i + 1);
  switch (Uniform(0, 3)) {
    case 0: {  // replaces entry i+1 (and maybe more)
      Message m = Base(raftpb::MSG_APPEND, Add(std::max(term_, next), Uniform(1, 2)));
      m.set_index(i);
      m.set_log_term(ti);
      m.set_commit(Interesting());
      for (uint64_t k = 1, n = Uniform(1, 3); k <= n; ++k) {
        raftpb::Entry* e = m.add_entries();
        e->set_index(i + k);
        e->set_term(m.term());
      }
      return Refused(std::move(m), "append replacing a committed entry");
    }
    case 1: {  // its previous entry differs from our committed one
      Message m = Base(raftpb::MSG_APPEND, std::max(term_, ti + 1));
      m.set_index(i);
      m.set_log_term(ti + 1);
      m.set_commit(Interesting());
      return Refused(std::move(m), "append whose previous entry contradicts a committed one");
    }
    case 2: {  // a snapshot whose last entry is ours, but of another term
      Message m = Base(raftpb::MSG_SNAPSHOT, std::max(term_, ti + 1));
      raftpb::SnapshotMetadata* meta = m.mutable_snapshot()->mutable_metadata();
      meta->set_index(i);
      meta->set_term(ti + 1);
      *meta->mutable_conf_state() = r_.conf_state();
      return Refused(std::move(m), "snapshot contradicting a committed entry");
    }
    default: {  // a snapshot past our commit index, of a lower term
      const uint64_t tc = log_.TermOrZero(commit);
      if (tc < 2) return CommitPastLog();
      Message m = Base(raftpb::MSG_SNAPSHOT, std::max<uint64_t>(term_, 1));
      raftpb::SnapshotMetadata* meta = m.mutable_snapshot()->mutable_metadata();
      meta->set_index(commit + Uniform(1, 10));
      meta->set_term(Uniform(1, tc - 1));
      *meta->mutable_conf_state() = r_.conf_state();
      return Refused(std::move(m), "snapshot of a term below a committed entry's");
    }
  }
}

HostileMessage Maker::Make(bool term_bumps) {
  const bool leader = r_.role() == Role::kLeader;
  switch (Uniform(0, 7)) {
    case 0:
      return Refused(Junk(AnyType(), kU64Max), "term 2^64-1");
    case 1:
      return Malformed();
    case 2:
      return CommitPastLog();
    case 3:
      return AgainstCommitted();
    case 4:
      if (leader) {  // another leader of its own term
        const raftpb::MessageType types[] = {raftpb::MSG_APPEND, raftpb::MSG_HEARTBEAT,
                                             raftpb::MSG_SNAPSHOT};
        return Refused(Junk(types[Uniform(0, 2)], term_), "leader message to its term's leader");
      }
      [[fallthrough]];
    case 5:
      if (leader) {
        Message m = Base(Coin() ? raftpb::MSG_APPEND_RESP : raftpb::MSG_HEARTBEAT_RESP, term_);
        if (m.type() == raftpb::MSG_HEARTBEAT_RESP) {
          m.set_read_round(Uniform(uint64_t{1} << 62, kU64Max));  // never sent
        } else if (Coin()) {
          m.set_index(Add(log_.LastIndex(), Uniform(1, 100)));
          m.set_reject(Coin());
          m.set_reject_hint(m.reject() ? Uniform(0, log_.LastIndex()) : 0);
        } else {
          m.set_index(log_.LastIndex());
          m.set_reject(true);
          m.set_reject_hint(Uniform(0, log_.LastIndex()));
          m.set_reject_term(Add(term_, Uniform(1, 100)));
        }
        return Refused(std::move(m), "impossible answer to a leader");
      }
      return AgainstCommitted();
    case 6:
      if (term_ > 0) return Harmless(Junk(AnyType(), Uniform(0, term_ - 1)), "stale term");
      return Refused(Junk(AnyType(), kU64Max), "term 2^64-1");
    default: {
      if (!term_bumps || term_ >= kMaxTerm - 3) return Malformed();
      const raftpb::MessageType types[] = {
          raftpb::MSG_APPEND_RESP, raftpb::MSG_HEARTBEAT_RESP, raftpb::MSG_VOTE_RESP,
          raftpb::MSG_PRE_VOTE_RESP, raftpb::MSG_READ_INDEX, raftpb::MSG_READ_INDEX_RESP,
          raftpb::MSG_TIMEOUT_NOW};
      Message m = Junk(types[Uniform(0, 6)], term_ + Uniform(1, 3));
      m.clear_entries();
      return Harmless(std::move(m), "answer of a higher term");
    }
  }
}

}  // namespace

HostileMessage MakeHostileMessage(std::mt19937_64& rng, const Raft& receiver, uint64_t from,
                                  bool term_bumps) {
  return Maker(rng, receiver, from).Make(term_bumps);
}

}  // namespace raftkv::raft::sim
