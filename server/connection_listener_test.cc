#include "server/connection_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/kv.grpc.pb.h"

namespace raftkv::server {
namespace {

// A gRPC server fed by a ConnectionListener. It serves KV with every method
// unimplemented: a call answered UNIMPLEMENTED reached the server.
class Served {
 public:
  explicit Served(ListenerOptions o) {
    o.address = "127.0.0.1:0";
    auto l = ConnectionListener::Bind(o);
    EXPECT_TRUE(l.ok()) << l.status();
    listener_ = std::move(*l);
    grpc::ServerBuilder b;
    auto acceptor = b.experimental().AddExternalConnectionAcceptor(
        grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
        grpc::InsecureServerCredentials());
    b.RegisterService(&service_);
    server_ = b.BuildAndStart();
    listener_->Start(std::move(acceptor));
  }
  ~Served() {
    listener_->Stop();
    server_->Shutdown();
  }
  ConnectionListener& listener() { return *listener_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", listener_->port()); }

 private:
  kvpb::KV::CallbackService service_;
  std::unique_ptr<ConnectionListener> listener_;
  std::unique_ptr<grpc::Server> server_;
};

// A call on a connection of its own: true if the server answered it.
bool Reached(const std::string& address, int i) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("raftkv.test.connection", i);
  auto stub = kvpb::KV::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  kvpb::GetRequest req;
  kvpb::GetResponse resp;
  return stub->Get(&ctx, req, &resp).error_code() == grpc::StatusCode::UNIMPLEMENTED;
}

int Socket() { return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); }

bool Connect(int fd, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
}

enum class Fate { kServed, kRefused, kWaiting };
// What the server did with connection `fd` within `wait`: sent its HTTP/2
// SETTINGS (gRPC took it), closed it, or neither.
Fate FateOf(int fd, absl::Duration wait = absl::Seconds(5)) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, absl::ToInt64Milliseconds(wait)) <= 0) return Fate::kWaiting;
  char buf[64];
  return recv(fd, buf, sizeof(buf), 0) > 0 ? Fate::kServed : Fate::kRefused;
}

// The lowest free descriptor number.
int LowestFree() {
  const int fd = dup(0);
  close(fd);
  return fd;
}

TEST(ConnectionListenerTest, ValidateNamesTheFlag) {
  ListenerOptions o;
  o.address = "127.0.0.1:0";
  EXPECT_TRUE(o.Validate().ok());
  o.max_connections = 1;
  EXPECT_NE(o.Validate().message().find("--max_connections"), std::string::npos);
  o.max_connections = 100;
  o.address = "nowhere";
  EXPECT_FALSE(o.Validate().ok());
}

TEST(ConnectionListenerTest, ABusyAddressIsAnError) {
  ListenerOptions o;
  o.address = "127.0.0.1:0";
  auto first = ConnectionListener::Bind(o);
  ASSERT_TRUE(first.ok()) << first.status();
  o.address = absl::StrCat("127.0.0.1:", (*first)->port());
  auto second = ConnectionListener::Bind(o);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("cannot listen on 127.0.0.1:"), std::string::npos)
      << second.status();
}

TEST(ConnectionListenerTest, ServesUpToMaxConnectionsAndRefusesTheRest) {
  ListenerOptions o;
  o.max_connections = 8;
  Served s(o);
  std::vector<int> held;
  for (int i = 0; i < 8; ++i) {
    const int fd = Socket();
    ASSERT_TRUE(Connect(fd, s.listener().port()));
    EXPECT_EQ(FateOf(fd), Fate::kServed) << i;
    held.push_back(fd);
  }
  const int ninth = Socket();
  ASSERT_TRUE(Connect(ninth, s.listener().port()));
  EXPECT_EQ(FateOf(ninth), Fate::kRefused);
  close(ninth);
  EXPECT_EQ(s.listener().refused(), 1u);
  EXPECT_FALSE(Reached(s.address(), 0));
  // Once a connection ends, gRPC closes its socket and the next one is taken.
  close(held.back());
  held.pop_back();
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  bool reached = false;
  for (int i = 1; !reached && absl::Now() < give_up; ++i) reached = Reached(s.address(), i);
  EXPECT_TRUE(reached) << "a connection after one of 8 closed";
  for (int fd : held) close(fd);
}

TEST(ConnectionListenerTest, ConnectionsNeverTakeTheReservedDescriptors) {
  constexpr int kClients = 40;
  std::vector<int> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(Socket());
  // A first server starts gRPC's threads and their descriptors.
  ListenerOptions o;
  Served warm(o);
  // Connections may take 20 numbers from the lowest free one on (the
  // server's own listener and event descriptors take some of them).
  const int base = LowestFree();
  o.fd_limit = base + 30;
  o.reserved_fds = 10;
  Served limited(o);
  int served = 0, refused = 0;
  for (int fd : clients) {
    ASSERT_TRUE(Connect(fd, limited.listener().port()));
    const Fate f = FateOf(fd);
    ASSERT_NE(f, Fate::kWaiting);
    (f == Fate::kServed ? served : refused)++;
  }
  EXPECT_LE(served, 20);
  EXPECT_GE(served, 10);
  EXPECT_EQ(refused, kClients - served);
  EXPECT_EQ(limited.listener().refused(), static_cast<uint64_t>(refused));
  for (int fd : clients) close(fd);
}

TEST(ConnectionListenerTest, KeepsAcceptingAfterRunningOutOfDescriptors) {
  ListenerOptions o;
  Served s(o);
  rlimit was{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &was), 0);
  const int client = Socket();
  rlimit low = was;
  low.rlim_cur = LowestFree() + 64;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<int> filler;
  while (true) {
    const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;
    filler.push_back(fd);
  }
  ASSERT_TRUE(Connect(client, s.listener().port()));  // queued by the kernel
  EXPECT_EQ(FateOf(client, absl::Milliseconds(300)), Fate::kWaiting);
  for (int fd : filler) close(fd);
  setrlimit(RLIMIT_NOFILE, &was);
  EXPECT_EQ(FateOf(client), Fate::kServed);
  close(client);
  EXPECT_TRUE(Reached(s.address(), 0));
}

}  // namespace
}  // namespace raftkv::server
