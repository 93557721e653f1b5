#include "tests/jepsen/nemesis.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace raftkv::jepsen {

const char* FaultKindName(FaultKind k) {
  switch (k) {
    case FaultKind::kKill: return "kill";
    case FaultKind::kKillLeader: return "kill-leader";
    case FaultKind::kPause: return "pause";
    case FaultKind::kPauseLeader: return "pause-leader";
    case FaultKind::kIsolateLeader: return "isolate-leader";
    case FaultKind::kSplit: return "split";
    case FaultKind::kBridge: return "bridge";
    case FaultKind::kDrop: return "drop";
    case FaultKind::kDelay: return "delay";
    case FaultKind::kTransferLeader: return "transfer-leader";
    case FaultKind::kReplace: return "replace";
    case FaultKind::kCutSnapshot: return "cut-snapshot";
    case FaultKind::kFillDisk: return "fill-disk";
    case FaultKind::kCorruptBlock: return "corrupt-block";
  }
  return "?";
}

std::vector<FaultKind> AllFaultKinds() {
  return {FaultKind::kKill,  FaultKind::kKillLeader,    FaultKind::kPause,
          FaultKind::kPauseLeader, FaultKind::kIsolateLeader, FaultKind::kSplit,
          FaultKind::kBridge, FaultKind::kDrop,          FaultKind::kDelay,
          FaultKind::kTransferLeader, FaultKind::kReplace, FaultKind::kCutSnapshot,
          FaultKind::kFillDisk, FaultKind::kCorruptBlock};
}

std::vector<FaultKind> DefaultFaultKinds() {
  std::vector<FaultKind> out;
  for (FaultKind k : AllFaultKinds()) {
    if (k != FaultKind::kFillDisk && k != FaultKind::kCorruptBlock) out.push_back(k);
  }
  return out;
}

absl::Status ParseFaultKinds(const std::string& list, std::vector<FaultKind>* out) {
  out->clear();
  for (absl::string_view name : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    bool found = false;
    for (FaultKind k : AllFaultKinds()) {
      if (name == FaultKindName(k)) {
        out->push_back(k);
        found = true;
      }
    }
    if (!found) return absl::InvalidArgumentError(absl::StrCat("unknown fault kind '", name, "'"));
  }
  if (out->empty()) *out = DefaultFaultKinds();
  return absl::OkStatus();
}

std::string FormatFault(const Fault& f) {
  std::string s = absl::StrCat(FaultKindName(f.kind), " after ", absl::FormatDuration(f.wait),
                               " for ", absl::FormatDuration(f.hold), " pick ", f.pick % 1000);
  if (f.kind == FaultKind::kDrop || f.kind == FaultKind::kDelay) {
    absl::StrAppend(&s, " drop ", f.drop);
  }
  if (f.kind == FaultKind::kDelay) absl::StrAppend(&s, " delay ", f.delay_ms, "ms");
  if (f.with_next) absl::StrAppend(&s, " + the next one");
  return s;
}

std::vector<Fault> MakeSchedule(uint64_t seed, int nodes, absl::Duration length,
                                const std::vector<FaultKind>& kinds) {
  std::mt19937_64 rng(seed * 1000003 + static_cast<uint64_t>(nodes));
  auto ms = [&rng](int lo, int hi) {
    return absl::Milliseconds(lo + static_cast<int>(rng() % static_cast<uint64_t>(hi - lo + 1)));
  };
  std::vector<Fault> out;
  absl::Duration total;
  while (total < length && !kinds.empty()) {
    Fault f;
    f.kind = kinds[rng() % kinds.size()];
    f.wait = ms(300, 1500);
    // Elections take 10-20 ticks of 20 ms: every hold outlasts one.
    f.hold = f.kind == FaultKind::kTransferLeader ? absl::ZeroDuration() : ms(800, 3000);
    if (f.kind == FaultKind::kReplace) f.hold = ms(300, 1000);
    // Long enough for the clients to read through the damaged member.
    if (f.kind == FaultKind::kCorruptBlock) f.hold = ms(1500, 3000);
    f.pick = rng();
    if (f.kind == FaultKind::kDrop) f.drop = 0.1 * static_cast<double>(1 + rng() % 5);
    if (f.kind == FaultKind::kDelay) {
      f.delay_ms = static_cast<int>(10 + rng() % 90);
      f.drop = 0.05;
    }
    // Pairs at most: a fault joined to the previous one is not joined on.
    bool joined = !out.empty() && out.back().with_next;
    // cut-snapshot cuts and heals links itself, corrupt-block stops and
    // restarts a node itself: never held with another.
    const bool alone = f.kind == FaultKind::kCutSnapshot || f.kind == FaultKind::kCorruptBlock;
    if (joined && alone) {
      out.back().with_next = false;
      joined = false;
    }
    f.with_next = !joined && f.kind != FaultKind::kTransferLeader &&
                  !alone && rng() % 4 == 0;
    total += joined ? std::max(absl::ZeroDuration(), f.hold - out.back().hold) : f.wait + f.hold;
    out.push_back(f);
  }
  return out;
}

