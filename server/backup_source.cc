#include "server/backup_source.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/backup_file.h"
#include "storage/byte_pacer.h"

namespace raftkv::server {

absl::Status BackupSourceOptions::Validate() const {
  if (bytes_per_sec != 0 && bytes_per_sec < (64 << 10)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bytes_per_sec ", bytes_per_sec, ": 0 (unthrottled) or at least 65536"));
  }
  if (chunk_bytes < 1024) return absl::InvalidArgumentError("chunk_bytes below 1 KiB");
  return absl::OkStatus();
}

absl::StatusOr<BackupSummary> StreamBackup(const KvStateMachine& sm,
                                           const BackupSourceOptions& options,
                                           const std::function<bool(std::string chunk)>& sink) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  storage::LogStore* store = sm.store();
  // The term of the view's applied index: the log may be compacted past it
  // between the two reads (then the view is taken again).
  std::unique_ptr<storage::DataSnapshot> view;
  absl::StatusOr<uint64_t> term = absl::UnknownError("no view");
  for (int attempt = 0; attempt < 3 && !term.ok(); ++attempt) {
    auto v = store->OpenDataSnapshot();
    if (!v.ok()) return v.status();
    view = std::move(*v);
    term = store->Term(view->applied_index());
  }
  if (!term.ok()) {
    return absl::Status(term.status().code(),
                        absl::StrCat("the term of applied index ", view->applied_index(), ": ",
                                     term.status().message()));
  }
  backuppb::BackupHeader header;
  header.set_cluster_id(options.cluster_id);
  header.set_member_id(options.member_id);
  header.set_applied_index(view->applied_index());
  header.set_term(*term);
  header.set_created_unix_micros(absl::ToUnixMicros(absl::Now()));
  raftpb::ConfState conf;
  if (view->conf().has_value()) {
    conf = *view->conf();
  } else if (auto snap = store->GetSnapshot(); snap.ok()) {
    conf = snap->metadata().conf_state();
  }
  for (uint64_t v : conf.voters()) header.add_voters(v);
  for (uint64_t l : conf.learners()) header.add_learners(l);

  std::string buf;
  BackupWriter writer(header, &buf);
  storage::BytePacer pacer(options.bytes_per_sec);
  KvStateMachine::KeyCounter keys;
  bool gone = false;
  absl::Status scan = view->Scan("", [&](absl::string_view k, absl::string_view v) {
    writer.Add(k, v);
    keys.Add(k, v);
    if (buf.size() >= options.chunk_bytes) {
      gone = !sink(std::move(buf));
      buf.clear();
    }
    return !gone && pacer.Account(k.size() + v.size());
  });
  if (!scan.ok()) return scan;
  if (gone) return absl::CancelledError("the backup's receiver went away");
  if (options.etcd_size) {
    // The record (tag, two u32 lengths, key, value) and the trailer (tag,
    // two u64 counts, SHA-256) bring the size to 32 mod 512.
    constexpr uint64_t kTrailer = 1 + 16 + 32;
    const uint64_t fixed = writer.bytes() + 9 + KvStateMachine::kBackupPaddingKey.size() + kTrailer;
    writer.Add(KvStateMachine::kBackupPaddingKey, std::string((512 + 32 - fixed % 512) % 512, '\0'));
  }
  writer.Finish(keys.count());
  if (!sink(std::move(buf))) return absl::CancelledError("the backup's receiver went away");
  BackupSummary out;
  out.applied_index = view->applied_index();
  out.term = *term;
  out.records = writer.records();
  out.keys = keys.count();
  out.bytes = writer.bytes();
  return out;
}

}  // namespace raftkv::server
