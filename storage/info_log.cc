#include "storage/info_log.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace raftkv::storage {

std::shared_ptr<InfoLog> InfoLog::Open(const std::string& dir, int keep_old) {
  namespace fs = std::filesystem;
  const std::string path = dir + "/LOG";
  std::error_code ec;
  if (fs::exists(path, ec)) {
    struct timeval now;
    gettimeofday(&now, nullptr);
    const std::string old = path + ".old." +
                            std::to_string(static_cast<uint64_t>(now.tv_sec) * 1000000 +
                                           static_cast<uint64_t>(now.tv_usec));
    fs::rename(path, old, ec);
    // The numbers have as many digits for centuries: name order is age order.
    std::vector<std::string> olds;
    for (const auto& f : fs::directory_iterator(dir, ec)) {
      const std::string name = f.path().filename().string();
      if (name.rfind("LOG.old.", 0) == 0) olds.push_back(f.path().string());
    }
    std::sort(olds.begin(), olds.end());
    for (size_t i = 0; i + keep_old < olds.size(); ++i) fs::remove(olds[i], ec);
  }
  return OpenFile(path);
}

std::shared_ptr<InfoLog> InfoLog::OpenFile(const std::string& path) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  return std::shared_ptr<InfoLog>(new InfoLog(fd));
}

InfoLog::~InfoLog() {
  if (fd_ >= 0) close(fd_);
}

rocksdb::Status InfoLog::CloseImpl() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  return rocksdb::Status::OK();
}

void InfoLog::Logv(const char* format, va_list ap) {
  if (fd_ < 0) {
    dropped_.fetch_add(1);
    return;
  }
  char buf[4096];
  struct timeval now;
  gettimeofday(&now, nullptr);
  struct tm t;
  localtime_r(&now.tv_sec, &t);
  int n = snprintf(buf, sizeof(buf), "%04d/%02d/%02d-%02d:%02d:%02d.%06ld %lx ", t.tm_year + 1900,
                   t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                   static_cast<long>(now.tv_usec), static_cast<long>(syscall(SYS_gettid)));
  va_list copy;
  va_copy(copy, ap);
  const int body = vsnprintf(buf + n, sizeof(buf) - n - 1, format, copy);
  va_end(copy);
  if (body > 0) n = std::min<int>(n + body, sizeof(buf) - 2);  // long lines are cut
  if (n == 0 || buf[n - 1] != '\n') buf[n++] = '\n';
  if (write(fd_, buf, n) != n) dropped_.fetch_add(1);
}

}  // namespace raftkv::storage
