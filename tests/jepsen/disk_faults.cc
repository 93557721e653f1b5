// The disk faults of the nemesis (nemesis.h): fill-disk and corrupt-block.
#include <chrono>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "storage/sst_corruption.h"
#include "tests/jepsen/disks.h"
#include "tests/jepsen/history.h"
#include "tests/jepsen/nemesis.h"

namespace raftkv::jepsen {
namespace {

bool HasAlarm(testing::Cluster* cluster, int id, absl::string_view type) {
  auto st = cluster->Status(id);
  if (!st.ok()) return false;
  for (const std::string& a : st->alarms()) {
    if (absl::StartsWith(a, type)) return true;
  }
  return false;
}

std::string DescribeExit(const testing::ExitResult& r) {
  if (r.term_signal != 0) return absl::StrCat("signal ", r.term_signal);
  return absl::StrCat("exit status ", r.exit_code);
}

}  // namespace

void Nemesis::DiskViolation(const std::string& what) {
  Log(absl::StrCat("DISK FAULT VIOLATION: ", what));
  disk_violations_.push_back(what);
}

void Nemesis::WatchDisks() {
  for (auto& [id, full] : full_) {
    if (full.exited || !cluster_->running(id) || paused_.count(id)) continue;
    if (!full.raised && HasAlarm(cluster_, id, "NOSPACE")) {
      full.raised = true;
      ++disk_.nospace_raised;
      Log(absl::StrCat("fill-disk: node ", id, " raised NOSPACE"));
    }
    // A node that truly ran out of space exits 74 (docs/DISK_SPACE.md): a
    // crash, restarted once space is back. Any other end is a bug.
    testing::ExitResult r = cluster_->WaitForExit(id, absl::ZeroDuration());
    if (!r.exited) continue;
    if (r.term_signal == 0 && r.exit_code == 74) {
      full.exited = true;
      ++disk_.nospace_exits;
      Log(absl::StrCat("fill-disk: node ", id, " exited 74 (out of space)"));
    } else {
      full.exited = true;  // restarted by the heal all the same
      DiskViolation(absl::StrCat("node ", id, ", its disk filled, ended with ", DescribeExit(r),
                                 ", not exit status 74"));
    }
  }
  if (corrupt_ != 0 && disk_.flagged_ns.count(corrupt_) == 0 && cluster_->running(corrupt_)) {
    const int id = corrupt_;
    if (HasAlarm(cluster_, id, "CORRUPT")) {
      disk_.flagged_ns[id] = MonotonicNanos();
      ++disk_.corrupt_alarms;
      Log(absl::StrCat("corrupt-block: node ", id, " raised CORRUPT"));
      return;
    }
    // Applying an entry, or a compaction, that meets the damage stops the
    // node with exit status 1 (docs/INTEGRITY.md): it is gone until replaced.
    testing::ExitResult r = cluster_->WaitForExit(id, absl::ZeroDuration());
    if (!r.exited) return;
    disk_.flagged_ns[id] = MonotonicNanos();
    if (r.term_signal == 0 && r.exit_code == 1) {
      ++disk_.corrupt_exits;
      Log(absl::StrCat("corrupt-block: node ", id, " exited 1 (it met the damage)"));
    } else {
      DiskViolation(absl::StrCat("corrupt node ", id, " ended with ", DescribeExit(r),
                                 ", not exit status 1"));
    }
  }
}

void Nemesis::Hold(absl::Duration hold) {
  const absl::Time end = absl::Now() + hold;
  while (absl::Now() < end) {
    if (!full_.empty() || corrupt_ != 0) WatchDisks();
    absl::SleepFor(std::min(absl::Milliseconds(50), end - absl::Now()));
  }
}

std::string Nemesis::FillDisk(const Fault& f) {
  std::vector<int> ids;
  for (int id : members_) {
    if (disks_.count(id) && cluster_->running(id) && !paused_.count(id) && !full_.count(id) &&
        id != corrupt_) {
      ids.push_back(id);
    }
  }
  if (ids.empty()) return "fill-disk: no running member with a disk of its own, skipped";
  const int id = ids[f.pick % ids.size()];
  NodeDisk* disk = disks_.at(id);
  // Half the reserve left: below it, with room for what the node still
  // writes while it refuses entries (docs/DISK_SPACE.md).
  if (absl::Status s = disk->FillLeaving(min_free_bytes_ / 2); !s.ok()) {
    disk->Empty();
    DiskViolation(absl::StrCat("fill-disk: node ", id, ": ", s.ToString()));
    return absl::StrCat("fill-disk: node ", id, ": ", s.ToString());
  }
  ++disk_.fills;
  Full& full = full_[id];
  const uint64_t free = disk->Free();
  // In effect before its hold begins: the node says so (its check runs every
  // 200 ms), or it ran out of space.
  testing::Cluster::WaitFor(
      [&] {
        WatchDisks();
        return full.raised || full.exited;
      },
      absl::Seconds(10), absl::Milliseconds(50));
  if (!full.raised && !full.exited) {
    DiskViolation(absl::StrCat("fill-disk: node ", id, " did not raise NOSPACE in 10s with ",
                               disk->Free(), " bytes free (--min_free_bytes=", min_free_bytes_,
                               ")"));
  }
  return absl::StrCat("fill-disk: node ", id, " left with ", free,
                      " bytes free (--min_free_bytes=", min_free_bytes_, "): ",
                      full.raised ? "NOSPACE raised" : full.exited ? "exited 74" : "NO ALARM");
}

absl::Status Nemesis::FreeDisks() {
  if (full_.empty()) return absl::OkStatus();
  WatchDisks();  // a last look before the space comes back
  for (auto& [id, full] : full_) {
    disks_.at(id)->Empty();
    if (full.exited && !killed_.count(id) && members_.count(id)) {
      if (absl::Status s = cluster_->Start(id); !s.ok()) return s;
      Log(absl::StrCat("fill-disk: space back, node ", id, " restarted"));
    }
  }
  return absl::OkStatus();
}

absl::Status Nemesis::SettleDisks(absl::Duration timeout) {
  // Every node filled serves without NOSPACE again (from its restart, if
  // it exited 74).
  for (const auto& [id, full] : full_) {
    if (!members_.count(id)) continue;
    const bool cleared = testing::Cluster::WaitFor(
        [&] {
          auto st = cluster_->Status(id);
          if (!st.ok()) return false;
          for (const std::string& a : st->alarms()) {
            if (absl::StartsWith(a, "NOSPACE")) return false;
          }
          return true;
        },
        timeout, absl::Milliseconds(50));
    if (!cleared) {
      return absl::UnavailableError(absl::StrCat("heal: node ", id, " still has NOSPACE (or does not answer) ",
                                                 absl::FormatDuration(timeout),
                                                 " after its ballast went: ", disks_.at(id)->Free(),
                                                 " bytes free"));
    }
    ++disk_.nospace_cleared;
    Log(absl::StrCat("fill-disk: node ", id, " cleared NOSPACE"));
  }
  full_.clear();

  if (corrupt_ == 0) return absl::OkStatus();
  const int victim = corrupt_;
  const bool flagged = testing::Cluster::WaitFor(
      [&] {
        WatchDisks();
        return disk_.flagged_ns.count(victim) > 0;
      },
      timeout, absl::Milliseconds(50));
  if (!flagged) {
    DiskViolation(absl::StrCat("corrupt-block: node ", victim,
                               " neither raised CORRUPT nor exited 1 within ",
                               absl::FormatDuration(timeout), " of the hold's end"));
  }
  // Removed from the membership (a removal that timed out may have
  // committed: the leader's settled membership decides), then killed, and a
  // spare joins in its place.
  int via = 0;
  const bool removed = testing::Cluster::WaitFor(
      [&] {
        const int l = FindLeader();
        if (l == 0 || l == victim) return false;
        auto st = cluster_->Status(l);
        if (!st.ok()) return false;
        bool member = false;
        for (uint64_t v : st->voters()) member |= v == static_cast<uint64_t>(victim);
        for (uint64_t v : st->learners()) member |= v == static_cast<uint64_t>(victim);
        if (!member && st->commit_index() == st->last_index()) return true;
        if (member) {
          adminpb::RemoveMemberRequest req;
          req.set_node_id(victim);
          adminpb::RemoveMemberResponse resp;
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
          if (cluster_->admin(l)->RemoveMember(&ctx, req, &resp).ok()) via = l;
        }
        return false;
      },
      timeout, absl::Milliseconds(100));
  if (!removed) {
    return absl::UnavailableError(absl::StrCat("heal: corrupt node ", victim,
                                               " could not be removed from the membership in ",
                                               absl::FormatDuration(timeout)));
  }
  cluster_->Kill(victim);
  members_.erase(victim);
  corrupt_ = 0;
  const int spare = next_spare_++;
  if (absl::Status s = cluster_->Start(spare); !s.ok()) {
    return absl::InternalError(absl::StrCat("heal: spare ", spare, " for corrupt node ", victim,
                                            " did not start: ", s.ToString()));
  }
  members_.insert(spare);
  ++disk_.corrupt_replaced;
  Log(absl::StrCat("corrupt-block: node ", victim, " removed", via ? absl::StrCat(" via leader ", via) : "",
                   " and killed; node ", spare, " joins in its place"));
  return absl::OkStatus();
}

std::string Nemesis::CorruptBlock(const Fault& f) {
  if (cluster_->addresses().size() < static_cast<size_t>(next_spare_)) {
    return "corrupt-block: no spare node left to replace a corrupt member, skipped";
  }
  const int leader = FindLeader();
  if (leader == 0) return "corrupt-block: no leader, skipped";
  const int victim = PickNode(f.pick, leader);
  if (!cluster_->running(victim) || paused_.count(victim)) {
    return absl::StrCat("corrupt-block: node ", victim, " is not running, skipped");
  }
  const testing::ExitResult stopped = cluster_->Stop(victim);
  const std::string dir = cluster_->data_dir(victim);
  auto files = storage::testing::SstFilesOf(dir, "data");
  std::string damage;
  if (!files.ok() || files->empty()) {
    damage = files.ok() ? "no data SST file" : files.status().ToString();
  } else {
    // One file, the middle half of its data blocks: its first block (read
    // at start) and its index stay intact, so the node starts.
    const std::string& file = (*files)[(f.pick >> 16) % files->size()];
    auto flipped = storage::testing::CorruptDataBlocks(file, 0.25, 0.75);
    if (!flipped.ok() || *flipped == 0) {
      damage = flipped.ok() ? "0 bytes flipped" : flipped.status().ToString();
    } else {
      ++disk_.corruptions;
      corrupt_ = victim;
      damage = absl::StrCat(*flipped, " bytes flipped in ",
                            std::filesystem::path(file).filename().string(), " (one of ",
                            files->size(), " data SST files)");
    }
  }
  if (corrupt_ != victim) DiskViolation(absl::StrCat("corrupt-block: node ", victim, ": ", damage));
  if (corrupt_ == victim) disk_.damaged_ns[victim] = MonotonicNanos();
  // The scrub at once: it finds the damage even if no read meets it.
  absl::Status started = cluster_->Start(victim, {"--scrub_start_delay=0", "--scrub_interval=1h"});
  if (!started.ok()) {
    DiskViolation(absl::StrCat("corrupt-block: node ", victim, " did not restart: ",
                               started.ToString()));
  }
  return absl::StrCat("corrupt-block: node ", victim, " stopped (", DescribeExit(stopped), "), ",
                      damage, ", restarted");
}

}  // namespace raftkv::jepsen
