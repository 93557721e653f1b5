// AlarmStore: etcd's alarms as replicated state (etcd's alarm bucket): which
// member raised which alarm. Only log entries (kvpb::Command.alarm) change
// it, so every member holds the same set at the same applied index; it lives
// in `data` ("a" + be64(member id) + the type's byte -> ""), so it survives
// restarts and travels in snapshots. A restore into a new cluster drops it
// (the members it names are the old cluster's).
//
// While any member's NOSPACE is active, etcd's writes that may add data are
// refused with etcd's ErrNoSpace, as etcd's capped applier does: Put, and a
// Txn with any op other than a Range (a nested Txn is one). Range,
// DeleteRange and Compact go on, so an operator can free space, then clear
// the alarm (`etcdctl alarm disarm`).
//
// Thread safety: Load and Apply on the apply thread (one at a time); the
// other methods on any thread.
#ifndef RAFTKV_SERVER_ETCD_ALARM_STORE_H_
#define RAFTKV_SERVER_ETCD_ALARM_STORE_H_

#include <atomic>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "proto/etcd/rpc.pb.h"
#include "proto/kv.pb.h"
#include "storage/data_batch.h"
#include "storage/log_store.h"

namespace raftkv::server::etcd {

class AlarmStore {
 public:
  // Whether `data_key` is one of the store's records.
  static bool IsAlarmKey(absl::string_view data_key);
  // The log command that applies `req` (ACTIVATE or DEACTIVATE) everywhere.
  static std::string Command(const etcdserverpb::AlarmRequest& req);

  // Reads the alarms from `store`'s data: at open, and after a snapshot
  // replaced the data. DataLoss for an undecodable record.
  absl::Status Load(const storage::LogStore& store) ABSL_LOCKS_EXCLUDED(mu_);

  // Applies an ACTIVATE or DEACTIVATE of NOSPACE or CORRUPT for a member
  // (not 0), adding the record's change to `batch`; answers as etcd does:
  // ACTIVATE the alarm (active before or not), DEACTIVATE the alarm it
  // cleared (none if it was not active). InvalidArgument for anything else
  // (the same on every member: nothing changes).
  absl::StatusOr<etcdserverpb::AlarmResponse> Apply(const etcdserverpb::AlarmRequest& req,
                                                    storage::DataBatch* batch)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Active alarms of type `type` (NONE: all), by member id then type.
  std::vector<etcdserverpb::AlarmMember> List(
      etcdserverpb::AlarmType type = etcdserverpb::NONE) const ABSL_LOCKS_EXCLUDED(mu_);
  // Whether some member's `type` is active. Lock-free.
  bool Active(etcdserverpb::AlarmType type) const {
    return type == etcdserverpb::NOSPACE && nospace_.load(std::memory_order_acquire);
  }
  // OK, or etcd's ErrNoSpace for a write that NOSPACE refuses (see above).
  absl::Status AdmitWrite(const kvpb::EtcdWrite& w) const;

 private:
  void UpdateFlagsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::set<std::pair<uint64_t, int>> active_ ABSL_GUARDED_BY(mu_);  // (member, type)
  std::atomic<bool> nospace_{false};  // some member's NOSPACE is in active_
};

}  // namespace raftkv::server::etcd

#endif  // RAFTKV_SERVER_ETCD_ALARM_STORE_H_