Nemesis::Nemesis(testing::Cluster* cluster, std::function<void(const std::string&)> log,
                 LinkCutter* links)
    : cluster_(cluster), log_(std::move(log)), links_(links), next_spare_(cluster->size() + 1) {
  for (int id = 1; id <= cluster->size(); ++id) members_.insert(id);
}

int Nemesis::PickNode(uint64_t pick, int avoid) const {
  std::vector<int> ids;
  for (int id : members_) {
    if (id != avoid) ids.push_back(id);
  }
  return ids[pick % ids.size()];
}

std::string Nemesis::Replace(const Fault& f) {
  const int leader = FindLeader();
  if (leader == 0) return "replace: no leader, skipped";
  if (cluster_->addresses().size() < static_cast<size_t>(next_spare_)) {
    return "replace: no spare node left, skipped";
  }
  const int victim = PickNode(f.pick, leader);
  adminpb::RemoveMemberRequest req;
  req.set_node_id(victim);
  adminpb::RemoveMemberResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Status s = cluster_->admin(leader)->RemoveMember(&ctx, req, &resp);
  if (!s.ok()) {
    // The removal may still commit (say once a partition heals): the next
    // heal looks at the membership and retires the node if it went.
    pending_removal_.insert(victim);
    return absl::StrCat("replace: removing node ", victim, " failed (", s.error_message(),
                        "), outcome unknown");
  }
  cluster_->Kill(victim);
  paused_.erase(victim);
  killed_.erase(victim);
  members_.erase(victim);
  const int spare = next_spare_++;
  if (absl::Status st = cluster_->Start(spare); !st.ok()) {
    return absl::StrCat("replace: node ", victim, " removed, but spare ", spare,
                        " did not start: ", st.ToString());
  }
  members_.insert(spare);
  return absl::StrCat("replace: node ", victim, " removed (via leader ", leader,
                      ") and killed; node ", spare, " joins");
}

int Nemesis::FindLeader() {
  int leader = 0;
  uint64_t term = 0;
  for (int id : cluster_->running_ids()) {
    if (paused_.count(id)) continue;
    auto s = cluster_->Status(id);
    if (s.ok() && s->role() == "leader" && s->term() >= term) {
      leader = id;
      term = s->term();
    }
  }
  return leader;
}

absl::Status Nemesis::SetFaults(int node, const std::map<int, std::pair<double, int>>& add_lossy,
                                const std::set<int>& add_blocked) {
  std::map<int, std::pair<double, int>>& lossy = lossy_[node];
  for (const auto& [peer, f] : add_lossy) lossy[peer] = f;
  std::set<int>& blocked = blocked_[node];
  blocked.insert(add_blocked.begin(), add_blocked.end());
  adminpb::SetFaultsRequest req;
  for (const auto& [peer, f] : lossy) {
    adminpb::PeerFault* pf = req.add_faults();
    pf->set_peer_id(peer);
    pf->set_drop_probability(f.first);
    pf->set_delay_ms(f.second);
    pf->set_blocked(blocked.count(peer) > 0);
  }
  for (int peer : blocked) {
    if (lossy.count(peer)) continue;
    adminpb::PeerFault* pf = req.add_faults();
    pf->set_peer_id(peer);
    pf->set_blocked(true);
  }
  adminpb::SetFaultsResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
  grpc::Status s = cluster_->admin(node)->SetFaults(&ctx, req, &resp);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat("SetFaults on node ", node, ": ", s.error_message()));
  }
  if (resp.pid() > 0) pids_[node] = static_cast<pid_t>(resp.pid());
  return absl::OkStatus();
}

