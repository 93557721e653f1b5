// Small private filesystems for the fill-disk nemesis (nemesis.h): each
// node's data dir on a tmpfs of its own, so that filling one node's disk
// touches nothing else on the machine.
//
// The test process first moves into a private mount namespace
// (EnterPrivateMountNamespace, root): mounts made there never reach the
// host, and the servers it starts inherit them. A NodeDisk is a tmpfs of a
// given size mounted beside the cluster's directories, whose "data"
// directory is bind-mounted on the node's data dir; a ballast file on the
// same tmpfs, outside the data dir, takes its space away and gives it back.
//
// Thread safety: none; one thread drives a NodeDisk.
#ifndef RAFTKV_TESTS_JEPSEN_DISKS_H_
#define RAFTKV_TESTS_JEPSEN_DISKS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace raftkv::jepsen {

// Moves this process into a private mount namespace (/ made private, so
// nothing propagates back). Call it first thing in main(), before any
// thread exists: unshare() moves only the calling thread. FAILED_PRECONDITION
// (with the reason) where that cannot work: not root, or namespaces not
// permitted.
absl::Status EnterPrivateMountNamespace();

// OK once EnterPrivateMountNamespace() succeeded; else why fill-disk runs
// cannot go on.
absl::Status MountNamespaceReady();

class NodeDisk {
 public:
  // A tmpfs of `bytes` at `mount_dir` (created), bind-mounted on
  // `data_dir` (created; it must be empty). REQUIRES: MountNamespaceReady().
  static absl::StatusOr<std::unique_ptr<NodeDisk>> Mount(const std::string& mount_dir,
                                                         const std::string& data_dir,
                                                         uint64_t bytes);
  // Unmounts both (lazily): stop the node first.
  ~NodeDisk();
  NodeDisk(const NodeDisk&) = delete;
  NodeDisk& operator=(const NodeDisk&) = delete;

  // Bytes free on the tmpfs (statvfs, as the server reads it).
  uint64_t Free() const;
  // Grows the ballast until about `leave` bytes stay free (fallocate).
  absl::Status FillLeaving(uint64_t leave);
  // Removes the ballast.
  void Empty();
  bool filled() const { return filled_; }

 private:
  NodeDisk(std::string mount_dir, std::string data_dir)
      : mount_dir_(std::move(mount_dir)), data_dir_(std::move(data_dir)) {}
  std::string ballast() const { return mount_dir_ + "/ballast"; }

  const std::string mount_dir_;
  const std::string data_dir_;
  bool filled_ = false;
};

}  // namespace raftkv::jepsen

#endif  // RAFTKV_TESTS_JEPSEN_DISKS_H_
