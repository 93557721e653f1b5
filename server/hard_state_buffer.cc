#include "server/hard_state_buffer.h"

namespace raftkv::server {

std::optional<raftpb::HardState> HardStateBuffer::ToWrite(
    const std::optional<raftpb::HardState>& hs, bool must_write) {
  if (hs && !must_write && hs->term() == written_.term() && hs->vote() == written_.vote()) {
    held_ = hs;  // only the commit index moved
    return std::nullopt;
  }
  std::optional<raftpb::HardState> out = hs ? hs : (must_write ? held_ : std::nullopt);
  if (out) {
    written_ = *out;
    held_.reset();
  }
  return out;
}

}  // namespace raftkv::server
