#include "server/connection_listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace raftkv::server {
namespace {

constexpr absl::Duration kSweepEvery = absl::Milliseconds(50);
constexpr absl::Duration kLogEvery = absl::Seconds(10);
constexpr absl::Duration kAcceptRetry = absl::Milliseconds(100);

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", strerror(errno)));
}

// "host" and "port" of HOST:PORT or [HOST]:PORT.
absl::Status SplitAddress(const std::string& address, std::string* host, std::string* port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("\"", address, "\" is not HOST:PORT"));
  }
  *host = address.substr(0, colon);
  *port = address.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  int p = 0;
  if (!absl::SimpleAtoi(*port, &p) || p < 0 || p > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("\"", address, "\": bad port"));
  }
  return absl::OkStatus();
}

std::string PeerOf(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (a.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(a).sin_addr, buf, sizeof(buf));
  } else if (a.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(a).sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

void SetPort(sockaddr* a, int port) {
  if (a->sa_family == AF_INET) reinterpret_cast<sockaddr_in*>(a)->sin_port = htons(port);
  if (a->sa_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(a)->sin6_port = htons(port);
}

// A listening socket on `a`; -1 and `error` set if it fails.
int Listen(const sockaddr* a, socklen_t len, bool dual_stack, absl::Status* error) {
  const int fd = socket(a->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = Errno("socket");
    return -1;
  }
  const int one = 1;
  const int v6only = dual_stack ? 0 : 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (a->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
  if (bind(fd, a, len) != 0 || listen(fd, SOMAXCONN) != 0) {
    *error = Errno("bind");
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

absl::Status ListenerOptions::Validate() const {
  std::string host, port;
  if (absl::Status s = SplitAddress(address, &host, &port); !s.ok()) return s;
  if (max_connections < 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_connections=", max_connections, " is below the minimum of 8"));
  }
  if (reserved_fds < 0) return absl::InvalidArgumentError("reserved_fds < 0");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ConnectionListener>> ConnectionListener::Bind(
    ListenerOptions options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  if (options.fd_limit == 0) {
    rlimit r{};
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) return Errno("getrlimit(RLIMIT_NOFILE)");
    options.fd_limit = r.rlim_cur;
  }
  std::string host, port_text;
  (void)SplitAddress(options.address, &host, &port_text);
  const bool wildcard = host.empty() || host == "0.0.0.0" || host == "::";
  std::vector<std::pair<sockaddr_storage, socklen_t>> addrs;
  if (wildcard) {
    // As gRPC: one dual-stack socket on [::], else IPv4 only.
    sockaddr_in6 v6{};
    v6.sin6_family = AF_INET6;
    v6.sin6_addr = in6addr_any;
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    v4.sin_addr.s_addr = htonl(INADDR_ANY);
    sockaddr_storage s6{}, s4{};
    memcpy(&s6, &v6, sizeof(v6));
    memcpy(&s4, &v4, sizeof(v4));
    addrs.push_back({s6, sizeof(v6)});
    addrs.push_back({s4, sizeof(v4)});
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(host.c_str(), "0", &hints, &res); rc != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(options.address, ": cannot resolve ", host, ": ", gai_strerror(rc)));
    }
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      sockaddr_storage s{};
      memcpy(&s, ai->ai_addr, ai->ai_addrlen);
      addrs.push_back({s, ai->ai_addrlen});
    }
    freeaddrinfo(res);
  }
  int port = 0;
  (void)absl::SimpleAtoi(port_text, &port);
  std::vector<int> fds;
  absl::Status last = absl::UnavailableError("no address");
  for (auto& [a, len] : addrs) {
    // A wildcard's IPv4 socket only if the dual-stack one failed.
    if (wildcard && !fds.empty()) break;
    SetPort(reinterpret_cast<sockaddr*>(&a), port);
    const int fd = Listen(reinterpret_cast<sockaddr*>(&a), len, wildcard, &last);
    if (fd < 0) continue;
    if (port == 0) {  // every address gets the port the first one got
      sockaddr_storage bound{};
      socklen_t blen = sizeof(bound);
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
      port = ntohs(bound.ss_family == AF_INET
                       ? reinterpret_cast<sockaddr_in&>(bound).sin_port
                       : reinterpret_cast<sockaddr_in6&>(bound).sin6_port);
    }
    fds.push_back(fd);
  }
  if (fds.empty()) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.address, ": ",
                                               last.message()));
  }
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    absl::Status s = Errno("eventfd");
    for (int fd : fds) close(fd);
    return s;
  }
  return std::unique_ptr<ConnectionListener>(
      new ConnectionListener(std::move(options), std::move(fds), port, wake));
}

