// Passwords of etcd's users, salted and hashed with bcrypt as etcd does
// (cost 10, etcd's default), through libcrypt's crypt_rn with a "$2b$"
// setting (Debian's libxcrypt, package libcrypt-dev). The member that takes
// a request hashes the password before proposing it, so no plaintext
// password reaches the log, the data or a snapshot.
//
// Thread safety: pure functions (crypt_rn with per-call state).
#ifndef RAFTKV_SERVER_ETCD_PASSWORD_H_
#define RAFTKV_SERVER_ETCD_PASSWORD_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace raftkv::server::etcd {

constexpr int kBcryptCost = 10;  // etcd's bcrypt cost (~50-100 ms a hash)

// A fresh salt and the hash of `password` ("$2b$10$..."). InvalidArgument
// for a password with a NUL byte (crypt(3) would cut it there).
absl::StatusOr<std::string> HashPassword(absl::string_view password, int cost = kBcryptCost);

// Whether `password` hashes to `hash` (compared in constant time).
bool PasswordMatches(absl::string_view password, absl::string_view hash);

}  // namespace raftkv::server::etcd

#endif  // RAFTKV_SERVER_ETCD_PASSWORD_H_
