// FuzzInput: a fuzzer's bytes read as a stream of small values, so that any
// input decodes to some sequence of operations (no input is "invalid").
// Past the end every read returns zero or empty; exhausted() says so.
// Integers are little-endian. Header-only: fuzz targets build with g++ for
// the replay tests, where libFuzzer's FuzzedDataProvider.h is not around.
//
// Thread-compatible; does not own the bytes (they must outlive it).
#ifndef RAFTKV_FUZZ_FUZZ_INPUT_H_
#define RAFTKV_FUZZ_FUZZ_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace raftkv::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool exhausted() const { return pos_ >= size_; }
  size_t remaining() const { return exhausted() ? 0 : size_ - pos_; }

  uint8_t U8() { return exhausted() ? 0 : data_[pos_++]; }
  bool Bool() { return (U8() & 1) != 0; }
  uint16_t U16() { return static_cast<uint16_t>(Int(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Int(4)); }
  uint64_t U64() { return Int(8); }

  // A value in [lo, hi], from as few bytes as the range needs.
  // REQUIRES: lo <= hi.
  uint64_t Range(uint64_t lo, uint64_t hi) {
    const uint64_t span = hi - lo;
    if (span == UINT64_MAX) return U64();
    int bytes = 1;
    while (bytes < 8 && (span >> (8 * bytes)) != 0) ++bytes;
    return lo + Int(bytes) % (span + 1);
  }

  // Up to `max` bytes, length first (one byte, or two if max > 255).
  std::string Bytes(size_t max) {
    size_t n = max > 255 ? U16() : U8();
    if (n > max) n = n % (max + 1);
    return Take(n);
  }
  // The next n bytes (fewer at the end).
  std::string Take(size_t n) {
    if (n > remaining()) n = remaining();
    std::string out(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return out;
  }
  std::string Rest() { return Take(remaining()); }

 private:
  uint64_t Int(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(U8()) << (8 * i);
    return v;
  }

  const uint8_t* const data_;
  const size_t size_;
  size_t pos_ = 0;
};

// The inverse, for seed generators: writes what FuzzInput reads back.
class FuzzOutput {
 public:
  FuzzOutput& U8(uint8_t v) {
    out_.push_back(static_cast<char>(v));
    return *this;
  }
  FuzzOutput& U16(uint16_t v) { return Int(v, 2); }
  FuzzOutput& U32(uint32_t v) { return Int(v, 4); }
  FuzzOutput& U64(uint64_t v) { return Int(v, 8); }
  // As FuzzInput::Range(lo, hi) reads v. REQUIRES: lo <= v <= hi.
  FuzzOutput& Range(uint64_t lo, uint64_t hi, uint64_t v) {
    const uint64_t span = hi - lo;
    if (span == UINT64_MAX) return U64(v);
    int bytes = 1;
    while (bytes < 8 && (span >> (8 * bytes)) != 0) ++bytes;
    return Int(v - lo, bytes);
  }
  // As FuzzInput::Bytes(max) reads s. REQUIRES: s.size() <= max.
  FuzzOutput& Bytes(const std::string& s, size_t max) {
    if (max > 255) {
      U16(static_cast<uint16_t>(s.size()));
    } else {
      U8(static_cast<uint8_t>(s.size()));
    }
    out_ += s;
    return *this;
  }
  FuzzOutput& Raw(const std::string& s) {
    out_ += s;
    return *this;
  }
  const std::string& str() const { return out_; }

 private:
  FuzzOutput& Int(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) U8(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }

  std::string out_;
};

}  // namespace raftkv::fuzz

#endif  // RAFTKV_FUZZ_FUZZ_INPUT_H_
