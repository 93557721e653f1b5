// The --cluster flag: "1=127.0.0.1:7001,2=127.0.0.1:7002,...".
#ifndef RAFTKV_SERVER_CLUSTER_SPEC_H_
#define RAFTKV_SERVER_CLUSTER_SPEC_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace raftkv::server {

// Node id -> "host:port".
using ClusterSpec = std::map<uint64_t, std::string>;

// Parses a comma-separated list of id=host:port. InvalidArgument, naming
// the bad item, for a zero or non-numeric id, a repeated id or address, or
// an address without a port.
absl::StatusOr<ClusterSpec> ParseClusterSpec(absl::string_view spec);

// The canonical text of a spec ("1=a:1,2=b:2", ids ascending).
std::string FormatClusterSpec(const ClusterSpec& spec);

// A stable, non-zero 64-bit id for the cluster a spec founds: the same on
// every node and every run (FNV-1a of the canonical text).
uint64_t ClusterIdOf(const ClusterSpec& spec);

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_CLUSTER_SPEC_H_
