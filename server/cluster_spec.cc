#include "server/cluster_spec.h"

#include <set>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace raftkv::server {

absl::StatusOr<ClusterSpec> ParseClusterSpec(absl::string_view spec) {
  ClusterSpec out;
  std::set<std::string> addresses;
  for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    std::vector<absl::string_view> parts = absl::StrSplit(item, absl::MaxSplits('=', 1));
    uint64_t id = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &id) || id == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad cluster member '", item, "': want ID=HOST:PORT with ID > 0"));
    }
    const std::string address(absl::StripAsciiWhitespace(parts[1]));
    const size_t colon = address.rfind(':');
    uint32_t port = 0;
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(address.substr(colon + 1), &port) || port == 0 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad address '", address, "' for node ", id, ": want HOST:PORT"));
    }
    if (!out.emplace(id, address).second) {
      return absl::InvalidArgumentError(absl::StrCat("node id ", id, " is listed twice"));
    }
    if (!addresses.insert(address).second) {
      return absl::InvalidArgumentError(absl::StrCat("address ", address, " is listed twice"));
    }
  }
  if (out.empty()) return absl::InvalidArgumentError("the cluster has no members");
  return out;
}

std::string FormatClusterSpec(const ClusterSpec& spec) {
  return absl::StrJoin(spec, ",", [](std::string* out, const auto& m) {
    absl::StrAppend(out, m.first, "=", m.second);
  });
}

uint64_t ClusterIdOf(const ClusterSpec& spec) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : FormatClusterSpec(spec)) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h == 0 ? 1 : h;
}

}  // namespace raftkv::server