std::string Nemesis::Partition(const std::vector<std::set<int>>& groups) {
  std::vector<std::string> parts;
  for (size_t g = 0; g < groups.size(); ++g) {
    parts.push_back(absl::StrJoin(groups[g], " "));
    if (links_ != nullptr) {
      for (size_t h = g + 1; h < groups.size(); ++h) {
        for (int a : groups[g]) {
          for (int b : groups[h]) {
            if (absl::Status s = links_->Cut(a, b); !s.ok()) Log(s.ToString());
          }
        }
      }
      continue;
    }
    for (int node : groups[g]) {
      std::set<int> blocked;
      for (size_t h = 0; h < groups.size(); ++h) {
        if (h != g) blocked.insert(groups[h].begin(), groups[h].end());
      }
      if (absl::Status s = SetFaults(node, {}, blocked); !s.ok()) Log(s.ToString());
    }
  }
  return absl::StrCat("[", absl::StrJoin(parts, " | "), "]", links_ ? absl::StrCat(" (", links_->name(), ")") : "");
}

void Nemesis::ClearPartitions() {
  if (links_ != nullptr) {
    if (absl::Status s = links_->HealAll(); !s.ok()) Log(s.ToString());
    return;
  }
  std::map<int, std::set<int>> blocked;
  blocked.swap(blocked_);
  for (const auto& [node, peers] : blocked) {
    if (peers.empty() || !cluster_->running(node)) continue;
    if (absl::Status s = SetFaults(node, {}, {}); !s.ok()) Log(s.ToString());
  }
}

std::string Nemesis::Apply(const Fault& f) {
  faults_.fetch_add(1);
  std::vector<int> ids(members_.begin(), members_.end());
  const int n = static_cast<int>(ids.size());
  std::mt19937_64 rng(f.pick);
  std::shuffle(ids.begin(), ids.end(), rng);
  auto leader_or_pick = [&] {
    int l = FindLeader();
    return l != 0 ? l : PickNode(f.pick);
  };
  std::string what;
  switch (f.kind) {
    case FaultKind::kKill:
    case FaultKind::kKillLeader: {
      const int id = f.kind == FaultKind::kKill ? PickNode(f.pick) : leader_or_pick();
      cluster_->Kill(id);
      killed_.insert(id);
      paused_.erase(id);  // a stopped process dies of SIGKILL too
      what = absl::StrCat("SIGKILL node ", id);
      break;
    }
    case FaultKind::kPause:
    case FaultKind::kPauseLeader: {
      const int id = f.kind == FaultKind::kPause ? PickNode(f.pick) : leader_or_pick();
      auto it = pids_.find(id);
      if (it == pids_.end() || it->second <= 1 || it->second == getpid() ||
          !cluster_->running(id)) {
        what = absl::StrCat("pause node ", id, ": pid unknown, skipped");
        break;
      }
      kill(it->second, SIGSTOP);
      paused_.insert(id);
      what = absl::StrCat("SIGSTOP node ", id, " (pid ", it->second, ")");
      break;
    }
    case FaultKind::kIsolateLeader: {
      const int l = leader_or_pick();
      std::set<int> rest;
      for (int id : ids) {
        if (id != l) rest.insert(id);
      }
      what = absl::StrCat("isolate leader ", l, " ", Partition({{l}, rest}));
      break;
    }
    case FaultKind::kSplit: {
      const int minority = n <= 3 ? 1 : 1 + static_cast<int>(f.pick % 2);
      std::set<int> a(ids.begin(), ids.begin() + minority), b(ids.begin() + minority, ids.end());
      what = absl::StrCat("split ", Partition({a, b}));
      break;
    }
    case FaultKind::kBridge: {
      // ids[0] is the bridge; the rest split in two halves.
      const int half = (n - 1) / 2;
      std::set<int> a(ids.begin() + 1, ids.begin() + 1 + half), b(ids.begin() + 1 + half, ids.end());
      what = absl::StrCat("bridge via node ", ids[0], " ", Partition({a, b}));
      break;
    }
    case FaultKind::kDrop:
    case FaultKind::kDelay: {
      const int delay = f.kind == FaultKind::kDelay ? f.delay_ms : 0;
      for (int node : members_) {
        std::map<int, std::pair<double, int>> lossy;
        for (int peer : members_) {
          if (peer != node) lossy[peer] = {f.drop, delay};
        }
        if (absl::Status s = SetFaults(node, lossy, {}); !s.ok()) Log(s.ToString());
      }
      what = absl::StrCat(f.kind == FaultKind::kDrop ? "drop " : "delay ", f.drop, " of peer messages",
                          delay > 0 ? absl::StrCat(", delay ", delay, "ms") : "");
      break;
    }
    case FaultKind::kTransferLeader: {
      const int l = FindLeader();
      if (l == 0) {
        what = "transfer-leader: no leader, skipped";
        break;
      }
      adminpb::TransferLeaderRequest req;
      adminpb::TransferLeaderResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
      grpc::Status s = cluster_->admin(l)->TransferLeader(&ctx, req, &resp);
      what = s.ok() ? absl::StrCat("transfer leadership from ", l, " to ", resp.leader_id())
                    : absl::StrCat("transfer leadership from ", l, ": ", s.error_message());
      break;
    }
    case FaultKind::kReplace:
      what = Replace(f);
      break;
    case FaultKind::kCutSnapshot:
      what = CutSnapshot(f);
      break;
    case FaultKind::kFillDisk:
      what = FillDisk(f);
      break;
    case FaultKind::kCorruptBlock:
      what = CorruptBlock(f);
      break;
  }
  Log(what);
  return what;
}

