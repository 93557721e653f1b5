// SpaceQuota: etcd's backend quota (--quota-backend-bytes). When the bytes
// this member's data occupy (LogStore::DataSizes().total()) exceed the
// quota, it raises this member's NOSPACE through the log, as etcd's quota
// alarmer does; once applied, every member refuses etcd's writes that add
// data (server/etcd/alarm_store.h) until an operator clears the alarm.
//
// It checks every check_interval on its own thread, and on demand (Admit,
// for a write about to be proposed, as etcd's quotaKVServer). A raise is
// proposed at most once per check_interval while the alarm is not active.
//
// Thread safety: every method may be called from any thread.
#ifndef RAFTKV_SERVER_ETCD_SPACE_QUOTA_H_
#define RAFTKV_SERVER_ETCD_SPACE_QUOTA_H_

#include <cstdint>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace raftkv::server::etcd {

struct SpaceQuotaOptions {
  // etcd's default quota, 2 GiB.
  static constexpr uint64_t kDefaultBytes = uint64_t{2} << 30;
  uint64_t quota_bytes = kDefaultBytes;
  absl::Duration check_interval = absl::Seconds(1);

  // InvalidArgument naming the field.
  absl::Status Validate() const;
};

class SpaceQuota {
 public:
  // `size`: the data's bytes now. `alarm_active`: whether this member's
  // NOSPACE is active in the replicated state. `raise`: proposes it (must
  // not block long; its outcome is seen through alarm_active).
  // REQUIRES: options.Validate().ok().
  SpaceQuota(SpaceQuotaOptions options, std::function<uint64_t()> size,
             std::function<bool()> alarm_active, std::function<void()> raise);
  ~SpaceQuota();  // Stop()s

  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // For a write of about `cost` bytes before it is proposed: OK, or etcd's
  // ErrNoSpace (and the alarm raised) if the data and the write would
  // exceed the quota.
  absl::Status Admit(uint64_t cost) ABSL_LOCKS_EXCLUDED(mu_);
  // One check now: raises the alarm if the data exceed the quota. Returns
  // whether they do.
  bool Check() ABSL_LOCKS_EXCLUDED(mu_);

  uint64_t quota_bytes() const { return options_.quota_bytes; }

 private:
  void MaybeRaise() ABSL_LOCKS_EXCLUDED(mu_);
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  const SpaceQuotaOptions options_;
  const std::function<uint64_t()> size_;
  const std::function<bool()> alarm_active_;
  const std::function<void()> raise_;
  absl::Mutex mu_;
  absl::Time last_raise_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace raftkv::server::etcd

#endif  // RAFTKV_SERVER_ETCD_SPACE_QUOTA_H_
