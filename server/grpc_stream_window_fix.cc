#include "server/grpc_stream_window_fix.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// grpc_core::chttp2::FlowControlAction, passed and returned by value in
// registers (12 bytes); its first byte is the stream update's urgency.
struct RaftkvFlowControlAction {
  unsigned char bytes[12];
};

// grpc_core::chttp2::StreamFlowControl::UpdateAction(FlowControlAction).
#define RAFTKV_UPDATE_ACTION_SYMBOL \
  "_ZN9grpc_core6chttp217StreamFlowControl12UpdateActionENS0_17FlowControlActionE"

// The interposed definition (at the end): libgrpc's PLT binds its calls here.
extern "C" RaftkvFlowControlAction RaftkvStreamUpdateAction(void* self,
                                                           RaftkvFlowControlAction action)
    __asm__(RAFTKV_UPDATE_ACTION_SYMBOL);

namespace raftkv::server {
namespace {

using Action = RaftkvFlowControlAction;
constexpr unsigned char kUrgencyImmediately = 1;
constexpr unsigned char kUrgencyQueue = 2;
constexpr uint32_t kDefaultWindow = 65535;  // HTTP/2's initial window

using UpdateActionFn = Action (*)(void* self, Action action);
using DesiredAnnounceSizeFn = int64_t (*)(const void* self);

constexpr char kUpdateAction[] = RAFTKV_UPDATE_ACTION_SYMBOL;
constexpr char kDesiredAnnounceSize[] =
    "_ZNK9grpc_core6chttp217StreamFlowControl19DesiredAnnounceSizeEv";

// The two functions' machine code in libgrpc.so.29 of Debian's
// libgrpc29 1.51.1-3+b1 (amd64). UpdateAction reads the stream's
// min_progress_size_ (+0x08) and announced_window_delta_ (+0x18), and its
// transport's initial window target (+0xc8 of the TransportFlowControl the
// stream's first member points to): the offsets read below.
constexpr unsigned char kExpectedUpdateAction[] = {
    0x55, 0x48, 0x89, 0xfd, 0x53, 0x89, 0xf3, 0x48, 0x83, 0xec, 0x38, 0x48, 0x89, 0x74, 0x24,
    0x10, 0x89, 0x54, 0x24, 0x18, 0xe8, 0x67, 0x5d, 0xe7, 0xff, 0x48, 0x85, 0xc0, 0x7e, 0x3e,
    0x48, 0x8b, 0x55, 0x00, 0xb9, 0x00, 0x20, 0x00, 0x00, 0x48, 0x8b, 0xba, 0xc8, 0x00, 0x00,
    0x00, 0x89, 0xfa, 0xd1, 0xea, 0x39, 0xca, 0x48, 0x0f, 0x42, 0xd1, 0x48, 0x39, 0xd0, 0x40,
    0x0f, 0x9e, 0xc6, 0x48, 0x83, 0x7d, 0x08, 0x00, 0x8d, 0x5e, 0x01, 0x7e, 0x13, 0x48, 0x83,
    0x7d, 0x18, 0x00, 0x78, 0x20, 0x75, 0x0a, 0x85, 0xff, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f,
    0x44, 0xd8, 0x88, 0x5c, 0x24, 0x10, 0x8b, 0x54, 0x24, 0x18, 0x48, 0x8b, 0x44, 0x24, 0x10,
    0x48, 0x83, 0xc4, 0x38, 0x5b, 0x5d, 0xc3, 0xbb, 0x01, 0x00, 0x00, 0x00, 0xeb, 0xe5};
constexpr unsigned char kExpectedDesiredAnnounceSize[] = {
    0x48, 0x8b, 0x57, 0x08, 0xb8, 0x00, 0x00, 0x10, 0x00, 0x48, 0x8b, 0x4f, 0x18, 0x48, 0x39,
    0xc2, 0x48, 0x0f, 0x4e, 0xc2, 0x48, 0x85, 0xd2, 0x75, 0x17, 0x80, 0x7f, 0x20, 0x00, 0x48,
    0x89, 0xc8, 0x74, 0x0e, 0x48, 0x8b, 0x47, 0x28, 0x48, 0xf7, 0xd8, 0x48, 0x39, 0xc8, 0x48,
    0x0f, 0x4c, 0xc1, 0x48, 0x29, 0xc8, 0xba, 0xff, 0xff, 0xff, 0x7f, 0x48, 0x39, 0xd0, 0x48,
    0x0f, 0x4f, 0xc2, 0x31, 0xd2, 0x48, 0x85, 0xc0, 0x48, 0x0f, 0x48, 0xc2, 0xc3};

struct Resolved {
  UpdateActionFn original = nullptr;
  DesiredAnnounceSizeFn desired_announce_size = nullptr;
  bool code_matches = false;  // libgrpc is the checked build
  bool interposed = false;    // and its calls reach this file's definition
};

// Set for good once any transport's initial window target is seen below the
// HTTP/2 default (memory pressure with BDP probing): the window the peer was
// last told may then be smaller than the rule below assumes, so this process
// goes back to gRPC's own (eager) rule.
std::atomic<bool> small_window_seen{false};

const Resolved& Resolve() {
  static const Resolved resolved = [] {
    Resolved r;
    // The next definition after this binary's own: libgrpc's.
    r.original = reinterpret_cast<UpdateActionFn>(dlsym(RTLD_NEXT, kUpdateAction));
    r.desired_announce_size =
        reinterpret_cast<DesiredAnnounceSizeFn>(dlsym(RTLD_NEXT, kDesiredAnnounceSize));
    if (r.original == nullptr) {
      // Only reachable if gRPC were linked statically, which would also
      // clash with this definition at link time.
      std::fprintf(stderr, "grpc_stream_window_fix: %s not found in libgrpc\n", kUpdateAction);
      std::abort();
    }
    r.code_matches = r.desired_announce_size != nullptr &&
                     std::memcmp(reinterpret_cast<const void*>(r.original),
                                 kExpectedUpdateAction, sizeof(kExpectedUpdateAction)) == 0 &&
                     std::memcmp(reinterpret_cast<const void*>(r.desired_announce_size),
                                 kExpectedDesiredAnnounceSize,
                                 sizeof(kExpectedDesiredAnnounceSize)) == 0;
    r.interposed = dlsym(RTLD_DEFAULT, kUpdateAction) ==
                   reinterpret_cast<void*>(&RaftkvStreamUpdateAction);
    return r;
  }();
  return resolved;
}

template <typename T>
T Field(const void* base, size_t offset) {
  T v;
  std::memcpy(&v, static_cast<const char*>(base) + offset, sizeof(v));
  return v;
}

// The fixed rule (grpc/grpc#31180), for the checked build only.
Action FixedUpdateAction(const Resolved& r, void* self, Action action) {
  const void* transport = Field<const void*>(self, 0x0);
  // gRPC uses the low 32 bits of the target as the queued initial window.
  const uint32_t init_window = static_cast<uint32_t>(Field<int64_t>(transport, 0xc8));
  if (init_window < kDefaultWindow && !small_window_seen.exchange(true)) {
    std::fprintf(stderr,
                 "grpc_stream_window_fix: an HTTP/2 initial window of %u (< %u): gRPC's own "
                 "window-update rule from now on\n",
                 init_window, kDefaultWindow);
  }
  if (small_window_seen.load(std::memory_order_relaxed)) return r.original(self, action);
  const int64_t desired = r.desired_announce_size(self);
  if (desired <= 0) return action;
  const int64_t min_progress = Field<int64_t>(self, 0x08);
  const int64_t announced_delta = Field<int64_t>(self, 0x18);
  // A large update goes out at once, as before.
  const int64_t hurry_up = std::max<int64_t>(init_window / 2, 8192);
  unsigned char urgency = desired > hurry_up ? kUrgencyImmediately : kUrgencyQueue;
  // A waiting reader hurries it once half the window is used, so the sender
  // never runs dry. The window the peer was last told is at least the HTTP/2
  // default (targets below it switch this off, above), but may still be that
  // default while a larger target waits to be sent: count the default.
  const int64_t half_window = kDefaultWindow / 2;
  if (min_progress > 0 && announced_delta <= -half_window) urgency = kUrgencyImmediately;
  action.bytes[0] = urgency;
  return action;
}

}  // namespace

bool StreamWindowFixActive() {
  const Resolved& r = Resolve();
  return r.code_matches && r.interposed && !small_window_seen.load();
}

}  // namespace raftkv::server

extern "C" __attribute__((visibility("default"))) RaftkvFlowControlAction RaftkvStreamUpdateAction(
    void* self, RaftkvFlowControlAction action) {
  const raftkv::server::Resolved& r = raftkv::server::Resolve();
  if (!r.code_matches) return r.original(self, action);
  return raftkv::server::FixedUpdateAction(r, self, action);
}
