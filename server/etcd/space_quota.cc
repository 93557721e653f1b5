#include "server/etcd/space_quota.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "server/etcd/errors.h"

namespace raftkv::server::etcd {

absl::Status SpaceQuotaOptions::Validate() const {
  if (quota_bytes == 0) return absl::InvalidArgumentError("quota_bytes must be positive");
  if (check_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("check_interval must be positive");
  }
  return absl::OkStatus();
}

SpaceQuota::SpaceQuota(SpaceQuotaOptions options, std::function<uint64_t()> size,
                       std::function<bool()> alarm_active, std::function<void()> raise)
    : options_(options), size_(std::move(size)), alarm_active_(std::move(alarm_active)),
      raise_(std::move(raise)) {}

SpaceQuota::~SpaceQuota() { Stop(); }

void SpaceQuota::Start() {
  absl::MutexLock l(&mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Loop(); });
}

void SpaceQuota::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void SpaceQuota::Loop() {
  absl::MutexLock l(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.check_interval);
    if (stopping_) break;
    mu_.Unlock();
    Check();
    mu_.Lock();
  }
}

absl::Status SpaceQuota::Admit(uint64_t cost) {
  if (size_() + cost <= options_.quota_bytes) return absl::OkStatus();
  MaybeRaise();
  return EtcdError(Error::kNoSpace);
}

bool SpaceQuota::Check() {
  if (size_() <= options_.quota_bytes) return false;
  MaybeRaise();
  return true;
}

void SpaceQuota::MaybeRaise() {
  if (alarm_active_()) return;
  {
    absl::MutexLock l(&mu_);
    const absl::Time now = absl::Now();
    if (now - last_raise_ < options_.check_interval) return;
    last_raise_ = now;
  }
  LOG(WARNING) << "the data (" << size_() << " bytes) exceed the space quota ("
               << options_.quota_bytes << " bytes, --quota_backend_bytes): raising NOSPACE";
  raise_();
}

}  // namespace raftkv::server::etcd
