// Hostile peer: messages that a correct Raft core must refuse, or may take
// without harm, made from the receiver's current state (the simulator's
// Options::hostile steps them into live nodes).
//
// Must be refused (Raft::Step returns an error, and nothing changes): a term
// past kMaxTerm; malformed messages; a heartbeat committing past the log; an
// append or snapshot disagreeing with the receiver's committed entries; a
// leader's message to the leader of its own term; an acknowledgement past
// the leader's log or a heartbeat answer for a round it never sent.
// Harmless: messages of a stale term, whatever they say, and answers of a
// slightly higher term (Figure 2: a higher term only makes the receiver a
// follower in it).
//
// What is never made: a well-formed message that a real leader or candidate
// could have sent (a forged append, vote request or grant, acknowledgement).
// The core cannot tell those from real ones; only the transport's peer
// authentication can keep them out.
#ifndef RAFTKV_RAFT_SIM_HOSTILE_PEER_H_
#define RAFTKV_RAFT_SIM_HOSTILE_PEER_H_

#include <cstdint>
#include <random>

#include "proto/raft.pb.h"
#include "raft/raft.h"

namespace raftkv::raft::sim {

struct HostileMessage {
  raftpb::Message msg;
  bool must_refuse = false;
  const char* kind = "";
};

// A message to `receiver` claiming to come from `from` (!= receiver.id()).
// With `term_bumps` it may also make harmless answers of a higher term
// (never with lease reads: a follower moved to a new term forgets its leader
// and may vote before the leader's lease ends, which only a real candidate's
// message, refused within the lease, cannot make it do).
HostileMessage MakeHostileMessage(std::mt19937_64& rng, const Raft& receiver, uint64_t from,
                                  bool term_bumps);

}  // namespace raftkv::raft::sim

#endif  // RAFTKV_RAFT_SIM_HOSTILE_PEER_H_
