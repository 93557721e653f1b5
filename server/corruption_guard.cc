#include "server/corruption_guard.h"

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

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

void ExitIfCorrupt(uint64_t node_id, absl::string_view what, const absl::Status& s) {
  if (!absl::IsDataLoss(s)) return;
  const std::string who = node_id == 0 ? "this node" : absl::StrCat("node ", node_id);
  LOG(ERROR) << who << " stops: " << what << ": " << s.message()
             << ". The data dir is damaged: replace this node (kvctl member remove "
             << (node_id == 0 ? std::string("ID") : absl::StrCat(node_id))
             << ", then add a fresh node with --join)";
  google::FlushLogFiles(google::GLOG_INFO);
  _exit(1);  // like a crash: nothing half-written matters (every write is atomic)
}

}  // namespace raftkv::server
