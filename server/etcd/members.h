// How raftkv's members look through etcd's Cluster API (docs/ETCD.md):
//
// - ID: the raft node id (--id). MemberAdd draws a new random non-zero id;
//   the operator starts the node with --id=0x<the hex etcdctl prints>.
// - peerURLs and clientURLs: raftkv serves peers and clients on one address
//   (HOST:PORT), so both are that address as "http://HOST:PORT", "https://"
//   when the client port takes TLS. One URL per member.
// - name: "node-<id>" (decimal, as raftkv's --id and logs) once the member
//   has started (the leader recorded its incarnation,
//   server/incarnation_recorder.h); until then empty, with no clientURLs,
//   as etcd shows a member that was added but never started.
//
// Thread safety: pure functions.
#ifndef RAFTKV_SERVER_ETCD_MEMBERS_H_
#define RAFTKV_SERVER_ETCD_MEMBERS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/etcd/rpc.pb.h"
#include "proto/raft.pb.h"
#include "raft/raft.h"

namespace raftkv::server::etcd {

// "http://HOST:PORT", or "https://HOST:PORT" with `tls`.
std::string MemberURL(const std::string& address, bool tls);

// The address (HOST:PORT) the peer URLs of a MemberAdd or MemberUpdate name.
// Accepted: exactly one URL (raftkv keeps one address per member), scheme
// https with `tls` and http without (the one port takes TLS or not for
// everyone), HOST:PORT with a port in 1..65535, nothing else (no user, path,
// query or fragment). Anything else: etcd's kMemberBadURLs, with the reason
// in *why (for the server's log; etcd's clients match the message exactly).
absl::StatusOr<std::string> AddressOfPeerURLs(const std::vector<std::string>& urls, bool tls,
                                              std::string* why);

// A new member id: the first draw() that is neither 0 nor in `taken`.
// REQUIRES: draw() eventually returns such a value.
uint64_t NewMemberId(const std::set<uint64_t>& taken, const std::function<uint64_t()>& draw);

// "node-<id>".
std::string MemberName(uint64_t id);

// Every member of `conf` (voters and learners) as etcd's Member, by id as
// etcd lists them: addresses from `addresses` (a member missing there gets no URLs),
// name and clientURLs only for the ids in `started`.
std::vector<etcdserverpb::Member> ListMembers(const raftpb::ConfState& conf,
                                              const std::map<uint64_t, std::string>& addresses,
                                              const std::set<uint64_t>& started, bool tls);

// Whether the leader may promote learner `id`, as etcd decides it: the
// learner's match index is at least 90% of the leader's. `leader` is the
// leader's raft status (with progress). kMemberNotFound if `id` is not a
// member, kMemberNotLearner if it is a voter, kLearnerNotReady if it lags;
// FailedPrecondition if `leader` is not a leader's status.
absl::Status CheckPromotable(const raft::Status& leader, uint64_t id);

// A membership change on this node (blocking until applied or failed).
using ConfChangeFn =
    std::function<absl::StatusOr<raftpb::ConfState>(raftpb::ConfChange cc, absl::Time deadline)>;

// `change`, for the leader's side of the etcd services' membership changes
// (local or forwarded to it): an add-voter is a promotion (MemberAdd adds
// learners) and runs only if CheckPromotable(status(), id) passes while
// this node leads; a node that does not lead lets `change` answer "not
// leader". Other changes go straight to `change`.
ConfChangeFn CheckingPromotions(ConfChangeFn change, std::function<raft::Status()> status);

}  // namespace raftkv::server::etcd

#endif  // RAFTKV_SERVER_ETCD_MEMBERS_H_
