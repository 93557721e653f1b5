// Seed corpus of the peer messages fuzz target (fuzz/seeds.h):
//   bazel run //raft/fuzz:make_seeds -- $PWD/raft/fuzz/corpus
// Scripts in the target's input format (Cluster::Step's operations).
#include <string>

#include "fuzz/fuzz_input.h"
#include "fuzz/seeds.h"

namespace raftkv::fuzz {
namespace {

// Operation codes of Cluster::Step (op % 20).
enum Op : uint8_t {
  kDeliver = 0, kDuplicate = 6, kDrop = 7, kTick = 8, kPropose = 10, kRead = 11, kCrash = 12,
  kCompact = 13, kConfChange = 14, kTransfer = 15, kHostile = 16, kForge = 17, kRaw = 19,
};

class Script {
 public:
  explicit Script(uint8_t config) { o_.U8(config); }
  // n ticks of every node (0) or of one.
  Script& Ticks(int n, uint8_t node = 0) {
    for (int i = 0; i < n; ++i) o_.U8(kTick).U8(node);
    return *this;
  }
  Script& Deliver(int n, uint8_t k = 0) {
    for (int i = 0; i < n; ++i) o_.U8(kDeliver).U8(k + i);
    return *this;
  }
  // Node 1 times out first: it is elected.
  Script& Elect() { return Ticks(8, 1).Deliver(40).Ticks(1).Deliver(20); }
  Script& Propose(int n) {
    for (int i = 0; i < n; ++i) o_.U8(kPropose).U8(0).U8(i);
    return *this;
  }
  Script& Op(uint8_t op, std::initializer_list<uint8_t> args) {
    o_.U8(op);
    for (uint8_t a : args) o_.U8(a);
    return *this;
  }
  std::string str() const { return o_.str(); }

 private:
  FuzzOutput o_;
};

}  // namespace

Seeds MakeSeeds() {
  Seeds s;
  auto& p = s["peer_messages_fuzzer"];
  p["elect"] = Script(0).Elect().str();
  p["replicate"] = Script(0).Elect().Propose(5).Deliver(60).Ticks(2).Deliver(30).str();
  p["reads"] = Script(0x20).Elect().Propose(2).Deliver(30)
                   .Op(kRead, {0, 1}).Op(kRead, {200, 0}).Deliver(30).Ticks(1).Deliver(20).str();
  // Node 3 down while the others commit and compact; back, it needs a snapshot.
  p["snapshot"] = Script(0).Elect().Op(kCrash, {2}).Propose(6).Deliver(60)
                      .Op(kCompact, {0}).Op(kCompact, {1}).Op(kCompact, {2}).Op(kCrash, {2})
                      .Ticks(3).Deliver(60).Ticks(3).Deliver(60).str();
  // Node 4 added as a learner, promoted, then node 3 removed.
  p["membership"] = Script(0).Elect().Propose(1).Deliver(30)
                        .Op(kConfChange, {0, 0, 3}).Deliver(40).Ticks(2).Deliver(40)
                        .Op(kConfChange, {0, 1, 3}).Deliver(40).Ticks(2).Deliver(40)
                        .Op(kConfChange, {0, 2, 2}).Deliver(40).Ticks(3).Deliver(40).str();
  p["transfer"] = Script(0).Elect().Propose(2).Deliver(30).Op(kTransfer, {0, 2}).Deliver(40)
                      .Ticks(2).Deliver(40).str();
  p["hostile"] = Script(0).Elect().Propose(3).Deliver(30)
                     .Op(kHostile, {0, 1, 2, 3, 4, 5, 6, 7, 8, 1})
                     .Op(kHostile, {1, 9, 9, 9, 9, 9, 9, 9, 9, 0})
                     .Op(kHostile, {0, 3, 1, 4, 1, 5, 9, 2, 6, 1}).Deliver(30).str();
  p["forged"] = Script(0).Elect().Propose(2).Deliver(30)
                    .Op(kForge, {0, 1, 0x01, 2, 3, 6, 5, 0x20, 1, 0, 1, 1})
                    .Op(kForge, {1, 7, 0x02, 3, 3, 7, 7, 0x00, 0}).Deliver(20).Ticks(4).Deliver(40)
                    .str();
  p["lossy"] = Script(0x08).Ticks(8).Deliver(5).Op(kDrop, {3}).Op(kDuplicate, {1}).Deliver(30, 7)
                   .Ticks(6).Deliver(40, 3).Propose(3).Op(kDrop, {0}).Deliver(40, 5).Ticks(6)
                   .Deliver(60).str();
  // Figure 8 of the Raft paper: an entry of an old term (x, term 1, only on
  // node 1) is replicated to a majority by a later leader (node 1, term 3)
  // which fails before committing an entry of its own term; node 3, whose
  // log has another entry there (term 2), may then be elected and replace
  // it. Safe only because a leader never commits an old term's entry by
  // counting replicas: with RAFTKV_FUZZ_PLANTED_BUG=1 this input fails.
  p["figure8"] = Script(0x48)  // no pre-vote; one entry per append
                     .Elect().Deliver(60)
                     .Op(kCrash, {1}).Op(kCrash, {2})           // 2 and 3 down
                     .Propose(1).Deliver(10)                    // x: on node 1 only
                     .Op(kCrash, {0}).Op(kCrash, {1}).Op(kCrash, {2})  // 1 down; 2, 3 up
                     .Ticks(6, 3).Deliver(3)                    // 3 elected in term 2
                     .Op(kCrash, {1}).Deliver(20)               // 2 down: 3's appends lost
                     .Op(kCrash, {2})                           // 3 down
                     .Op(kCrash, {0}).Op(kCrash, {1})           // 1 and 2 up
                     .Ticks(6, 1).Deliver(3)                    // 1 loses term 2 (2 voted 3)
                     .Ticks(6, 1).Deliver(8)                    // 1 elected in term 3; x to 2
                     .Op(kCrash, {0}).Op(kCrash, {1}).Deliver(20)  // 1 and 2 down
                     .Op(kCrash, {1}).Op(kCrash, {2})           // 2 and 3 up
                     .Ticks(6, 3).Deliver(80).Ticks(3).Deliver(80)  // 3 elected in term 4
                     .str();
  return s;
}

}  // namespace raftkv::fuzz
