#include "client/kvctl_snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "proto/admin.grpc.pb.h"
#include "storage/synced_file.h"

namespace raftkv::kvctl {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", strerror(errno)));
}

absl::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(absl::StrCat("writing ", path));
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Streams into the open `fd`; cancels the call once no chunk came for
// `stall_timeout`.
absl::Status Stream(const std::string& endpoint,
                    const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                    uint64_t bytes_per_sec,
                    absl::Duration connect_timeout, absl::Duration stall_timeout, int fd,
                    const std::string& tmp) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // a chunk holds at least one whole record
  auto channel = grpc::CreateCustomChannel(endpoint, credentials, args);
  if (!channel->WaitForConnected(absl::ToChronoTime(absl::Now() + connect_timeout))) {
    return absl::UnavailableError(absl::StrCat(endpoint, ": not reachable"));
  }
  auto stub = adminpb::Admin::NewStub(channel);
  grpc::ClientContext ctx;
  adminpb::SnapshotRequest req;
  req.set_bytes_per_sec(bytes_per_sec);
  std::unique_ptr<grpc::ClientReader<adminpb::SnapshotChunk>> reader = stub->Snapshot(&ctx, req);
  // The watchdog: progress is the time of the last chunk.
  absl::Mutex mu;
  absl::Time last_chunk = absl::Now();
  bool done = false, stalled = false;
  std::thread watchdog([&] {
    absl::MutexLock l(&mu);
    while (!done) {
      const absl::Time due = last_chunk + stall_timeout;
      if (absl::Now() >= due) {
        stalled = true;
        ctx.TryCancel();
        return;
      }
      mu.AwaitWithDeadline(absl::Condition(&done), due);
    }
  });
  adminpb::SnapshotChunk chunk;
  absl::Status written;
  while (reader->Read(&chunk)) {
    {
      absl::MutexLock l(&mu);
      last_chunk = absl::Now();
    }
    written = WriteAll(fd, chunk.data(), tmp);
    if (!written.ok()) {
      ctx.TryCancel();
      break;
    }
  }
  {
    absl::MutexLock l(&mu);
    done = true;
  }
  watchdog.join();
  grpc::Status st = reader->Finish();
  if (!written.ok()) return written;
  if (stalled) {
    return absl::DeadlineExceededError(
        absl::StrCat(endpoint, ": the backup stream sent nothing for ",
                     absl::FormatDuration(stall_timeout), " (--timeout); nothing was saved"));
  }
  if (!st.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                        absl::StrCat(endpoint, ": ", st.error_message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SavedBackup> SaveBackup(const std::string& endpoint,
                                       std::shared_ptr<grpc::ChannelCredentials> credentials,
                                       const std::string& path, uint64_t bytes_per_sec,
                                       absl::Duration timeout) {
  const absl::Time start = absl::Now();
  const std::string tmp = path + ".part";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno(absl::StrCat("creating ", tmp));
  absl::Status s = Stream(endpoint, credentials, bytes_per_sec, timeout, timeout, fd, tmp);
  if (s.ok() && fsync(fd) != 0) s = Errno(absl::StrCat("syncing ", tmp));
  if (close(fd) != 0 && s.ok()) s = Errno(absl::StrCat("closing ", tmp));
  absl::StatusOr<server::BackupInfo> info =
      s.ok() ? server::VerifyBackup(tmp) : absl::StatusOr<server::BackupInfo>(s);
  if (info.ok() && rename(tmp.c_str(), path.c_str()) != 0) {
    info = Errno(absl::StrCat("renaming ", tmp, " to ", path));
  }
  if (info.ok()) {
    if (absl::Status d = storage::SyncParentDir(path); !d.ok()) return d;
    return SavedBackup{*info, absl::Now() - start};
  }
  unlink(tmp.c_str());
  return info.status();
}

std::string DescribeBackup(const server::BackupInfo& info, bool json) {
  const backuppb::BackupHeader& h = info.header;
  const std::string created =
      absl::FormatTime(absl::RFC3339_full, absl::FromUnixMicros(h.created_unix_micros()),
                       absl::UTCTimeZone());
  if (json) {
    return absl::StrCat(
        "{\"format_version\":", server::kBackupFormatVersion, ",\"cluster_id\":", h.cluster_id(),
        ",\"member_id\":", h.member_id(), ",\"applied_index\":", h.applied_index(),
        ",\"term\":", h.term(), ",\"created\":\"", created, "\",\"created_unix_micros\":",
        h.created_unix_micros(), ",\"voters\":[", absl::StrJoin(h.voters(), ","),
        "],\"learners\":[", absl::StrJoin(h.learners(), ","), "],\"keys\":", info.keys,
        ",\"records\":", info.records, ",\"bytes\":", info.bytes, ",\"sha256\":\"",
        info.sha256_hex, "\"}\n");
  }
  return absl::StrCat("format_version: ", server::kBackupFormatVersion, "\n",
                      "cluster_id: ", h.cluster_id(), "\n",
                      "member_id: ", h.member_id(), "\n",
                      "applied_index: ", h.applied_index(), "\n",
                      "term: ", h.term(), "\n",
                      "created: ", created, "\n",
                      "voters: ", absl::StrJoin(h.voters(), ","), "\n",
                      "learners: ", absl::StrJoin(h.learners(), ","), "\n",
                      "keys: ", info.keys, "\n",
                      "records: ", info.records, "\n",
                      "bytes: ", info.bytes, "\n",
                      "sha256: ", info.sha256_hex, "\n");
}

}  // namespace raftkv::kvctl
