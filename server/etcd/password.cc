#include "server/etcd/password.h"

#include <crypt.h>
#include <sys/random.h>

#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"

namespace raftkv::server::etcd {

absl::StatusOr<std::string> HashPassword(absl::string_view password, int cost) {
  if (password.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("a password must not contain NUL bytes");
  }
  char random[16];
  if (getrandom(random, sizeof(random), 0) != static_cast<ssize_t>(sizeof(random))) {
    return absl::InternalError(absl::StrCat("getrandom: ", std::strerror(errno)));
  }
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$2b$", cost, random, sizeof(random), setting, sizeof(setting)) ==
      nullptr) {
    return absl::InternalError(absl::StrCat("crypt_gensalt_rn: ", std::strerror(errno)));
  }
  auto data = std::make_unique<crypt_data>();  // ~32 KiB: not on the stack
  const std::string pw(password);
  const char* hash = crypt_rn(pw.c_str(), setting, data.get(), sizeof(crypt_data));
  if (hash == nullptr || hash[0] == '*') {
    return absl::InternalError(absl::StrCat("crypt_rn: ", std::strerror(errno)));
  }
  std::string out(hash);
  explicit_bzero(data.get(), sizeof(crypt_data));
  return out;
}

bool PasswordMatches(absl::string_view password, absl::string_view hash) {
  if (password.find('\0') != absl::string_view::npos || hash.empty()) return false;
  auto data = std::make_unique<crypt_data>();
  const std::string pw(password);
  const std::string setting(hash);
  const char* got = crypt_rn(pw.c_str(), setting.c_str(), data.get(), sizeof(crypt_data));
  bool match = false;
  if (got != nullptr && got[0] != '*' && std::strlen(got) == hash.size()) {
    unsigned char diff = 0;
    for (size_t i = 0; i < hash.size(); ++i) diff |= static_cast<unsigned char>(got[i] ^ hash[i]);
    match = diff == 0;
  }
  explicit_bzero(data.get(), sizeof(crypt_data));
  return match;
}

}  // namespace raftkv::server::etcd
