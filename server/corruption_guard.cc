#include "server/corruption_guard.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace raftkv::server {

absl::Status CorruptionGuard::Check(const absl::Status& s) {
  if (!absl::IsDataLoss(s)) return s;
  {
    absl::MutexLock l(&mu_);
    if (!corrupt()) {
      // Alarms::Raise logs this line once, at ERROR.
      alarms_->Raise(AlarmType::kCorrupt,
                     absl::StrCat("data corruption: ", s.message(),
                                  "; this node no longer serves reads (replace it: kvctl member "
                                  "remove ",
                                  node_id_, ", then add a fresh node)"));
    }
  }
  return absl::DataLossError(absl::StrCat("node ", node_id_, ": data corruption: ", s.message(),
                                          "; this node no longer serves reads"));
}

absl::Status CorruptionGuard::Refusal() const {
  std::string reason = "raised";
  for (const Alarm& a : alarms_->List()) {
    if (a.type == AlarmType::kCorrupt) reason = a.reason;
  }
  return absl::DataLossError(
      absl::StrCat("node ", node_id_, " does not serve reads: alarm CORRUPT: ", reason));
}

}  // namespace raftkv::server
