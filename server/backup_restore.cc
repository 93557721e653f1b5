#include "server/backup_restore.h"

#include <openssl/evp.h>

#include <filesystem>
#include <memory>
#include <random>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "proto/storage.pb.h"
#include "server/state_machine.h"
#include "storage/data_batch.h"
#include "storage/log_store.h"

namespace raftkv::server {
namespace {

constexpr size_t kStageBytes = 4 << 20;  // staged per write

uint64_t NewIncarnation() {
  std::random_device rd;
  uint64_t v = 0;
  while (v == 0) v = (uint64_t{rd()} << 32) ^ rd();
  return v;
}

// Writes the restored store into options.data_dir (which exists, empty).
absl::StatusOr<RestoreResult> WriteStore(const RestoreOptions& options, const BackupInfo& info) {
  RestoreResult out;
  out.backup = info;
  out.cluster_id = RestoredClusterId(info.sha256_hex, options.cluster, info.header.cluster_id());
  storage::Options so;
  so.dir = options.data_dir;
  auto opened = storage::LogStore::Open(so);
  if (!opened.ok()) return opened.status();
  std::unique_ptr<storage::LogStore> store = std::move(*opened);

  storagepb::NodeIdentity identity;
  identity.set_cluster_id(out.cluster_id);
  identity.set_node_id(options.node_id);
  identity.set_incarnation(NewIncarnation());
  identity.set_restored_spec_id(ClusterIdOf(options.cluster));
  raftpb::ConfState conf;
  for (const auto& [id, address] : options.cluster) conf.add_voters(id);
  if (absl::Status s = store->Bootstrap(identity, conf); !s.ok()) return s;

  if (absl::Status s = store->BeginStaging(); !s.ok()) return s;
  storage::DataBatch batch;
  size_t batch_bytes = 0;
  auto flush = [&]() -> absl::Status {
    absl::Status s = store->StageData(batch);
    batch = storage::DataBatch();
    batch_bytes = 0;
    return s;
  };
  auto read = ReadBackup(options.backup_path, [&](absl::string_view k, absl::string_view v) {
    if (!KvStateMachine::KeptOnRestore(k)) return absl::OkStatus();
    batch.Put(std::string(k), std::string(v));
    ++out.records;
    batch_bytes += k.size() + v.size();
    return batch_bytes >= kStageBytes ? flush() : absl::OkStatus();
  });
  if (!read.ok()) return read.status();
  if (read->sha256_hex != info.sha256_hex) {
    return absl::DataLossError(absl::StrCat(options.backup_path, ": changed while being read"));
  }
  if (absl::Status s = flush(); !s.ok()) return s;

  raftpb::SnapshotMetadata meta;
  meta.set_index(info.header.applied_index());
  meta.set_term(info.header.term());
  *meta.mutable_conf_state() = conf;
  if (absl::Status s = store->InstallStaged(meta); !s.ok()) return s;
  // The term too: the first election must be past the restored log's term.
  raftpb::HardState hs;
  hs.set_term(info.header.term());
  hs.set_commit(info.header.applied_index());
  if (absl::Status s = store->Append({}, &hs); !s.ok()) return s;
  if (absl::Status s = store->SyncWal(); !s.ok()) return s;
  return out;
}

}  // namespace

absl::Status RestoreOptions::Validate() const {
  if (backup_path.empty()) return absl::InvalidArgumentError("no backup file given");
  if (data_dir.empty()) return absl::InvalidArgumentError("--data_dir is required");
  if (cluster.empty()) return absl::InvalidArgumentError("--cluster is required");
  if (node_id == 0) return absl::InvalidArgumentError("--id is required (a node id from --cluster)");
  if (cluster.count(node_id) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--id=", node_id, " is not in --cluster=", FormatClusterSpec(cluster)));
  }
  return absl::OkStatus();
}

uint64_t RestoredClusterId(const std::string& sha256_hex, const ClusterSpec& spec,
                           uint64_t old_cluster_id) {
  const std::string spec_text = FormatClusterSpec(spec);
  for (uint32_t round = 0;; ++round) {
    const std::string input =
        absl::StrCat("raftkv restore\n", sha256_hex, "\n", spec_text, "\n", round);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(input.data(), input.size(), md, &n, EVP_sha256(), nullptr);
    uint64_t id = 0;
    for (int i = 0; i < 8; ++i) id |= uint64_t{md[i]} << (8 * i);
    if (id != 0 && id != old_cluster_id && id != ClusterIdOf(spec)) return id;
  }
}

absl::StatusOr<RestoreResult> RestoreBackup(const RestoreOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir(options.data_dir);
  const bool existed = fs::exists(dir, ec);
  if (existed) {
    if (!fs::is_directory(dir, ec)) {
      return absl::FailedPreconditionError(
          absl::StrCat("--data_dir ", options.data_dir, " exists and is not a directory"));
    }
    if (!fs::is_empty(dir, ec) || ec) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--data_dir ", options.data_dir,
          " is not empty: a restore writes a new data dir (move the old one away first)"));
    }
  }
  auto info = VerifyBackup(options.backup_path);
  if (!info.ok()) return info.status();
  if (info->header.applied_index() == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(options.backup_path, ": a backup at index 0 holds nothing to restore"));
  }
  if (!existed && !fs::create_directories(dir, ec) && ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("creating --data_dir ", options.data_dir, ": ", ec.message()));
  }
  auto result = WriteStore(options, *info);
  if (!result.ok()) {
    // Leave nothing behind: the directory was empty or absent before.
    for (const auto& entry : fs::directory_iterator(dir, ec)) fs::remove_all(entry.path(), ec);
    if (!existed) fs::remove(dir, ec);
    return absl::Status(result.status().code(),
                        absl::StrCat("restoring into ", options.data_dir, ": ",
                                     result.status().message(), " (nothing was kept)"));
  }
  return result;
}

}  // namespace raftkv::server
