// PeerRefusals: counts the peer streams a node refuses and the peer
// messages it drops before they reach the Raft core, one counter per
// reason, and logs each reason at most once per `warn_every` (with how many
// went unlogged), so a misconfigured or hostile peer cannot flood the log.
//
// What is refused (server/transport.h PeerService, server/node.h):
//   peer_certificate   a stream without a certificate the peer CA signed
//                      (--peer_client_cert_auth)
//   other_cluster      a stream without this node's cluster id
//   no_sender          a stream that does not say who sends it
//   wrong_incarnation  a sender whose incarnation this cluster does not
//                      know it by (server/peer_incarnations.h)
//   wrong_recipient    a stream or message addressed to another node id
//   wrong_sender       a message whose `from` is not the stream's sender
//   bare_snapshot      a snapshot message outside InstallSnapshot
//   non_member         a message to the leader from a node in none of its
//                      configurations (server/node.h, Node::StepMessage)
// The Raft core's own refusals (malformed or contradicting messages) are
// counted apart (raft::Status::rejected_messages).
//
// Thread safety: every method may be called from any thread; Count is a
// few atomic operations unless it logs.
#ifndef RAFTKV_SERVER_PEER_REFUSALS_H_
#define RAFTKV_SERVER_PEER_REFUSALS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"

namespace raftkv::server {

enum class PeerRefusal {
  kPeerCertificate,
  kOtherCluster,
  kNoSender,
  kWrongIncarnation,
  kWrongRecipient,
  kWrongSender,
  kBareSnapshot,
  kNonMember,
};
inline constexpr int kNumPeerRefusals = 8;

// The reason's name as Admin.Status and kvctl show it ("other_cluster").
const char* PeerRefusalName(PeerRefusal r);

class PeerRefusals {
 public:
  explicit PeerRefusals(absl::Duration warn_every = absl::Seconds(10))
      : warn_every_ns_(absl::ToInt64Nanoseconds(warn_every)) {}

  // Counts one refusal; logs a warning with what(), unless this reason was
  // logged less than warn_every ago. Returns whether it logged.
  bool Count(PeerRefusal r, absl::FunctionRef<std::string()> what);

  uint64_t count(PeerRefusal r) const { return slots_[Index(r)].count.load(); }
  // Every reason's count by name, zeros included.
  std::map<std::string, uint64_t> Counts() const;

 private:
  static size_t Index(PeerRefusal r) { return static_cast<size_t>(r); }

  struct Slot {
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> unlogged{0};  // counted since the last warning
    std::atomic<int64_t> last_warning_ns{INT64_MIN};
  };
  const int64_t warn_every_ns_;
  std::array<Slot, kNumPeerRefusals> slots_;
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_PEER_REFUSALS_H_
