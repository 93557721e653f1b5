// Metadata every peer stream (Peer.Send, Peer.InstallSnapshot) carries:
// the cluster it belongs to, who sends it, as node id and incarnation
// (server/peer_incarnations.h), and the node id it is for. The receiver
// refuses a stream whose cluster, sender or recipient it does not accept,
// and drops messages whose `from` is not the stream's sender or whose `to`
// is not itself (server/peer_refusals.h counts each).
#ifndef RAFTKV_SERVER_PEER_HEADERS_H_
#define RAFTKV_SERVER_PEER_HEADERS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace raftkv::server {

inline constexpr char kClusterIdHeader[] = "raftkv-cluster-id";
// "ID/INCARNATION", both decimal.
inline constexpr char kSenderHeader[] = "raftkv-sender";
// The node id the sender means to reach, decimal. A stream for another id
// is refused (a wrong address in --cluster or a member list); one without
// it (an older sender) is taken, each message's `to` checked instead.
inline constexpr char kRecipientHeader[] = "raftkv-recipient";

inline std::string FormatSender(uint64_t id, uint64_t incarnation) {
  return absl::StrCat(id, "/", incarnation);
}

// (id, incarnation), or nullopt if malformed.
inline std::optional<std::pair<uint64_t, uint64_t>> ParseSender(absl::string_view v) {
  const size_t slash = v.find('/');
  uint64_t id = 0, incarnation = 0;
  if (slash == absl::string_view::npos || !absl::SimpleAtoi(v.substr(0, slash), &id) ||
      !absl::SimpleAtoi(v.substr(slash + 1), &incarnation) || id == 0) {
    return std::nullopt;
  }
  return std::make_pair(id, incarnation);
}

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_PEER_HEADERS_H_
