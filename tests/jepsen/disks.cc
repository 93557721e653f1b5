#include "tests/jepsen/disks.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace raftkv::jepsen {
namespace {

absl::Status* enter_status = nullptr;  // set by EnterPrivateMountNamespace

}  // namespace

absl::Status EnterPrivateMountNamespace() {
  auto done = [](absl::Status s) {
    enter_status = new absl::Status(std::move(s));
    return *enter_status;
  };
  if (geteuid() != 0) {
    return done(absl::FailedPreconditionError(
        "fill-disk needs root to mount a small tmpfs per node (euid is not 0)"));
  }
  if (unshare(CLONE_NEWNS) != 0) {
    return done(absl::FailedPreconditionError(
        absl::StrCat("cannot create a mount namespace: unshare: ", strerror(errno))));
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return done(absl::FailedPreconditionError(
        absl::StrCat("cannot make / private in the new mount namespace: ", strerror(errno))));
  }
  return done(absl::OkStatus());
}

absl::Status MountNamespaceReady() {
  if (enter_status == nullptr) {
    return absl::FailedPreconditionError(
        "fill-disk needs a private mount namespace: EnterPrivateMountNamespace() was not "
        "called at the start of main()");
  }
  return *enter_status;
}

absl::StatusOr<std::unique_ptr<NodeDisk>> NodeDisk::Mount(const std::string& mount_dir,
                                                          const std::string& data_dir,
                                                          uint64_t bytes) {
  if (absl::Status s = MountNamespaceReady(); !s.ok()) return s;
  std::error_code ec;
  for (const std::string& d : {mount_dir, data_dir}) {
    std::filesystem::create_directories(d, ec);
    if (ec) return absl::InternalError(absl::StrCat("mkdir ", d, ": ", ec.message()));
  }
  const std::string opts = absl::StrCat("size=", bytes);
  if (mount("tmpfs", mount_dir.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("mount tmpfs at ", mount_dir, ": ", strerror(errno)));
  }
  std::unique_ptr<NodeDisk> disk(new NodeDisk(mount_dir, data_dir));
  const std::string inner = mount_dir + "/data";
  std::filesystem::create_directories(inner, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", inner, ": ", ec.message()));
  if (mount(inner.c_str(), data_dir.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return absl::InternalError(
        absl::StrCat("bind-mount ", inner, " on ", data_dir, ": ", strerror(errno)));
  }
  return disk;
}

NodeDisk::~NodeDisk() {
  umount2(data_dir_.c_str(), MNT_DETACH);
  umount2(mount_dir_.c_str(), MNT_DETACH);
}

uint64_t NodeDisk::Free() const {
  struct statvfs st;
  if (statvfs(mount_dir_.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

absl::Status NodeDisk::FillLeaving(uint64_t leave) {
  const uint64_t free = Free();
  filled_ = true;
  if (free <= leave) return absl::OkStatus();
  const int fd = open(ballast().c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", ballast(), ": ", strerror(errno)));
  struct stat st;
  fstat(fd, &st);
  const int r = fallocate(fd, 0, st.st_size, static_cast<off_t>(free - leave));
  const int err = errno;
  close(fd);
  if (r != 0) {
    return absl::InternalError(absl::StrCat("fallocate ", free - leave, " bytes in ", ballast(),
                                            ": ", strerror(err)));
  }
  return absl::OkStatus();
}

void NodeDisk::Empty() {
  unlink(ballast().c_str());
  filled_ = false;
}

}  // namespace raftkv::jepsen
