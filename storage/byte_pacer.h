// BytePacer: keeps a loop that reads (or hashes) bytes under a rate. The
// loop reports each piece it handled with Account(); once a chunk has
// gathered, Account() waits until the bytes before it are due at the rate,
// so over any stretch the average stays under the rate and idle time does
// not bank a burst (the scrub, the hash check and backups use it). The first
// chunk goes at once: N bytes take at least (N - chunk) / rate.
//
// Thread-compatible: one loop uses it.
#ifndef RAFTKV_STORAGE_BYTE_PACER_H_
#define RAFTKV_STORAGE_BYTE_PACER_H_

#include <cstdint>
#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace raftkv::storage {

struct PacerClock {
  std::function<absl::Time()> now = [] { return absl::Now(); };
  // Waits `d`; false if the loop must stop instead (it then gives up).
  std::function<bool(absl::Duration d)> sleep = [](absl::Duration d) {
    absl::SleepFor(d);
    return true;
  };
};

class BytePacer {
 public:
  // bytes_per_sec 0: unthrottled (Account never waits).
  explicit BytePacer(uint64_t bytes_per_sec, PacerClock clock = PacerClock());

  // Counts `bytes` handled; may wait (above). False if clock.sleep said
  // stop.
  bool Account(uint64_t bytes);

  // Bytes gathered before a wait: rate/16 (a wait every ~60 ms at most),
  // at most 64 KiB, at least 1.
  uint64_t chunk() const { return chunk_; }

 private:
  const uint64_t bytes_per_sec_;
  const uint64_t chunk_;
  PacerClock clock_;
  uint64_t pending_ = 0;                     // counted since the last chunk
  absl::Time next_ = absl::InfinitePast();  // when the next chunk may start
};

}  // namespace raftkv::storage

#endif  // RAFTKV_STORAGE_BYTE_PACER_H_
