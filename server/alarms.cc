#include "server/alarms.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace raftkv::server {

const char* AlarmName(AlarmType type) {
  switch (type) {
    case AlarmType::kNoSpace:
      return "NOSPACE";
    case AlarmType::kCorrupt:
      return "CORRUPT";
  }
  return "UNKNOWN";
}

bool Alarms::Raise(AlarmType type, std::string reason) {
  absl::MutexLock l(&mu_);
  const bool fresh = active_.find(type) == active_.end();
  if (fresh) LOG(ERROR) << "alarm " << AlarmName(type) << " raised: " << reason;
  active_[type] = std::move(reason);
  active_bits_.fetch_or(Bit(type), std::memory_order_release);
  return fresh;
}

bool Alarms::Clear(AlarmType type) {
  absl::MutexLock l(&mu_);
  if (active_.erase(type) == 0) return false;
  active_bits_.fetch_and(~Bit(type), std::memory_order_release);
  LOG(WARNING) << "alarm " << AlarmName(type) << " cleared";
  return true;
}

std::vector<Alarm> Alarms::List() const {
  absl::MutexLock l(&mu_);
  std::vector<Alarm> out;
  for (const auto& [type, reason] : active_) out.push_back({type, reason});
  return out;
}

std::vector<std::string> Alarms::Describe() const {
  std::vector<std::string> out;
  for (const Alarm& a : List()) out.push_back(absl::StrCat(AlarmName(a.type), ": ", a.reason));
  return out;
}

}  // namespace raftkv::server
