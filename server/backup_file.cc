#include "server/backup_file.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace raftkv::server {
namespace {

constexpr size_t kMagicBytes = 8;
constexpr size_t kShaBytes = 32;
constexpr char kRecordTag = 0x01;
constexpr char kTrailerTag = 0x00;

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t GetLE(absl::string_view b) {
  uint64_t v = 0;
  for (size_t i = b.size(); i > 0; --i) v = (v << 8) | static_cast<unsigned char>(b[i - 1]);
  return v;
}

// SHA-256 through OpenSSL's EVP interface.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(absl::string_view b) { EVP_DigestUpdate(ctx_, b.data(), b.size()); }
  std::string Final() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, md, &n);
    return std::string(reinterpret_cast<char*>(md), n);
  }

 private:
  EVP_MD_CTX* const ctx_;
};

// Reads a file in large blocks, hashing what it hands out (unless told not
// to), and knows how much is left, so no length is believed blindly.
class FileReader {
 public:
  ~FileReader() {
    if (f_ != nullptr) fclose(f_);
  }
  absl::Status Open(const std::string& path) {
    path_ = path;
    f_ = fopen(path.c_str(), "rb");
    if (f_ == nullptr) {
      const int e = errno;
      const std::string msg = absl::StrCat(path, ": cannot open: ", strerror(e));
      if (e == ENOENT) return absl::NotFoundError(msg);
      if (e == EACCES) return absl::PermissionDeniedError(msg);
      return absl::UnavailableError(msg);
    }
    if (fseeko(f_, 0, SEEK_END) != 0 || (size_ = ftello(f_)) < 0 || fseeko(f_, 0, SEEK_SET) != 0) {
      return absl::UnavailableError(absl::StrCat(path, ": cannot seek: ", strerror(errno)));
    }
    setvbuf(f_, nullptr, _IOFBF, 1 << 20);
    return absl::OkStatus();
  }
  uint64_t size() const { return static_cast<uint64_t>(size_); }
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size() - pos_; }
  // Reads exactly n bytes (REQUIRES: n <= left()) into *out.
  absl::Status Read(size_t n, std::string* out, bool hash = true) {
    out->resize(n);
    if (n > 0 && fread(out->data(), 1, n, f_) != n) {
      return absl::DataLossError(absl::StrCat(path_, ": read failed at byte ", pos_, ": ",
                                              ferror(f_) ? strerror(errno) : "early end of file"));
    }
    pos_ += n;
    if (hash) sha_.Update(*out);
    return absl::OkStatus();
  }
  std::string Digest() { return sha_.Final(); }

 private:
  std::string path_;
  FILE* f_ = nullptr;
  off_t size_ = 0;
  uint64_t pos_ = 0;
  Sha256 sha_;
};

using RecordFn = std::function<absl::Status(absl::string_view, absl::string_view)>;

