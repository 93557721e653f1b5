#include "storage/durable_mark.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "storage/synced_file.h"

namespace raftkv::storage {
namespace {

constexpr char kHeader[] = "raftkv durable mark v1";

absl::Status Errno(const std::string& what) {
  const int err = errno;
  const std::string msg = absl::StrCat(what, ": ", std::strerror(err));
  // A full disk is reported as the store reports it (rocks_status.h).
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

}  // namespace

std::string DurableMark::DebugString() const {
  return absl::StrCat("term ", term, ", log up to index ", last_index, " of term ", last_term,
                      ", commit ", commit);
}

std::string DurableMarkPath(const std::string& dir) { return dir + "/RAFTKV_DURABLE_MARK"; }

absl::StatusOr<std::optional<DurableMark>> ReadDurableMark(const std::string& dir) {
  const std::string path = DurableMarkPath(dir);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) && !ec) return std::optional<DurableMark>();
  std::ifstream in(path);
  if (!in.is_open()) return Errno(absl::StrCat("reading ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::vector<std::string> lines = absl::StrSplit(ss.str(), '\n', absl::SkipEmpty());
  auto malformed = [&] {
    return absl::DataLossError(absl::StrCat(path, " is malformed: ", ss.str().substr(0, 200)));
  };
  if (lines.size() != 5 || lines[0] != kHeader) return malformed();
  DurableMark m;
  uint64_t* fields[] = {&m.term, &m.last_index, &m.last_term, &m.commit};
  const char* names[] = {"term ", "last_index ", "last_term ", "commit "};
  for (int i = 0; i < 4; ++i) {
    const std::string& l = lines[i + 1];
    if (l.rfind(names[i], 0) != 0 || !absl::SimpleAtoi(l.substr(strlen(names[i])), fields[i])) {
      return malformed();
    }
  }
  return std::optional<DurableMark>(m);
}

absl::Status WriteDurableMark(const std::string& dir, const DurableMark& m) {
  const std::string path = DurableMarkPath(dir);
  const std::string text = absl::StrCat(kHeader, "\nterm ", m.term, "\nlast_index ", m.last_index,
                                        "\nlast_term ", m.last_term, "\ncommit ", m.commit, "\n");
  return WriteFileAtomically(path, text);
}

}  // namespace raftkv::storage
