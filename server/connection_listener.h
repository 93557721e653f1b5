// ConnectionListener: the node's listening socket, accepted on a thread of
// its own and each admitted connection handed to gRPC through
// grpc::experimental::ExternalConnectionAcceptor, so that the node, not
// gRPC, decides which connections it takes. gRPC 1.51 has no connection
// limit, and its own listener stops accepting for good after one accept()
// fails with EMFILE ("Failed accept4: Too many open files"): a client that
// held enough connections cut a node off from new clients and from peers
// that reconnect, and made the store's next file creation fail (the node
// stops then, server/storage_failure.h).
//
// A connection is closed at once (RST) when
//   - its descriptor number is at or above fd_limit - reserved_fds: the
//     kernel hands out the lowest free number, so connections never hold
//     one of the last reserved_fds descriptors, which stay for the store
//     (server/fd_limit.h); or
//   - max_connections connections are open already (each admitted
//     connection's socket is remembered by descriptor and inode, and the
//     ones gRPC has closed since are swept out when the count reaches the
//     cap, at most every 50 ms).
// Refusals are logged at most once per 10 s with their count. An accept()
// that fails for lack of descriptors or memory is retried after 100 ms;
// the connections wait in the kernel's queue meanwhile.
//
// Thread safety: Start and Stop from one thread; counters from any.
#ifndef RAFTKV_SERVER_CONNECTION_LISTENER_H_
#define RAFTKV_SERVER_CONNECTION_LISTENER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server_builder.h"

namespace raftkv::server {

struct ListenerOptions {
  // HOST:PORT or [V6HOST]:PORT; port 0 picks one (see port()). A wildcard
  // host (0.0.0.0, ::) takes IPv4 and IPv6, as gRPC's own listener does.
  std::string address;
  // Connections (clients' and peers') open at once. Each holds a descriptor
  // and ~20 KB of gRPC's memory (~70 KB during a TLS handshake).
  int max_connections = 10000;
  // Descriptor numbers at or above fd_limit - reserved_fds are never given
  // to a connection. fd_limit 0: the soft RLIMIT_NOFILE at Bind.
  uint64_t fd_limit = 0;
  int reserved_fds = 0;

  absl::Status Validate() const;
};

class ConnectionListener {
 public:
  // Binds and listens on every address options.address resolves to;
  // accepts nothing until Start. REQUIRES: options.Validate().ok().
  static absl::StatusOr<std::unique_ptr<ConnectionListener>> Bind(ListenerOptions options);
  ~ConnectionListener();  // Stop()
  ConnectionListener(const ConnectionListener&) = delete;
  ConnectionListener& operator=(const ConnectionListener&) = delete;

  int port() const { return port_; }

  // Accepts on a thread, handing admitted connections to `acceptor` (from
  // ServerBuilder::experimental().AddExternalConnectionAcceptor; its server
  // must be started). Call once.
  void Start(std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor);
  // Stops accepting and closes the listening sockets; connections handed to
  // gRPC stay gRPC's. Call before the server shuts down (gRPC would leak a
  // connection handed to it after that).
  void Stop();

  uint64_t admitted() const { return admitted_.load(); }
  uint64_t refused() const { return refused_.load(); }

 private:
  ConnectionListener(ListenerOptions options, std::vector<int> fds, int port, int wake_fd);
  void Run();
  // Takes `fd` (just accepted) or closes it; true if taken.
  bool Admit(int fd, const std::string& peer);
  // Forgets remembered connections whose socket gRPC has closed.
  void Sweep();
  void Refuse(int fd, const std::string& peer, const std::string& why);

  const ListenerOptions options_;
  std::vector<int> fds_;  // listening sockets; -1 once closed
  const int port_;
  const int wake_fd_;  // eventfd: Stop wakes the thread
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  std::thread thread_;
  std::atomic<uint64_t> admitted_{0};
  std::atomic<uint64_t> refused_{0};

  // Owned by the accepting thread: admitted sockets by descriptor, as
  // (device, inode), to tell a socket still open from a reused number.
  absl::flat_hash_map<int, std::pair<uint64_t, uint64_t>> open_;
  absl::Time last_sweep_ = absl::InfinitePast();
  uint64_t refused_unlogged_ = 0;
  absl::Time last_refusal_log_ = absl::InfinitePast();
  absl::Time last_accept_error_log_ = absl::InfinitePast();
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_CONNECTION_LISTENER_H_