void Nemesis::SettleRemovals() {
  if (pending_removal_.empty()) return;
  // A leader that has committed its whole log knows the final membership.
  std::optional<adminpb::StatusResponse> st;
  testing::Cluster::WaitFor(
      [&] {
        const int l = FindLeader();
        if (l == 0) return false;
        auto s = cluster_->Status(l);
        if (!s.ok() || s->commit_index() != s->last_index()) return false;
        st = *s;
        return true;
      },
      absl::Seconds(10), absl::Milliseconds(50));
  if (!st.has_value()) {
    Log("heal: no settled leader to ask about pending removals");
    return;
  }
  for (int victim : pending_removal_) {
    bool member = false;
    for (uint64_t v : st->voters()) member |= v == static_cast<uint64_t>(victim);
    for (uint64_t v : st->learners()) member |= v == static_cast<uint64_t>(victim);
    if (member) {
      Log(absl::StrCat("heal: node ", victim, " is still a member (its removal did not happen)"));
      continue;
    }
    cluster_->Kill(victim);
    members_.erase(victim);
    paused_.erase(victim);
    std::string spare_note = "no spare left";
    if (cluster_->addresses().size() >= static_cast<size_t>(next_spare_)) {
      const int spare = next_spare_++;
      absl::Status started = cluster_->Start(spare);
      if (started.ok()) members_.insert(spare);
      spare_note = started.ok() ? absl::StrCat("node ", spare, " joins")
                                : absl::StrCat("spare ", spare, ": ", started.ToString());
    }
    Log(absl::StrCat("heal: node ", victim, " was removed after all; killed it; ", spare_note));
  }
  pending_removal_.clear();
}

absl::Status Nemesis::Heal(absl::Duration timeout) {
  for (int id : paused_) {
    auto it = pids_.find(id);
    if (it != pids_.end()) kill(it->second, SIGCONT);
  }
  paused_.clear();
  if (absl::Status s = FreeDisks(); !s.ok()) return s;
  for (int id : killed_) {
    if (absl::Status s = cluster_->Start(id); !s.ok()) return s;
  }
  killed_.clear();
  lossy_.clear();
  blocked_.clear();
  if (links_ != nullptr) {
    if (absl::Status s = links_->HealAll(); !s.ok()) {
      return absl::InternalError(absl::StrCat("heal: ", s.message()));
    }
  }
  if (absl::Status s = SettleDisks(timeout); !s.ok()) return s;
  absl::Status last;
  std::set<int> left = members_;
  const bool ok = testing::Cluster::WaitFor(
      [&] {
        for (auto it = left.begin(); it != left.end();) {
          absl::Status s = SetFaults(*it, {}, {});
          if (s.ok()) {
            it = left.erase(it);
          } else {
            last = s;
            ++it;
          }
        }
        return left.empty();
      },
      timeout, absl::Milliseconds(50));
  if (!ok) {
    return absl::UnavailableError(absl::StrCat("heal: nodes ", absl::StrJoin(left, ","),
                                               " did not clear their faults: ", last.ToString()));
  }
  SettleRemovals();
  return absl::OkStatus();
}

}  // namespace raftkv::jepsen
