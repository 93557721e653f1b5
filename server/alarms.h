// Alarms: conditions under which a node refuses some requests until they
// clear, named as etcd's (etcdserverpb.AlarmType): NOSPACE (the data disk is
// below its free-space reserve: writes refused, reads served) and CORRUPT
// (the node's data cannot be vouched for: reads it cannot verify refused).
// Each alarm carries a one-line reason for logs and `kvctl status`.
//
// NOSPACE clears by itself. CORRUPT does not, and with PersistCorrupt it
// survives restarts: a node whose data were found corrupt stays so until an
// operator replaces its data dir or clears the alarm explicitly
// (ClearPersistedCorrupt, server --clear_corrupt_alarm).
//
// Thread safety: every method may be called from any thread.
#ifndef RAFTKV_SERVER_ALARMS_H_
#define RAFTKV_SERVER_ALARMS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace raftkv::server {

// Values as etcd's AlarmType, so an etcd Alarm API can report them as is.
enum class AlarmType { kNoSpace = 1, kCorrupt = 2 };

// "NOSPACE" or "CORRUPT".
const char* AlarmName(AlarmType type);

struct Alarm {
  AlarmType type;
  std::string reason;
};

class Alarms {
 public:
  // Raises `type` (or replaces its reason). Logs once per raise, not per
  // repeated call with the alarm already active. Returns true if it was not
  // active before.
  bool Raise(AlarmType type, std::string reason);
  // Clears `type`; true if it was active.
  bool Clear(AlarmType type);
  // Lock-free: cheap enough to ask on every request.
  bool Active(AlarmType type) const {
    return (active_bits_.load(std::memory_order_acquire) & Bit(type)) != 0;
  }
  // Active alarms in AlarmType order.
  std::vector<Alarm> List() const;
  // "NOSPACE: reason" per active alarm, for status.
  std::vector<std::string> Describe() const;

  // From now on, raising CORRUPT also writes its reason to the file `path`
  // (atomically and synced; a failure is logged, the alarm stays raised in
  // memory). If `path` exists, CORRUPT is raised at once with its reason
  // ("raised before a restart: ..."). Call once, before serving.
  absl::Status PersistCorrupt(const std::string& path) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  static uint32_t Bit(AlarmType type) { return 1u << static_cast<int>(type); }

  mutable absl::Mutex mu_;
  std::map<AlarmType, std::string> active_ ABSL_GUARDED_BY(mu_);
  std::string corrupt_file_ ABSL_GUARDED_BY(mu_);  // empty: CORRUPT not persisted
  // The keys of active_, one bit each; written under mu_.
  std::atomic<uint32_t> active_bits_{0};
};

// Removes a CORRUPT alarm persisted at `path`, setting `*reason` to its
// reason ("" and OK if there was none). For an operator who decided this
// node's data are the ones to keep.
absl::Status ClearPersistedCorrupt(const std::string& path, std::string* reason);

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_ALARMS_H_
