// Real network partitions between nodes in separate network namespaces
// (Linux, root, iproute2's `ip`): no fault layer in the servers involved.
//
// The test process first moves into a fresh network namespace of its own
// (EnterPrivateNetns: lo up, a bridge rkvbr0 at 10.213.0.254/24). Each node
// then gets a namespace of its own, attached to that bridge by a veth pair
// and addressed 10.213.0.<id>/24; the Cluster runs node <id> inside it
// (ClusterOptions::network). A cut link between nodes a and b is a
// blackhole /32 route to the other in each of the two node namespaces:
// established TCP connections silently lose every packet until the route
// is gone (new connections fail at once). The test process, on the bridge,
// still reaches every node: clients see what clients of a real split see.
//
// Nothing here touches the host's namespaces or names anything in
// /var/run/netns: the node namespaces are held only by file descriptors of
// this process (and by the servers inside them), the bridge lives in the
// test's private namespace, and all of it disappears with the processes.
//
// Thread safety: one thread drives a NetnsNodes.
#ifndef RAFTKV_TESTS_JEPSEN_NETNS_H_
#define RAFTKV_TESTS_JEPSEN_NETNS_H_

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/jepsen/nemesis.h"

namespace raftkv::jepsen {

// Moves this process into a fresh network namespace with lo up and the
// bridge. Call it first thing in main(), before any thread exists: unshare()
// moves only the calling thread, and threads created later inherit its
// namespace. FAILED_PRECONDITION (with the reason) where that cannot work:
// not root, no `ip`, or namespaces not permitted.
absl::Status EnterPrivateNetns();

// OK once EnterPrivateNetns() succeeded; else why netns runs cannot go on.
absl::Status NetnsReady();

// Namespaces for nodes 1..count. At most one set exists at a time.
class NetnsNodes : public LinkCutter {
 public:
  static absl::StatusOr<std::unique_ptr<NetnsNodes>> Create(int count);
  ~NetnsNodes() override;
  NetnsNodes(const NetnsNodes&) = delete;
  NetnsNodes& operator=(const NetnsNodes&) = delete;

  // 10.213.0.<id>
  std::string host(int id) const;
  // A file naming node `id`'s namespace, for ClusterOptions::network.
  std::string netns_path(int id) const;

  // Blackhole routes between a and b (both ways); a no-op if already cut.
  absl::Status Cut(int a, int b) override;
  // Removes every route Cut() added.
  absl::Status HealAll() override;
  const char* name() const override { return "netns"; }
  // Cut pairs (a < b).
  const std::set<std::pair<int, int>>& cut() const { return cut_; }

 private:
  NetnsNodes() = default;
  absl::Status Route(const char* verb, int node, int peer);

  int generation_ = 0;
  std::vector<int> fds_;  // fds_[id - 1]: node id's namespace
  std::set<std::pair<int, int>> cut_;
};

}  // namespace raftkv::jepsen

#endif  // RAFTKV_TESTS_JEPSEN_NETNS_H_
