#include "server/etcd/auth_tokens.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace raftkv::server::etcd {

absl::Status AuthTokenOptions::Validate() const {
  if (ttl <= absl::ZeroDuration()) return absl::InvalidArgumentError("--auth_token_ttl must be positive");
  if (max_tokens == 0) return absl::InvalidArgumentError("max_tokens must be positive");
  if (!now) return absl::InvalidArgumentError("now is required");
  return absl::OkStatus();
}

AuthTokens::AuthTokens(AuthTokenOptions options) : options_(std::move(options)) {
  const absl::Status valid = options_.Validate();
  CHECK(valid.ok()) << valid;
}

absl::StatusOr<std::string> AuthTokens::New() {
  static constexpr char kLetters[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  unsigned char random[32];
  if (getrandom(random, sizeof(random), 0) != static_cast<ssize_t>(sizeof(random))) {
    return absl::InternalError(absl::StrCat("getrandom: ", std::strerror(errno)));
  }
  std::string token;
  // 62 letters: a small bias from the modulo, ~190 bits either way.
  for (unsigned char c : random) token.push_back(kLetters[c % (sizeof(kLetters) - 1)]);
  return token;
}

void AuthTokens::Add(const std::string& token, const std::string& user) {
  const absl::Time now = options_.now();
  absl::MutexLock l(&mu_);
  // Expired ones first, then the least recently used while full.
  while (!by_expiry_.empty() &&
         (by_expiry_.begin()->first <= now || tokens_.size() >= options_.max_tokens)) {
    EraseLocked(tokens_.find(by_expiry_.begin()->second));
  }
  if (auto it = tokens_.find(token); it != tokens_.end()) EraseLocked(it);
  const absl::Time expires = now + options_.ttl;
  tokens_[token] = Entry{user, expires};
  by_expiry_.emplace(expires, token);
}

std::optional<std::string> AuthTokens::User(const std::string& token) {
  const absl::Time now = options_.now();
  absl::MutexLock l(&mu_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return std::nullopt;
  if (it->second.expires <= now) {
    EraseLocked(it);
    return std::nullopt;
  }
  by_expiry_.erase({it->second.expires, token});
  it->second.expires = now + options_.ttl;
  by_expiry_.emplace(it->second.expires, token);
  return it->second.user;
}

void AuthTokens::Invalidate(const std::string& user) {
  absl::MutexLock l(&mu_);
  if (user.empty()) {
    tokens_.clear();
    by_expiry_.clear();
    return;
  }
  for (auto it = tokens_.begin(); it != tokens_.end();) {
    auto next = std::next(it);
    if (it->second.user == user) EraseLocked(it);
    it = next;
  }
}

size_t AuthTokens::size() const {
  absl::MutexLock l(&mu_);
  return tokens_.size();
}

void AuthTokens::EraseLocked(std::map<std::string, Entry>::iterator it) {
  by_expiry_.erase({it->second.expires, it->first});
  tokens_.erase(it);
}

}  // namespace raftkv::server::etcd
