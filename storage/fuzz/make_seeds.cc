// Seed corpora of the storage fuzz targets (fuzz/seeds.h):
//   bazel run //storage/fuzz:make_seeds -- $PWD/storage/fuzz/corpus
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fuzz/fuzz_input.h"
#include "fuzz/seeds.h"
#include "glog/logging.h"
#include "storage/log_store.h"

namespace raftkv::fuzz {
namespace {

// The live WAL of a store that appended `n` entries, without the
// preallocated space past its records (but a few zeros of it).
std::string MakeWal(int n) {
  const std::string dir = std::filesystem::temp_directory_path() / "raftkv_wal_seed";
  std::filesystem::remove_all(dir);
  auto store = storage::LogStore::Open(storage::Options{.dir = dir});
  CHECK(store.ok()) << store.status();
  for (int i = 1; i <= n; ++i) {
    raftpb::Entry e;
    e.set_index(i);
    e.set_term(1 + i / 3);
    e.set_data(std::string(10 * i, 'a' + i));
    raftpb::HardState hs;
    hs.set_term(e.term());
    hs.set_commit(i - 1);
    CHECK((*store)->Append({e}, &hs).ok());
  }
  std::string newest;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().extension() == ".log" && f.path().string() > newest) newest = f.path();
  }
  std::ifstream in(newest, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  std::string wal = bytes.str();
  size_t end = wal.size();
  while (end > 0 && wal[end - 1] == 0) --end;
  wal.resize(std::min(wal.size(), end + 64));
  store->reset();
  std::filesystem::remove_all(dir);
  return wal;
}

// log_records_fuzzer input: flags, base, then op 15 (a whole store) with
// `n` entries, then `extra` (more ops).
std::string WholeStore(uint8_t flags, uint8_t n, const std::string& extra) {
  FuzzOutput o;
  o.U8(flags).U8(0);         // flags; base 0
  o.U8(15).U8(2).U8(n).U8(1);  // whole store: snapshot at 2, n entries, term 2
  for (int i = 0; i < n; ++i) o.U8(i % 3 == 0 ? 0 : 1).U8(0).Bytes("cmd" + std::to_string(i), 24);
  o.U8(1).U8(1).U8(n).U8(n);  // hard state: term +1, vote 1, commit all; applied all
  return o.Raw(extra).str();
}

}  // namespace

Seeds MakeSeeds() {
  Seeds s;
  const std::string wal = MakeWal(6);
  s["wal_tail_fuzzer"]["wal"] = wal;
  std::string torn = wal;
  size_t end = torn.size() - 64;
  for (size_t k = end - 20; k < end; ++k) torn[k] = 0;  // the last record, torn
  s["wal_tail_fuzzer"]["torn"] = torn;

  auto& lr = s["log_records_fuzzer"];
  lr["whole"] = WholeStore(2, 5, "");
  lr["whole_unverified"] = WholeStore(3, 8, "");
  // A damaged entry 4: one byte changed.
  lr["damaged_entry"] =
      WholeStore(2, 5, FuzzOutput().U8(0).U8(2).U8(4).U8(2).U8(0).Bytes("x", 24).U8(1)
                           .U8(250).U8(3).U8(7).str());
  // A hard state committing past the log.
  lr["commit_past_log"] =
      WholeStore(2, 3, FuzzOutput().U8(2).U8(2).U8(2).U8(2).U8(40).U8(0).str());
  // A durable mark ahead of the log.
  lr["mark_ahead"] = WholeStore(
      2, 3, FuzzOutput().U8(14).U8(5).U8(2).U8(30).U8(5).U8(2).U8(30).U8(1).str());
  return s;
}

}  // namespace raftkv::fuzz
