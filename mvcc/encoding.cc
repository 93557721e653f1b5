#include "mvcc/encoding.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace raftkv::mvcc::encoding {
namespace {

void PutBigEndian(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetBigEndian(absl::string_view in, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(absl::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    const uint8_t b = static_cast<uint8_t>((*in)[0]);
    in->remove_prefix(1);
    result |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

constexpr size_t kRevisionBytes = 8;

}  // namespace

std::string Escaped(absl::string_view key) {
  std::string out;
  out.reserve(key.size() + 2);
  for (char c : key) {
    out.push_back(c);
    if (c == '\0') out.push_back('\xff');
  }
  out.push_back('\0');
  out.push_back('\x01');
  return out;
}

std::string HistoryPrefix(absl::string_view key) {
  std::string out(1, kHistory);
  out += Escaped(key);
  return out;
}

std::string PastKey(absl::string_view history_prefix) {
  // The prefix ends 0x00 0x01; 0x00 0x02 sorts after every revision suffix
  // of this key and before any longer key (whose next escaped byte is 0x00
  // 0xFF or a non-zero byte that already compares higher).
  std::string out(history_prefix);
  out.back() = '\x02';
  return out;
}

std::string HistoryKey(absl::string_view key, int64_t revision) {
  std::string out = HistoryPrefix(key);
  PutBigEndian(&out, ~static_cast<uint64_t>(revision), kRevisionBytes);
  return out;
}

bool ParseHistoryKey(absl::string_view k, ParsedHistoryKey* out) {
  if (k.size() < 1 + 2 + kRevisionBytes || k[0] != kHistory) return false;
  absl::string_view prefix = k.substr(0, k.size() - kRevisionBytes);
  if (prefix[prefix.size() - 2] != '\0' || prefix[prefix.size() - 1] != '\x01') return false;
  out->prefix = prefix;
  out->revision = static_cast<int64_t>(~GetBigEndian(k.substr(prefix.size()), kRevisionBytes));
  return true;
}

bool Unescape(absl::string_view prefix, std::string* key) {
  if (prefix.size() < 3 || prefix[0] != kHistory) return false;
  key->clear();
  for (size_t i = 1; i < prefix.size(); ++i) {
    if (prefix[i] != '\0') {
      key->push_back(prefix[i]);
      continue;
    }
    if (i + 1 >= prefix.size()) return false;
    if (prefix[i + 1] == '\xff') {
      key->push_back('\0');
      ++i;
      continue;
    }
    return prefix[i + 1] == '\x01' && i + 2 == prefix.size();
  }
  return false;
}

std::string RevisionIndexKey(int64_t revision, uint32_t sub) {
  std::string out(1, kRevisionIndex);
  PutBigEndian(&out, static_cast<uint64_t>(revision), kRevisionBytes);
  PutBigEndian(&out, sub, 4);
  return out;
}

bool ParseRevisionIndexKey(absl::string_view k, int64_t* revision, uint32_t* sub) {
  if (k.size() != 1 + kRevisionBytes + 4 || k[0] != kRevisionIndex) return false;
  *revision = static_cast<int64_t>(GetBigEndian(k.substr(1), kRevisionBytes));
  *sub = static_cast<uint32_t>(GetBigEndian(k.substr(1 + kRevisionBytes), 4));
  return true;
}

std::string FixedRevision(int64_t revision) {
  std::string out;
  PutBigEndian(&out, static_cast<uint64_t>(revision), kRevisionBytes);
  return out;
}

bool ParseFixedRevision(absl::string_view bytes, int64_t* revision) {
  if (bytes.size() != kRevisionBytes) return false;
  *revision = static_cast<int64_t>(GetBigEndian(bytes, kRevisionBytes));
  return *revision >= 0;
}

// Layout: flags byte (bit 0: tombstone), then varints create_revision,
// version, lease, index, then the value's bytes to the end.
std::string EncodeRecord(const Record& r) {
  std::string out;
  out.reserve(1 + 4 * 10 + r.value.size());
  out.push_back(r.tombstone ? 1 : 0);
  PutVarint(&out, static_cast<uint64_t>(r.create_revision));
  PutVarint(&out, static_cast<uint64_t>(r.version));
  PutVarint(&out, static_cast<uint64_t>(r.lease));
  PutVarint(&out, r.index);
  out += r.value;
  return out;
}

absl::StatusOr<Record> DecodeRecord(absl::string_view in) {
  Record r;
  if (in.empty() || static_cast<uint8_t>(in[0]) > 1) {
    return absl::DataLossError("mvcc record: bad flags");
  }
  r.tombstone = in[0] == 1;
  in.remove_prefix(1);
  uint64_t create = 0, version = 0, lease = 0;
  if (!GetVarint(&in, &create) || !GetVarint(&in, &version) || !GetVarint(&in, &lease) ||
      !GetVarint(&in, &r.index)) {
    return absl::DataLossError("mvcc record: truncated");
  }
  r.create_revision = static_cast<int64_t>(create);
  r.version = static_cast<int64_t>(version);
  r.lease = static_cast<int64_t>(lease);
  if (r.create_revision < 0 || r.version < 0 || r.lease < 0 ||
      (r.tombstone && (!in.empty() || r.version != 0))) {
    return absl::DataLossError("mvcc record: inconsistent fields");
  }
  r.value = std::string(in);
  return r;
}

}  // namespace raftkv::mvcc::encoding
