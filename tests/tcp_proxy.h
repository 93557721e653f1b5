// A TCP proxy for cluster tests: listens on 127.0.0.1:listen_port and
// forwards each connection to 127.0.0.1:backend_port, byte for byte, in
// both directions. It can corrupt one byte going to the backend, once: the
// first byte that continues a run of at least `run` copies of `fill` is
// flipped. With values made of long runs of one character, that byte is
// inside a value in a gRPC DATA frame (never a frame header, too short to
// hold such a run), so the stream stays well-formed HTTP/2 and protobuf and
// only a checksum above gRPC can notice.
//
// When the backend is down a connection is accepted and closed at once
// (clients see it as unavailable). A backend that dies closes its proxied
// connections too. Redirect points the proxy at another backend (a wrong
// address in a cluster's configuration, made mid-run).
//
// Thread safety: all methods may be called from any thread.
#ifndef RAFTKV_TESTS_TCP_PROXY_H_
#define RAFTKV_TESTS_TCP_PROXY_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace raftkv::testing {

class TcpProxy {
 public:
  TcpProxy(int listen_port, int backend_port)
      : listen_port_(listen_port), backend_port_(backend_port) {}
  ~TcpProxy();  // closes every connection and joins the threads
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  absl::Status Start();

  // New connections go to 127.0.0.1:backend_port; the open ones are closed
  // (their clients reconnect, to the new backend).
  void Redirect(int backend_port);
  // Arms the one-shot corruption (see above).
  void CorruptOnce(char fill, size_t run);
  // Bytes corrupted so far (0 or 1 per CorruptOnce).
  int corruptions() const { return corruptions_.load(); }
  // Connections accepted so far.
  int connections() const { return connections_.load(); }

 private:
  struct Conn;
  void AcceptLoop();
  void Pump(std::shared_ptr<Conn> conn, bool to_backend);

  const int listen_port_;
  std::atomic<int> backend_port_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> corruptions_{0};
  std::atomic<int> connections_{0};
  std::thread acceptor_;

  absl::Mutex mu_;
  bool armed_ ABSL_GUARDED_BY(mu_) = false;
  char fill_ ABSL_GUARDED_BY(mu_) = 0;
  size_t run_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::shared_ptr<Conn>> conns_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> pumps_ ABSL_GUARDED_BY(mu_);
};

}  // namespace raftkv::testing

#endif  // RAFTKV_TESTS_TCP_PROXY_H_
