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

// etcd_requests_fuzzer (its Step(): op, then the request's choices, then
// the encoding: 0 as protobuf serializes it). Keys by index: 0 "a", 1 "ab",
// 2 "abc", 3 "b", 4 "c", 5 "\0", 9 ""; values: 0 "", 1 "v", 2 "w", 3 "vv".
FuzzOutput& EtcdPut(FuzzOutput& o, uint8_t key, uint8_t value, uint8_t flags = 0) {
  o.U8(2).U8(key).U8(flags);
  if (!(flags & 1)) o.U8(value);
  return o.U8(0);
}
// A range of `key` with range_end choice `end` (0: the key, 2: "\0", 3: its
// prefix), option bits `f` and what they read next in `more`.
FuzzOutput& EtcdRange(FuzzOutput& o, uint8_t key, uint8_t end, uint8_t f,
                      const std::string& more = "") {
  return o.U8(0).U8(key).U8(end).U8(f).Raw(more).U8(0);
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

  auto& etcd = s["etcd_requests_fuzzer"];
  const std::string defaults = FuzzOutput().U8(1).U8(1).U8(1).str();  // etcd's limits
  {
    FuzzOutput o;
    o.Raw(defaults);
    EtcdPut(o, 0, 1);
    EtcdPut(o, 1, 2, 2);  // prev_kv
    EtcdPut(o, 2, 3);
    EtcdPut(o, 3, 1);
    EtcdPut(o, 0, 2, 2);
    EtcdRange(o, 0, 3, 5, std::string("\x01\x02\x03", 3));  // prefix a, limit 2, by mod desc
    EtcdRange(o, 5, 2, 2, std::string("\x02", 1));  // every key at the latest revision - 1
    EtcdRange(o, 0, 2, 64 | 16, std::string("\x01\x02", 2));  // from a, keys only, min mod
    // A read-only txn (compare a's version > 1; a range), also through the log.
    o.U8(5).U8(1).U8(0).U8(0).U8(0).U8(1).U8(0).U8(1).U8(0x01).U8(0).U8(1).U8(0).U8(0).U8(0);
    o.U8(1);
    o.U8(13);  // compare everything
    etcd["puts_ranges"] = o.str();
  }
  {
    FuzzOutput o;
    o.Raw(defaults);
    EtcdPut(o, 0, 1);
    EtcdPut(o, 1, 1);
    EtcdPut(o, 4, 3);
    // if a == "v": put b = "w"; if ab's version > 0 { delete c } else { range
    // prefix a } -- else: range a.
    o.U8(5).U8(1).U8(0).U8(0).U8(3).U8(0).U8(0).U8(1);
    o.U8(0x11);  // 2 ops then, 1 else
    o.U8(2).U8(3).U8(0).U8(2);
    o.U8(5).U8(1).U8(1).U8(0).U8(0).U8(1).U8(0).U8(0).U8(0x10);
    o.U8(4).U8(4).U8(0).U8(1);
    o.U8(0).U8(0).U8(3).U8(0);
    o.U8(0).U8(0).U8(0).U8(0);
    o.U8(0);
    o.U8(4).U8(5).U8(2).U8(1).U8(0);  // delete every key, prev_kv
    etcd["txn_nested"] = o.str();
  }
  {
    FuzzOutput o;
    o.Raw(defaults);
    for (int i = 0; i < 4; ++i) EtcdPut(o, i % 2, 1 + i % 3);
    o.U8(8).U8(2).U8(0).U8(0);  // compact at the latest - 1
    o.U8(10).U8(3);             // a physical step
    EtcdRange(o, 0, 0, 2, std::string("\x04", 1));  // below the compacted revision
    o.U8(11);                   // restart
    o.U8(4).U8(0).U8(3).U8(0).U8(0);  // delete prefix a
    o.U8(8).U8(1).U8(1).U8(0);  // compact at the latest, physically
    o.U8(11);
    EtcdPut(o, 0, 3);
    etcd["compact_restart"] = o.str();
  }
  {
    FuzzOutput o;
    o.Raw(defaults);
    // A batch of 4: an etcd put, a native put, a compaction at the latest,
    // a native delete.
    o.U8(9).U8(2);
    o.U8(0).U8(0).U8(0).U8(1);
    o.U8(4).U8(1).U8(2);
    o.U8(3).U8(1);
    o.U8(5).U8(0);
    o.U8(12);  // replay it
    o.U8(13);
    etcd["batch"] = o.str();
  }
  {
    FuzzOutput o;
    o.Raw(defaults);
    o.U8(9).U8(0).U8(6).U8(1).U8(1).U8(1).U8(0).U8(0).U8(0).U8(1);  // NOSPACE on; a put
    EtcdPut(o, 1, 1);                                              // refused
    o.U8(4).U8(0).U8(0).U8(0).U8(0);                               // delete a: served
    o.U8(11);                                                      // restart: still on
    o.U8(9).U8(0).U8(6).U8(2).U8(1).U8(1).U8(0).U8(1).U8(0).U8(2);  // NOSPACE off; a put
    etcd["nospace"] = o.str();
  }
  {
    FuzzOutput o;
    o.U8(0).U8(0).U8(0).U8(20).U8(0).U8(8);  // 1 txn op, 20+16 request bytes, 8 range bytes
    EtcdPut(o, 0, 3);
    EtcdPut(o, 1, 3);
    o.U8(2).U8(2).U8(0).U8(1).U8(7).U8(0).U16(2).U8(0x55).U8(0);  // put abc, a byte replaced
    EtcdRange(o, 5, 2, 0);  // every key: over 8 bytes
    o.U8(0).U8(0).U8(0).U8(0).U8(7).U8(0).U16(0).U8(0).U8(3).Bytes("\x0a\x01a\x12\x01b", 64);
    o.U8(5).U8(0).U8(2).U8(2).U8(0).U8(0).U8(1).U8(2).U8(3).U8(0).U8(1).U8(0);  // 2 ops: too many
    etcd["limits_raw"] = o.str();
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
