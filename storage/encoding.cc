#include "storage/encoding.h"

namespace raftkv::storage {

void EncodeFixed64BE(uint64_t v, char* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

std::string EncodeFixed64BE(uint64_t v) {
  std::string s(kIndexKeySize, '\0');
  EncodeFixed64BE(v, s.data());
  return s;
}

std::optional<uint64_t> DecodeFixed64BE(absl::string_view s) {
  if (s.size() != kIndexKeySize) return std::nullopt;
  uint64_t v = 0;
  for (unsigned char c : s) v = (v << 8) | c;
  return v;
}

}  // namespace raftkv::storage
