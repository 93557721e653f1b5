#include "raft/sim/kv_state_machine.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "raft/membership.h"

namespace raftkv::raft::sim {

uint64_t Mix(uint64_t a, uint64_t b) {
  uint64_t x = a ^ (b + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  x *= 0xC4CEB9FE1A85EC53ull;
  x ^= x >> 33;
  return x;
}

uint64_t HashBytes(absl::string_view s, uint64_t seed) {
  uint64_t h = 0xCBF29CE484222325ull ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return Mix(h, s.size());
}

uint64_t EntryHash(const raftpb::Entry& e) {
  return Mix(HashBytes(e.data(), static_cast<uint64_t>(e.type())), e.term());
}

absl::Status KvStateMachine::Apply(const raftpb::Entry& e) {
  if (e.index() != applied_ + 1) {
    return absl::InternalError(absl::StrCat("state machine at ", applied_,
                                            " asked to apply entry ", e.index()));
  }
  if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
    auto cc = DecodeConfChange(e);
    // The entry records the resulting membership; broken ones are skipped,
    // like the core does.
    if (cc.ok() && cc->has_result()) conf_ = cc->result();
  } else {
    std::string key, value;
    if (DecodePut(e.data(), &key, &value)) kv_[key] = value;
  }
  applied_ = e.index();
  chain_ = Mix(chain_, Mix(EntryHash(e), e.index()));
  return absl::OkStatus();
}

std::optional<std::string> KvStateMachine::Get(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) return std::nullopt;
  return it->second;
}

std::string KvStateMachine::EncodePut(const std::string& key, const std::string& value) {
  return absl::StrCat(key, "=", value);
}

bool KvStateMachine::DecodePut(absl::string_view data, std::string* key,
                               std::string* value) {
  const size_t eq = data.find('=');
  if (eq == absl::string_view::npos) return false;
  *key = std::string(data.substr(0, eq));
  *value = std::string(data.substr(eq + 1));
  return true;
}

// Format: "applied chain\nvoters\nlearners\nkey=value\n..." (ids comma-separated;
// keys and values never contain '=' or newlines).
std::string KvStateMachine::Serialize() const {
  std::string out = absl::StrCat(applied_, " ", chain_, "\n",
                                 absl::StrJoin(conf_.voters(), ","), "\n",
                                 absl::StrJoin(conf_.learners(), ","), "\n");
  for (const auto& [k, v] : kv_) absl::StrAppend(&out, k, "=", v, "\n");
  return out;
}

absl::StatusOr<KvStateMachine> KvStateMachine::Parse(absl::string_view data) {
  std::vector<absl::string_view> lines = absl::StrSplit(data, '\n');
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("bad state machine image: ", why));
  };
  if (lines.size() < 3) return bad("too short");
  KvStateMachine sm;
  std::vector<absl::string_view> head = absl::StrSplit(lines[0], ' ');
  if (head.size() != 2 || !absl::SimpleAtoi(head[0], &sm.applied_) ||
      !absl::SimpleAtoi(head[1], &sm.chain_)) {
    return bad("header");
  }
  for (int which = 0; which < 2; ++which) {
    for (absl::string_view id : absl::StrSplit(lines[1 + which], ',', absl::SkipEmpty())) {
      uint64_t v;
      if (!absl::SimpleAtoi(id, &v)) return bad("member id");
      if (which == 0) {
        sm.conf_.add_voters(v);
      } else {
        sm.conf_.add_learners(v);
      }
    }
  }
  for (size_t i = 3; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    std::string k, v;
    if (!DecodePut(lines[i], &k, &v)) return bad("key/value line");
    sm.kv_[k] = v;
  }
  return sm;
}

}  // namespace raftkv::raft::sim
