#include "server/fuzz/scratch_store.h"

#include "absl/time/time.h"
#include "fuzz/scratch_env.h"
#include "glog/logging.h"
#include "storage/data_batch.h"

namespace raftkv::fuzz {

storage::LogStore* OpenScratchStore(const std::string& dir) {
  storage::Options o;
  o.dir = dir;
  o.sync = false;
  o.durable_mark_interval = absl::ZeroDuration();
  o.data_memtable_bytes = 1 << 20;
  o.data_block_cache_bytes = 0;
  o.table_open_threads = 1;
  o.env = ScratchEnv();
  auto s = storage::LogStore::Open(o);
  CHECK(s.ok()) << s.status();
  return s->release();
}

void ClearData(storage::LogStore& store) {
  storage::DataBatch batch;
  CHECK(store.ScanData("", [&](absl::string_view k, absl::string_view) {
                 batch.Delete(std::string(k));
                 return true;
               }).ok());
  CHECK(store.ApplyBatch(batch, store.applied_index() + 1).ok());
}

}  // namespace raftkv::fuzz
