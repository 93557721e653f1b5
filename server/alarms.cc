#include "server/alarms.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "storage/synced_file.h"

namespace raftkv::server {
namespace {

constexpr char kPersistedPrefix[] = "raised before a restart: ";

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// The reason stored at `path`; NotFound if there is none.
absl::StatusOr<std::string> ReadReason(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return absl::NotFoundError(path);
    return Errno(absl::StrCat("reading ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string reason = text.str();
  while (!reason.empty() && reason.back() == '\n') reason.pop_back();
  if (reason.rfind(kPersistedPrefix, 0) == 0) reason.erase(0, sizeof(kPersistedPrefix) - 1);
  return reason.empty() ? std::string("(no reason recorded)") : reason;
}

}  // namespace

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
  if (fresh && type == AlarmType::kCorrupt && !corrupt_file_.empty()) {
    if (absl::Status s = storage::WriteFileAtomically(corrupt_file_, reason + "\n"); !s.ok()) {
      LOG(ERROR) << "alarm CORRUPT is not stored across a restart: " << s;
    }
  }
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

absl::Status Alarms::PersistCorrupt(const std::string& path) {
  absl::StatusOr<std::string> stored = ReadReason(path);
  if (!stored.ok() && !absl::IsNotFound(stored.status())) return stored.status();
  {
    absl::MutexLock l(&mu_);
    corrupt_file_ = path;
  }
  if (stored.ok()) Raise(AlarmType::kCorrupt, absl::StrCat(kPersistedPrefix, *stored));
  return absl::OkStatus();
}

absl::Status ClearPersistedCorrupt(const std::string& path, std::string* reason) {
  reason->clear();
  absl::StatusOr<std::string> stored = ReadReason(path);
  if (absl::IsNotFound(stored.status())) return absl::OkStatus();
  if (!stored.ok()) return stored.status();
  if (::unlink(path.c_str()) != 0) return Errno(absl::StrCat("removing ", path));
  if (absl::Status s = storage::SyncParentDir(path); !s.ok()) return s;
  *reason = *stored;
  return absl::OkStatus();
}

std::vector<std::string> Alarms::Describe() const {
  std::vector<std::string> out;
  for (const Alarm& a : List()) out.push_back(absl::StrCat(AlarmName(a.type), ": ", a.reason));
  return out;
}

}  // namespace raftkv::server
