// A small JSON reader for tests that check other programs' JSON output
// (etcdctl -w json, the clientv3 check's summary). Numbers keep their text,
// so 64-bit ids (etcd's member and cluster ids) are read exactly.
//
// Not for untrusted or huge input: recursive, everything in memory.
// Thread safety: a parsed Json is immutable; share it freely.
#ifndef RAFTKV_TESTS_JSON_LITE_H_
#define RAFTKV_TESTS_JSON_LITE_H_

#include <cstdint>
#include <map>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"

namespace raftkv::testing {

class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  // One JSON value, surrounded by whitespace only.
  static absl::StatusOr<Json> Parse(absl::string_view text);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }

  // Object member `key`; a null value when absent or not an object (so
  // lookups chain: j["a"]["b"]).
  const Json& operator[](absl::string_view key) const;
  // Array element `i`; a null value when out of range or not an array.
  const Json& operator[](size_t i) const;
  bool has(absl::string_view key) const;
  // Elements of an array, members of an object; 0 otherwise.
  size_t size() const;
  const std::vector<Json>& items() const { return items_; }
  const std::map<std::string, Json, std::less<>>& members() const { return members_; }

  // A string's value or a number's text ("" for other types).
  const std::string& text() const { return text_; }
  // A number (or a string holding one, as etcd's JSON writes some ids) as an
  // integer; `fallback` when absent or not an integer.
  uint64_t u64(uint64_t fallback = 0) const;
  int64_t i64(int64_t fallback = 0) const;
  bool boolean(bool fallback = false) const { return type_ == Type::kBool ? bool_ : fallback; }
  // A string holding base64 (etcdctl's keys and values), decoded; "" if
  // absent or not base64.
  std::string base64() const;

  // Compact JSON text (for failure messages).
  std::string Dump() const;

 private:
  friend class JsonParser;
  Type type_ = Type::kNull;
  bool bool_ = false;
  std::string text_;
  std::vector<Json> items_;
  std::map<std::string, Json, std::less<>> members_;
};

}  // namespace raftkv::testing

#endif  // RAFTKV_TESTS_JSON_LITE_H_