// One pass over the file (see VerifyBackup); fn, if set, gets each record.
absl::StatusOr<BackupInfo> Scan(const std::string& path, const RecordFn* fn) {
  FileReader r;
  if (absl::Status s = r.Open(path); !s.ok()) return s;
  auto damaged = [&path](absl::string_view what) {
    return absl::DataLossError(absl::StrCat(path, ": ", what));
  };
  std::string buf;
  if (r.size() == 0) return damaged("truncated: the file is empty");
  if (absl::Status s = r.Read(std::min<uint64_t>(kMagicBytes, r.size()), &buf); !s.ok()) return s;
  if (buf != absl::string_view(kBackupMagic, kMagicBytes)) {
    if (absl::string_view(kBackupMagic, kMagicBytes).substr(0, buf.size()) == buf) {
      return damaged(absl::StrCat("truncated: ", r.size(), " bytes, shorter than the magic"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a raftkv backup (it does not start with ", kBackupMagic, ")"));
  }
  if (r.left() < 8) {
    return damaged(absl::StrCat("truncated: ", r.size(), " bytes, inside the format version"));
  }
  if (absl::Status s = r.Read(4, &buf); !s.ok()) return s;
  const uint64_t version = GetLE(buf);
  if (version != kBackupFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": backup format version ", version,
                                                   "; this build reads version ",
                                                   kBackupFormatVersion));
  }
  if (absl::Status s = r.Read(4, &buf); !s.ok()) return s;
  const uint64_t header_bytes = GetLE(buf);
  if (header_bytes > r.left()) {
    return damaged(absl::StrCat("truncated or corrupt: a header of ", header_bytes,
                                " bytes runs past the end of the file (", r.size(), " bytes)"));
  }
  std::string header;
  if (absl::Status s = r.Read(header_bytes, &header); !s.ok()) return s;
  BackupInfo info;
  info.bytes = r.size();
  std::string key, value;
  while (true) {
    const uint64_t at = r.pos();
    if (r.left() == 0) {
      return damaged(absl::StrCat("truncated: the file ends after ", info.records,
                                  " records (byte ", at, ") without its trailer"));
    }
    if (absl::Status s = r.Read(1, &buf); !s.ok()) return s;
    if (buf[0] == kTrailerTag) break;
    if (buf[0] != kRecordTag) {
      return damaged(absl::StrCat("corrupt: unknown record tag 0x", absl::BytesToHexString(buf),
                                  " at byte ", at, " (after ", info.records, " records)"));
    }
    if (r.left() < 8) {
      return damaged(absl::StrCat("truncated: record ", info.records + 1, " at byte ", at,
                                  " is cut short (the file ends at byte ", r.size(), ")"));
    }
    if (absl::Status s = r.Read(8, &buf); !s.ok()) return s;
    const uint64_t kb = GetLE(absl::string_view(buf).substr(0, 4));
    const uint64_t vb = GetLE(absl::string_view(buf).substr(4, 4));
    if (kb + vb > r.left()) {
      return damaged(absl::StrCat("truncated or corrupt: record ", info.records + 1, " at byte ",
                                  at, " runs past the end of the file (", r.size(), " bytes)"));
    }
    if (absl::Status s = r.Read(kb, &key); !s.ok()) return s;
    if (absl::Status s = r.Read(vb, &value); !s.ok()) return s;
    ++info.records;
    if (fn != nullptr) {
      if (absl::Status s = (*fn)(key, value); !s.ok()) return s;
    }
  }
  const uint64_t trailer_at = r.pos() - 1;
  if (r.left() < 16 + kShaBytes) {
    return damaged(absl::StrCat("truncated: the trailer at byte ", trailer_at, " is cut short (",
                                r.left(), " of ", 16 + kShaBytes, " bytes after its tag)"));
  }
  std::string counts, stored;
  if (absl::Status s = r.Read(16, &counts); !s.ok()) return s;
  if (absl::Status s = r.Read(kShaBytes, &stored, /*hash=*/false); !s.ok()) return s;
  const std::string computed = r.Digest();
  if (r.left() != 0) {
    return damaged(absl::StrCat("corrupt: ", r.left(), " unexpected bytes after the trailer (at byte ",
                                trailer_at, ")"));
  }
  if (computed != stored) {
    return damaged(absl::StrCat("corrupt: checksum mismatch (SHA-256 of the contents is ",
                                absl::BytesToHexString(computed).substr(0, 16), "..., the trailer says ",
                                absl::BytesToHexString(stored).substr(0, 16), "...)"));
  }
  const uint64_t records = GetLE(absl::string_view(counts).substr(0, 8));
  info.keys = GetLE(absl::string_view(counts).substr(8, 8));
  if (records != info.records || info.keys > records) {
    return damaged(absl::StrCat("corrupt: the trailer counts ", records, " records (", info.keys,
                                " keys), the file holds ", info.records));
  }
  if (!info.header.ParseFromString(header)) {
    return damaged("corrupt: the header does not parse");
  }
  info.sha256_hex = absl::BytesToHexString(computed);
  return info;
}

}  // namespace

struct BackupWriter::Hasher {
  Sha256 sha;
};

BackupWriter::BackupWriter(const backuppb::BackupHeader& header, std::string* out)
    : out_(out), hash_(std::make_unique<Hasher>()) {
  std::string head(kBackupMagic, kMagicBytes);
  PutU32(&head, kBackupFormatVersion);
  const std::string h = header.SerializeAsString();
  PutU32(&head, static_cast<uint32_t>(h.size()));
  head += h;
  Emit(head);
}

BackupWriter::~BackupWriter() = default;

void BackupWriter::Emit(absl::string_view bytes) {
  out_->append(bytes.data(), bytes.size());
  hash_->sha.Update(bytes);
  bytes_ += bytes.size();
}

void BackupWriter::Add(absl::string_view key, absl::string_view value) {
  std::string head(1, kRecordTag);
  PutU32(&head, static_cast<uint32_t>(key.size()));
  PutU32(&head, static_cast<uint32_t>(value.size()));
  Emit(head);
  Emit(key);
  Emit(value);
  ++records_;
}

void BackupWriter::Finish(uint64_t keys) {
  std::string tail(1, kTrailerTag);
  PutU64(&tail, records_);
  PutU64(&tail, keys);
  Emit(tail);
  const std::string sha = hash_->sha.Final();
  out_->append(sha);
  bytes_ += sha.size();
}

absl::StatusOr<BackupInfo> VerifyBackup(const std::string& path) { return Scan(path, nullptr); }

absl::StatusOr<BackupInfo> ReadBackup(const std::string& path, const RecordFn& fn) {
  if (auto v = VerifyBackup(path); !v.ok()) return v.status();
  return Scan(path, &fn);
}

}  // namespace raftkv::server
