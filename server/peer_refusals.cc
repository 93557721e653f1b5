#include "server/peer_refusals.h"

#include <climits>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"

namespace raftkv::server {

const char* PeerRefusalName(PeerRefusal r) {
  switch (r) {
    case PeerRefusal::kPeerCertificate:
      return "peer_certificate";
    case PeerRefusal::kOtherCluster:
      return "other_cluster";
    case PeerRefusal::kNoSender:
      return "no_sender";
    case PeerRefusal::kWrongIncarnation:
      return "wrong_incarnation";
    case PeerRefusal::kWrongRecipient:
      return "wrong_recipient";
    case PeerRefusal::kWrongSender:
      return "wrong_sender";
    case PeerRefusal::kBareSnapshot:
      return "bare_snapshot";
    case PeerRefusal::kNonMember:
      return "non_member";
  }
  return "unknown";
}

bool PeerRefusals::Count(PeerRefusal r, absl::FunctionRef<std::string()> what) {
  Slot& s = slots_[Index(r)];
  const uint64_t total = s.count.fetch_add(1) + 1;
  const int64_t now = absl::GetCurrentTimeNanos();
  int64_t last = s.last_warning_ns.load();
  // One thread wins the slot's next warning; the others only count.
  if ((last != INT64_MIN && now - last < warn_every_ns_) ||
      !s.last_warning_ns.compare_exchange_strong(last, now)) {
    s.unlogged.fetch_add(1);
    return false;
  }
  const uint64_t unlogged = s.unlogged.exchange(0);
  LOG(WARNING) << "peer traffic refused (" << PeerRefusalName(r) << "): " << what() << " ["
               << total << " since start"
               << (unlogged > 0 ? absl::StrCat(", ", unlogged, " not logged since the last") : "")
               << "]";
  return true;
}

std::map<std::string, uint64_t> PeerRefusals::Counts() const {
  std::map<std::string, uint64_t> out;
  for (int i = 0; i < kNumPeerRefusals; ++i) {
    out[PeerRefusalName(static_cast<PeerRefusal>(i))] = slots_[i].count.load();
  }
  return out;
}

}  // namespace raftkv::server
