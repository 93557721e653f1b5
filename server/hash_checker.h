// HashChecker: members compare a hash of their whole state machine at the
// same log index (etcd's corruption check, without stopping the healthy
// majority).
//
// The leader proposes a hash check entry when it takes office (after
// `first_delay`) and every `interval`. Each member, applying it, gets a
// view of its state exactly as of that entry (KvStateMachine's checkpoint
// hook), hashes it on this class's thread, and then asks the other voters
// (Admin.Status state_hashes) for theirs at the same index:
//   * if a majority of the voters agree and this member differs, it raises
//     CORRUPT (server/alarms.h; the node then refuses reads and hands
//     leadership over, server/corruption_guard.h) and logs why;
//   * a member that agrees with the majority names each one that differs;
//   * if every voter answered and no majority agrees, it raises CORRUPT
//     too: nobody can tell which state is right. Every voter then being
//     corrupt, the leader refuses all writes (server/node.h) until an
//     operator acts.
//
// Thread safety: public methods may be called from any thread. Start()
// starts the thread; Stop() (or the destructor) joins it.
#ifndef RAFTKV_SERVER_HASH_CHECKER_H_
#define RAFTKV_SERVER_HASH_CHECKER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/alarms.h"
#include "server/node.h"
#include "storage/log_store.h"

namespace raftkv::server {

struct HashCheckerOptions {
  uint64_t self_id = 0;
  // How often the leader proposes a check; zero: never (members still take
  // part in checks another leader proposes).
  absl::Duration interval = absl::Minutes(10);
  // Delay of the first check after taking office (a restarted member is
  // checked at the next leader change or interval).
  absl::Duration first_delay = absl::Seconds(5);
  // How long a member waits for the others to reach the checked index.
  absl::Duration answer_timeout = absl::Seconds(60);
  // Read rate of the hash's scan of the state (a BytePacer), so a check of
  // a large state does not take the disk from the workload; 0: unthrottled,
  // else at least 64 KiB/s.
  uint64_t bytes_per_sec = 64 << 20;
  // A voter's hash at `index`: nullopt if it has none (yet), an error if
  // it cannot be asked. Required.
  std::function<absl::StatusOr<std::optional<uint64_t>>(uint64_t peer, uint64_t index)> ask;

  absl::Status Validate() const;
};

class HashChecker {
 public:
  // `node` and `alarms` are not owned and must outlive the checker.
  HashChecker(HashCheckerOptions options, Node* node, Alarms* alarms);
  ~HashChecker();
  HashChecker(const HashChecker&) = delete;
  HashChecker& operator=(const HashChecker&) = delete;

  void Start();
  void Stop();

  // The state machine's checkpoint hook: queues the view (only the newest
  // is kept if hashing falls behind). Never blocks.
  void OnCheckpoint(uint64_t index, std::unique_ptr<storage::DataSnapshot> view);

  // This member's hashes, (index, hash), oldest first; the last few only.
  std::vector<std::pair<uint64_t, uint64_t>> Hashes() const;
  // The hash at `index`, if this member computed one.
  std::optional<uint64_t> HashAt(uint64_t index) const;

  // The verdict on the hashes `hash_of` (voter -> hash; may lack some
  // voters) that `voters` have at one index.
  struct Verdict {
    std::optional<uint64_t> majority;  // the hash a majority of voters has
    std::vector<uint64_t> differing;   // voters with another hash
    bool no_majority = false;          // every voter answered; none has one
  };
  static Verdict Decide(const std::vector<uint64_t>& voters,
                        const std::map<uint64_t, uint64_t>& hash_of);

 private:
  // A check this member hashed, waiting for the other voters' answers.
  struct OpenCheck {
    uint64_t index = 0;
    uint64_t mine = 0;
    std::map<uint64_t, uint64_t> hash_of;  // voter -> its hash at index
    absl::Time give_up;
  };

  void Loop();
  void MaybePropose();
  // Asks the voters that have not answered; true once `check` is decided.
  bool Poll(OpenCheck* check);
  void Conclude(const OpenCheck& check, const std::vector<uint64_t>& voters);

  const HashCheckerOptions options_;
  Node* const node_;
  Alarms* const alarms_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> stop_requested_{false};  // also read by a hash in progress
  uint64_t pending_index_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<storage::DataSnapshot> pending_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<uint64_t, uint64_t>> hashes_ ABSL_GUARDED_BY(mu_);

  // The thread's own: open checks, the term it last proposed in, and when
  // next.
  std::deque<OpenCheck> open_;
  uint64_t proposed_term_ = 0;
  absl::Time next_proposal_ = absl::InfiniteFuture();
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_HASH_CHECKER_H_
