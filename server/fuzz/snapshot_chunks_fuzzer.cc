// Fuzz target: snapshot chunk streams from a peer into SnapshotReceiver
// (server/snapshot_transfer.h): truncated, reordered, corrupt, oversized
// chunks, bad checksums, a disk that fills up (the refusal) midway.
//
// Each input is up to three transfers, received one after another by one
// receiver over one store, each installed (LogStore::InstallStaged, as the
// node does once its core takes the snapshot) when it is received whole. A
// model computes what each stream must come to:
//   - Receive accepts exactly the well-formed streams (every chunk in order
//     with its checksum, the first announcing a snapshot, each a SnapshotData
//     of matching keys and values, a last chunk whose totals match, no
//     refusal), and refuses every other with the code the contract names;
//   - a refused stream leaves the live data, applied index and snapshot as
//     they were, and the receiver free for the next transfer;
//   - an installed image holds exactly the pairs of its stream's chunks: no
//     leftover of an earlier, refused stream, nothing of the old data.
// The store is shared by all inputs of a process (opening one per input
// would dominate); every check is relative to its state before the input.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "fuzz/fuzz_input.h"
#include "server/fuzz/scratch_store.h"
#include "fuzz/temp_dir.h"
#include "glog/logging.h"
#include "proto/peer.pb.h"
#include "server/snapshot_transfer.h"
#include "storage/log_store.h"

