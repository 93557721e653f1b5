#include "tests/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace raftkv::testing {

struct TcpProxy::Conn {
  int client = -1;
  int backend = -1;
  // Consecutive `fill` bytes seen last toward the backend (spans reads).
  size_t run = 0;
  ~Conn() {
    if (client >= 0) close(client);
    if (backend >= 0) close(backend);
  }
  void ShutdownBoth() {
    shutdown(client, SHUT_RDWR);
    shutdown(backend, SHUT_RDWR);
  }
};

namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

absl::Status TcpProxy::Start() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  if (listen_fd_ < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a = Loopback(listen_port_);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      listen(listen_fd_, 64) != 0) {
    return absl::InternalError(
        absl::StrCat("proxy cannot listen on port ", listen_port_, ": ", strerror(errno)));
  }
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

TcpProxy::~TcpProxy() {
  stop_.store(true);
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  std::vector<std::thread> pumps;
  {
    absl::MutexLock l(&mu_);
    for (auto& c : conns_) c->ShutdownBoth();
    pumps.swap(pumps_);
  }
  for (auto& t : pumps) t.join();
  absl::MutexLock l(&mu_);
  conns_.clear();
}

void TcpProxy::Redirect(int backend_port) {
  backend_port_.store(backend_port);
  absl::MutexLock l(&mu_);
  for (auto& c : conns_) c->ShutdownBoth();
}

void TcpProxy::CorruptOnce(char fill, size_t run) {
  absl::MutexLock l(&mu_);
  armed_ = true;
  fill_ = fill;
  run_ = run;
}

void TcpProxy::AcceptLoop() {
  while (!stop_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    int client = accept(listen_fd_, nullptr, nullptr);
    if (client < 0) continue;
    connections_.fetch_add(1);
    auto conn = std::make_shared<Conn>();
    conn->client = client;
    conn->backend = socket(AF_INET, SOCK_STREAM, 0);
    const int backend_port = backend_port_.load();
    sockaddr_in a = Loopback(backend_port);
    if (conn->backend < 0 ||
        connect(conn->backend, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      continue;  // backend down: the Conn closes the client
    }
    int one = 1;
    setsockopt(conn->client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(conn->backend, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    absl::MutexLock l(&mu_);
    // Redirected meanwhile: Redirect may have missed it.
    if (backend_port_.load() != backend_port) conn->ShutdownBoth();
    conns_.push_back(conn);
    pumps_.emplace_back([this, conn] { Pump(conn, /*to_backend=*/true); });
    pumps_.emplace_back([this, conn] { Pump(conn, /*to_backend=*/false); });
  }
}

void TcpProxy::Pump(std::shared_ptr<Conn> conn, bool to_backend) {
  const int from = to_backend ? conn->client : conn->backend;
  const int to = to_backend ? conn->backend : conn->client;
  std::vector<char> buf(64 << 10);
  while (true) {
    ssize_t n = recv(from, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (to_backend) {
      absl::MutexLock l(&mu_);
      if (armed_) {
        for (ssize_t i = 0; i < n; ++i) {
          if (buf[i] != fill_) {
            conn->run = 0;
            continue;
          }
          if (conn->run >= run_) {
            buf[i] ^= 0x01;
            armed_ = false;
            corruptions_.fetch_add(1);
            break;
          }
          ++conn->run;
        }
      }
    }
    if (!WriteAll(to, buf.data(), static_cast<size_t>(n))) break;
  }
  conn->ShutdownBoth();
}

}  // namespace raftkv::testing
