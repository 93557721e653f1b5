#include "storage/byte_pacer.h"

#include <algorithm>
#include <utility>

namespace raftkv::storage {

BytePacer::BytePacer(uint64_t bytes_per_sec, PacerClock clock)
    : bytes_per_sec_(bytes_per_sec),
      chunk_(std::clamp<uint64_t>(bytes_per_sec / 16, 1, 64 << 10)),
      clock_(std::move(clock)) {}

bool BytePacer::Account(uint64_t bytes) {
  if (bytes_per_sec_ == 0) return true;
  pending_ += bytes;
  if (pending_ < chunk_) return true;
  const absl::Time now = clock_.now();
  next_ = std::max(next_, now);
  const absl::Duration wait = next_ - now;
  next_ += absl::Seconds(static_cast<double>(pending_) / bytes_per_sec_);
  pending_ = 0;
  return wait <= absl::ZeroDuration() || clock_.sleep(wait);
}

}  // namespace raftkv::storage