namespace raftkv::server {
namespace {

using fuzz::FuzzInput;
using Image = std::map<std::string, std::string>;

uint32_t Crc(uint32_t crc, const std::string& data) {
  return static_cast<uint32_t>(
      crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

storage::LogStore& Store() {
  static storage::LogStore* store =
      fuzz::OpenScratchStore(fuzz::ProcessTempDir("snapshot_chunks") + "/store");
  return *store;
}

Image LiveData(const storage::LogStore& store) {
  Image out;
  CHECK(store.ScanData("", [&](absl::string_view k, absl::string_view v) {
                 out.emplace(std::string(k), std::string(v));
                 return true;
               }).ok());
  return out;
}

struct Stream {
  std::vector<peerpb::SnapshotChunk> chunks;
  size_t refuse_at = SIZE_MAX;  // the refusal's n-th call fails (0: before staging)
  // What Receive must answer, and the image it stages when OK.
  absl::StatusCode want = absl::StatusCode::kOk;
  Image image;
  raftpb::Message announce;
};

// Decodes one stream and what the receiver must make of it.
Stream MakeStream(FuzzInput& in, uint64_t snapshot_index) {
  Stream s;
  const uint8_t flags = in.U8();
  if (flags & 0x80) s.refuse_at = in.Range(0, 4);
  const int n = in.Range(0, 6);
  uint32_t total_crc = Crc(0, "");
  uint64_t total_bytes = 0;
  for (int seq = 0; seq < n; ++seq) {
    peerpb::SnapshotChunk c;
    const uint8_t f = in.U8();
    c.set_seq(f % 16 == 15 ? in.Range(0, 8) : seq);
    if (seq == 0 || f % 16 == 14) {
      raftpb::Message* m = c.mutable_message();
      m->set_type(f % 16 == 13 ? raftpb::MSG_APPEND : raftpb::MSG_SNAPSHOT);
      m->set_from(in.Range(0, 3));
      m->set_to(in.Range(0, 3));
      m->set_term(in.Range(0, 5));
      auto* meta = m->mutable_snapshot()->mutable_metadata();
      meta->set_index(snapshot_index + in.Range(0, 3));
      meta->set_term(in.Range(0, 5));
      for (int v = in.Range(0, 3); v > 0; --v) meta->mutable_conf_state()->add_voters(v);
    }
    if (f & 0x40) {
      c.set_data(in.Bytes(64));  // anything
    } else {
      peerpb::SnapshotData d;
      for (int k = in.Range(0, 5); k > 0; --k) {
        d.add_keys(in.Bytes(8));
        // Oversized now and then: a value of up to 256 KiB.
        d.add_values(in.U8() == 0xff ? std::string(in.Range(0, 256 << 10), 'v') : in.Bytes(16));
      }
      if (f & 0x20) d.add_keys(in.Bytes(8));  // a key without its value
      c.set_data(d.SerializeAsString());
    }
    c.set_crc32(Crc(0, c.data()));
    if (f & 0x10) c.set_crc32(c.crc32() ^ (1u << in.Range(0, 31)));
    total_crc = Crc(total_crc, c.data());
    total_bytes += c.data().size();
    const bool last = seq == n - 1 ? (f & 0x08) == 0 : f % 16 == 12;
    c.set_last(last);
    if (last) {
      c.set_total_crc32(total_crc ^ ((f & 0x04) ? 1 : 0));
      c.set_total_bytes(total_bytes + ((f & 0x02) ? 1 : 0));
    }
    s.chunks.push_back(std::move(c));
  }

  // The model: the receiver's checks, in the contract's terms.
  size_t refusals = 0;
  auto refused = [&] { return refusals++ == s.refuse_at; };
  if (refused()) {
    s.want = absl::StatusCode::kResourceExhausted;
    return s;
  }
  uint32_t crc = Crc(0, "");
  uint64_t bytes = 0;
  for (size_t seq = 0; seq < s.chunks.size(); ++seq) {
    const peerpb::SnapshotChunk& c = s.chunks[seq];
    peerpb::SnapshotData d;
    if (c.seq() != seq || Crc(0, c.data()) != c.crc32() ||
        (seq == 0 && c.message().type() != raftpb::MSG_SNAPSHOT) ||
        !d.ParseFromString(c.data()) || d.keys_size() != d.values_size()) {
      s.want = absl::StatusCode::kDataLoss;
      return s;
    }
    if (seq == 0) s.announce = c.message();
    if (refused()) {
      s.want = absl::StatusCode::kResourceExhausted;
      return s;
    }
    for (int k = 0; k < d.keys_size(); ++k) s.image[d.keys(k)] = d.values(k);
    crc = Crc(crc, c.data());
    bytes += c.data().size();
    if (c.last()) {
      s.want = c.total_crc32() == crc && c.total_bytes() == bytes ? absl::StatusCode::kOk
                                                                   : absl::StatusCode::kDataLoss;
      return s;
    }
  }
  s.want = absl::StatusCode::kUnavailable;  // the stream ended before its last chunk
  return s;
}

}  // namespace
}  // namespace raftkv::server

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace raftkv::server;
  static const bool quiet = [] {
    FLAGS_minloglevel = 2;
    return true;
  }();
  (void)quiet;
  raftkv::storage::LogStore& store = Store();
  raftkv::fuzz::FuzzInput in(data, size);
  // One receiver takes the input's transfers in turn, as a node's does.
  size_t refuse_at = SIZE_MAX, calls = 0;
  SnapshotReceiver receiver(&store, [&]() -> absl::Status {
    if (calls++ == refuse_at) return absl::ResourceExhaustedError("the disk is full");
    return absl::OkStatus();
  });
  for (int t = 0; t < 3 && !in.exhausted(); ++t) {
    const raftkv::raftpb::SnapshotMetadata before_snap = store.GetSnapshot()->metadata();
    const uint64_t before_applied = store.applied_index();
    const Image before = LiveData(store);
    Stream s = MakeStream(in, before_snap.index());
    refuse_at = s.refuse_at;
    calls = 0;
    size_t next = 0;
    absl::StatusOr<raftkv::raftpb::Message> got =
        receiver.Receive([&](raftkv::peerpb::SnapshotChunk* c) {
          if (next == s.chunks.size()) return false;
          *c = s.chunks[next++];
          return true;
        });
    CHECK(got.status().code() == s.want)
        << "stream " << t << ": Receive answered " << got.status() << ", the model wants "
        << absl::StatusCodeToString(s.want);
    if (!got.ok()) {
      CHECK(!receiver.staged_index().has_value()) << "a refused stream left an image staged";
      CHECK_EQ(receiver.State(), "") << "a refused stream left the receiver busy";
      CHECK(LiveData(store) == before) << "a refused stream changed the live data";
      CHECK_EQ(store.applied_index(), before_applied);
      continue;
    }
    CHECK_EQ(got->SerializeAsString(), s.announce.SerializeAsString());
    const auto& meta = got->snapshot().metadata();
    CHECK(receiver.staged_index() == meta.index());
    // A second transfer waits for the staged one to be installed or released.
    CHECK(receiver.Receive([](raftkv::peerpb::SnapshotChunk*) { return false; }).status().code() ==
          absl::StatusCode::kUnavailable);
    absl::Status installed = store.InstallStaged(meta);
    if (installed.ok()) {
      CHECK(LiveData(store) == s.image) << "the installed image is not the stream's";
      CHECK_EQ(store.applied_index(), meta.index());
    } else {
      CHECK(installed.code() == absl::StatusCode::kFailedPrecondition) << installed;
      CHECK(meta.index() <= before_snap.index() || meta.index() < before_applied) << installed;
      CHECK(LiveData(store) == before) << "a refused install changed the live data";
    }
    receiver.Release();
  }
  return 0;
}
