// PeerIncarnations: which incarnation of each peer this node has heard from.
//
// A node's incarnation is a random number chosen when its data dir is
// created (storagepb::NodeIdentity). A member that comes back with an empty
// data dir has a new one. The first incarnation heard from a peer is
// recorded durably (LogStore::RecordPeerIncarnation) before any of its
// messages is delivered; after that, streams from any other incarnation of
// that node id are refused: its votes and acknowledgements never count,
// here, whichever node leads. A removed member is forgotten, so the id can
// be added again as a fresh node.
//
// The leader also records each member's incarnation in the replicated
// state (server/incarnation_recorder.h), so members that never heard from
// a node directly (followers hear only from leaders and candidates) know it
// too once they applied the record; that record, where there is one,
// decides. The explicit bootstrap (server --initial_cluster_state) is the
// first line; this is the second. docs/DURABILITY.md lists what is left.
//
// Thread safety: every method may be called from any thread.
#ifndef RAFTKV_SERVER_PEER_INCARNATIONS_H_
#define RAFTKV_SERVER_PEER_INCARNATIONS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/log_store.h"

namespace raftkv::server {

class PeerIncarnations {
 public:
  // What the replicated state says (called per stream admission); either
  // may be empty: no replicated records / every node counts as a member.
  struct ClusterView {
    std::function<std::map<uint64_t, uint64_t>()> records;
    std::function<bool(uint64_t)> is_member;
  };

  // Loads the local records from `store` (not owned; must outlive this).
  explicit PeerIncarnations(storage::LogStore* store, ClusterView view = {});

  // OK if `incarnation` is the one recorded for `peer` (the replicated
  // record first, else the local one); with neither, OK and recorded
  // locally if `peer` is a member (a non-member's messages count for
  // nothing, and recording one would outlive its removal).
  // FailedPrecondition, with a message for the sender's operator, if another
  // one is recorded; InvalidArgument for incarnation 0; a storage error if
  // the record could not be written (fatal).
  absl::Status Admit(uint64_t peer, uint64_t incarnation);

  // Forgets the local records of nodes that are not members (after a
  // membership change or a snapshot install, and at start).
  absl::Status Reconcile();

  // Records heard directly (local).
  std::map<uint64_t, uint64_t> Local() const;
  // Local and replicated records; replicated ones win.
  std::map<uint64_t, uint64_t> Known() const;
  // Streams refused so far.
  uint64_t refused() const { return refused_.load(); }
  // Bumped when the local records change.
  uint64_t version() const { return version_.load(); }

 private:
  absl::Status Refuse(uint64_t peer, uint64_t incarnation, uint64_t known)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  storage::LogStore* const store_;
  const ClusterView view_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, uint64_t> known_ ABSL_GUARDED_BY(mu_);
  absl::Time last_warning_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> version_{0};
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_PEER_INCARNATIONS_H_