ConnectionListener::ConnectionListener(ListenerOptions options, std::vector<int> fds, int port,
                                       int wake_fd)
    : options_(std::move(options)), fds_(std::move(fds)), port_(port), wake_fd_(wake_fd) {}

ConnectionListener::~ConnectionListener() {
  Stop();
  close(wake_fd_);
}

void ConnectionListener::Start(
    std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor) {
  acceptor_ = std::move(acceptor);
  thread_ = std::thread([this] { Run(); });
}

void ConnectionListener::Stop() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  // Connections still queued are refused by the close.
  for (int& fd : fds_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
}

void ConnectionListener::Run() {
  std::vector<pollfd> polled;
  for (int fd : fds_) polled.push_back({fd, POLLIN, 0});
  polled.push_back({wake_fd_, POLLIN, 0});
  auto stopped = [this] {
    pollfd p{wake_fd_, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
  };
  while (true) {
    if (poll(polled.data(), polled.size(), -1) < 0 && errno != EINTR) {
      PLOG(ERROR) << "listener poll";
      absl::SleepFor(kAcceptRetry);
    }
    if (polled.back().revents != 0) return;
    for (size_t i = 0; i + 1 < polled.size(); ++i) {
      if (polled[i].revents == 0) continue;
      // Everything queued now, then poll again.
      while (true) {
        sockaddr_storage peer{};
        socklen_t len = sizeof(peer);
        const int fd = accept4(polled[i].fd, reinterpret_cast<sockaddr*>(&peer), &len,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
          if (Admit(fd, PeerOf(peer))) {
            grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters p;
            p.listener_fd = polled[i].fd;
            p.fd = fd;
            acceptor_->HandleNewConnection(&p);
          }
          continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
        // EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays queued in the
        // kernel; try again shortly (gRPC's listener gave up for good here).
        const absl::Time now = absl::Now();
        if (now - last_accept_error_log_ >= kLogEvery) {
          last_accept_error_log_ = now;
          LOG(WARNING) << "accepting connections on " << options_.address << ": "
                       << strerror(errno) << "; retrying every "
                       << absl::FormatDuration(kAcceptRetry);
        }
        pollfd p{wake_fd_, POLLIN, 0};
        if (poll(&p, 1, absl::ToInt64Milliseconds(kAcceptRetry)) > 0) return;
        break;
      }
      if (stopped()) return;
    }
  }
}

bool ConnectionListener::Admit(int fd, const std::string& peer) {
  if (static_cast<uint64_t>(fd) + options_.reserved_fds >= options_.fd_limit) {
    Refuse(fd, peer,
           absl::StrCat("it would take one of the last ", options_.reserved_fds,
                        " file descriptors (limit ", options_.fd_limit,
                        "), which are kept for the store"));
    return false;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    close(fd);
    return false;
  }
  const std::pair<uint64_t, uint64_t> id(st.st_dev, st.st_ino);
  // The number was free, so a socket remembered under it was closed.
  open_.erase(fd);
  if (static_cast<int>(open_.size()) >= options_.max_connections) {
    const absl::Time now = absl::Now();
    if (now - last_sweep_ >= kSweepEvery) {
      last_sweep_ = now;
      Sweep();
    }
  }
  if (static_cast<int>(open_.size()) >= options_.max_connections) {
    Refuse(fd, peer,
           absl::StrCat(open_.size(), " connections are open (--max_connections=",
                        options_.max_connections, ")"));
    return false;
  }
  open_[fd] = id;
  // Accepted sockets inherit TCP_NODELAY on Linux; set it anyway.
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  admitted_.fetch_add(1);
  return true;
}

void ConnectionListener::Sweep() {
  for (auto it = open_.begin(); it != open_.end();) {
    struct stat st {};
    const bool same = fstat(it->first, &st) == 0 &&
                      std::pair<uint64_t, uint64_t>(st.st_dev, st.st_ino) == it->second;
    if (same) {
      ++it;
    } else {
      open_.erase(it++);
    }
  }
}

void ConnectionListener::Refuse(int fd, const std::string& peer, const std::string& why) {
  // A reset, not a FIN: no TIME_WAIT left on the node for it.
  refused_.fetch_add(1);
  const linger reset{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  close(fd);
  ++refused_unlogged_;
  const absl::Time now = absl::Now();
  if (now - last_refusal_log_ >= kLogEvery) {
    LOG(WARNING) << "refused " << refused_unlogged_ << " connection(s) on " << options_.address
                 << (last_refusal_log_ == absl::InfinitePast() ? "" : " since the last such line")
                 << ", the latest from " << peer << ": " << why;
    last_refusal_log_ = now;
    refused_unlogged_ = 0;
  }
}

}  // namespace raftkv::server
