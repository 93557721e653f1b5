// Seed corpora of the server fuzz targets (fuzz/seeds.h):
//   bazel run //server/fuzz:make_seeds -- $PWD/server/fuzz/corpus
// Each seed is written in its target's input format, which the target's
// source documents by the order it reads its input in.
#include <string>

#include "fuzz/fuzz_input.h"
#include "fuzz/seeds.h"
#include "proto/admin.pb.h"
#include "proto/backup.pb.h"
#include "proto/kv.pb.h"
#include "server/backup_file.h"

namespace raftkv::fuzz {
namespace {

// snapshot_chunks_fuzzer: one chunk of a stream (see MakeStream).
void Chunk(FuzzOutput& o, uint8_t f, bool first, int pairs) {
  o.U8(f);
  if (first) o.U8(2).U8(1).U8(1).U8(1).U8(1).U8(3);  // from 2 to 1, term 1, index +1, term 1, 3 voters
  o.U8(pairs);
  for (int k = 0; k < pairs; ++k) {
    o.Bytes("key" + std::to_string(k), 8).U8(0).Bytes("value" + std::to_string(k), 16);
  }
}

std::string Stream(int chunks, uint8_t damage_last) {
  FuzzOutput o;
  o.U8(0).U8(chunks);
  for (int c = 0; c < chunks; ++c) Chunk(o, c == chunks - 1 ? damage_last : 0, c == 0, 2);
  return o.str();
}

// kv_requests_fuzzer: a batch (op 0) of one command.
FuzzOutput& Write(FuzzOutput& o, uint8_t header, uint8_t op, uint8_t key) {
  o.U8(0).U8(0).U8(0).U8(header);  // batch of 1; an entry with a command
  if (header & 1) o.U8(0).U8(1).U8(1);  // client 1, seq 1, first incomplete 1
  return o.U8(op).U8(key);
}

std::string Backup(int records, uint8_t damage) {
  FuzzOutput o;
  o.U8(1).U8(7).U8(1).U16(42).U8(3).U8(3).U8(records);
  for (int r = 0; r < records; ++r) o.Bytes("k" + std::to_string(r), 8).Bytes("value", 24);
  o.U8(records);  // keys
  if (damage) o.U8(1).U8(2).U8(damage).U8(0);  // one byte changed
  return o.str();
}

}  // namespace

Seeds MakeSeeds() {
  Seeds s;
  auto& sc = s["snapshot_chunks_fuzzer"];
  sc["one_chunk"] = Stream(1, 0);
  sc["three_chunks"] = Stream(3, 0);
  sc["bad_total"] = Stream(2, 0x04);
  sc["bad_crc"] = Stream(2, 0x10);
  sc["truncated"] = Stream(3, 0x08);
  sc["two_transfers"] = Stream(2, 0x04) + Stream(2, 0);

  auto& kv = s["kv_requests_fuzzer"];
  {
    FuzzOutput o;
    Write(o, 0, 0, 0).Bytes("v1", 8);   // put a
    Write(o, 1, 0, 1).Bytes("v2", 8);   // put ab, client 1 seq 1
    Write(o, 1, 0, 1).Bytes("v2", 8);   // its retry
    o.U8(4).U8(0).U8(5).U8(1).U8(1).U8(1).U8(1);  // get a; scan all
    Write(o, 0, 3, 0).U8(0).Bytes("v1", 8).Bytes("v3", 8);  // cas a on its value
    Write(o, 0, 2, 1);                   // delete ab
    o.U8(6);                             // restart
    kv["writes"] = o.str();
  }
  {
    FuzzOutput o;
    o.U8(0).U8(2);  // a batch of three
    o.U8(13).U8(14).Bytes("junk", 12).U8(15).U8(1).U8(2).Bytes("addr", 6).U8(1).U8(1);
    kv["noop_junk_conf"] = o.str();
  }

  auto& raw = s["raw_request_fuzzer"];
  kvpb::PutRequest put;
  put.mutable_header()->set_client_id(5);
  put.mutable_header()->set_seq(1);
  put.set_key("key");
  put.set_value("value");
  raw["put"] = FuzzOutput().U8(0).U8(1).U16(3).Raw(put.SerializeAsString()).str();
  kvpb::BatchRequest batch;
  *batch.add_ops()->mutable_put() = put;
  batch.add_ops()->mutable_get()->set_key("key");
  raw["batch"] = FuzzOutput().U8(5).U8(2).U16(4).U16(9).Raw(batch.SerializeAsString()).str();
  kvpb::ScanRequest scan;
  scan.set_prefix("k");
  scan.set_limit(10);
  raw["scan"] = FuzzOutput().U8(3).U8(0).Raw(scan.SerializeAsString()).str();
  adminpb::AddMemberRequest add;
  raw["add_member"] = FuzzOutput().U8(7).U8(0).Raw(add.SerializeAsString()).str();

  auto& bk = s["backup_file_fuzzer"];
  bk["intact"] = Backup(3, 0);
  bk["damaged"] = Backup(2, 30);
  {  // a real file, read as bytes
    backuppb::BackupHeader h;
    h.set_cluster_id(7);
    h.set_applied_index(10);
    std::string file;
    server::BackupWriter w(h, &file);
    w.Add("kx", "y");
    w.Finish(1);
    bk["raw"] = FuzzOutput().U8(0).Raw(file).str();
  }
  return s;
}

}  // namespace raftkv::fuzz
