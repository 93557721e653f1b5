// The cut-snapshot fault (nemesis.h): a snapshot transfer cut mid-way on
// purpose, rather than only when a kill happens to land during one.
#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "tests/jepsen/nemesis.h"

namespace raftkv::jepsen {
namespace {

// Writes small values to a few "pad/log-" keys (outside the checked keys)
// from several clients until stopped: pushes the log past the compaction
// threshold quickly without growing the data.
class LogPusher {
 public:
  LogPusher(testing::Cluster* cluster, int leader) {
    for (int t = 0; t < 4; ++t) {
      threads_.emplace_back([this, cluster, leader, t] {
        testing::TestClient c(cluster);
        c.set_preferred(leader);
        for (int n = 0; !stop_.load(); ++n) {
          (void)c.Put(absl::StrCat("pad/log-", t), absl::StrCat(n), absl::Seconds(5));
        }
      });
    }
  }
  ~LogPusher() {
    stop_.store(true);
    for (auto& t : threads_) t.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// The entry of `transfers` that starts with `prefix`, "" if none.
std::string Find(const adminpb::StatusResponse& s, const std::string& prefix) {
  for (const std::string& t : s.snapshot_transfers()) {
    if (absl::StartsWith(t, prefix)) return t;
  }
  return "";
}

// "receiving: 1.5 MB" -> "1.5"
absl::string_view ReceivedMb(absl::string_view state) {
  absl::ConsumePrefix(&state, "receiving: ");
  absl::ConsumeSuffix(&state, " MB");
  return state;
}

}  // namespace

std::string Nemesis::Describe(int id) {
  if (id == 0) return "no leader";
  auto s = cluster_->Status(id);
  if (!s.ok()) return s.status().ToString();
  std::string out = absl::StrCat("node ", id, " ", s->role(), " term ", s->term(), " first ",
                                 s->first_index(), " last ", s->last_index(), " commit ",
                                 s->commit_index(), " applied ", s->applied_index());
  for (const auto& p : s->progress()) {
    absl::StrAppend(&out, ", peer ", p.id(), " ", p.state(), " match ", p.match(), " next ",
                    p.next(), p.recent_active() ? "" : " inactive");
  }
  for (const auto& t : s->snapshot_transfers()) absl::StrAppend(&out, ", ", t);
  return out;
}

std::string Nemesis::CutSnapshot(const Fault& f) {
  const int leader = FindLeader();
  if (leader == 0) return "cut-snapshot: no leader, skipped";
  const int follower = PickNode(f.pick, leader);
  if (!cluster_->running(follower)) return "cut-snapshot: follower not running, skipped";
  // The rest must commit without it (say not two voters and a learner
  // still catching up after a replace), or the log never moves past it.
  auto lst = cluster_->Status(leader);
  if (!lst.ok()) return absl::StrCat("cut-snapshot: ", lst.status().ToString(), ", skipped");
  size_t voters = lst->voters_size(), left = 0;
  for (uint64_t v : lst->voters()) left += v != static_cast<uint64_t>(follower);
  if (left < voters / 2 + 1) {
    return absl::StrCat("cut-snapshot: without node ", follower, " the voters (", voters,
                        ") have no quorum, skipped");
  }
  std::set<int> rest = members_;
  rest.erase(follower);
  std::string what =
      absl::StrCat("cut-snapshot: node ", follower, " cut off ", Partition({{follower}, rest}));

  // 1. While it is cut off, the leader's log moves past it and is compacted.
  // Past what the leader has already sent it, too: with a real cut, the
  // messages sent meanwhile sit in a stalled TCP stream and arrive once it
  // heals, entries and all.
  uint64_t behind = 0, sent = 0, first = 0;
  int sender = 0;
  bool compacted = false;
  {
    LogPusher pusher(cluster_, leader);
    compacted = testing::Cluster::WaitFor(
        [&] {
          auto fs = cluster_->Status(follower);
          if (!fs.ok()) return false;
          behind = fs->last_index();
          sender = FindLeader();
          if (sender == 0 || sender == follower) return false;
          auto ls = cluster_->Status(sender);
          if (!ls.ok()) return false;
          first = ls->first_index();
          sent = behind + 1;
          for (const auto& p : ls->progress()) {
            if (p.id() == static_cast<uint64_t>(follower)) sent = std::max(sent, p.next());
          }
          // It will need an entry the leader no longer has: only a
          // snapshot helps.
          return first > sent;
        },
        absl::Seconds(20), absl::Milliseconds(20));
  }
  if (!compacted) {
    ClearPartitions();
    return absl::StrCat(what, "; the leader did not compact past index ", sent,
                        " within 20 s: nothing cut (", Describe(follower), "; ",
                        Describe(sender), ")");
  }
  absl::StrAppend(&what, "; leader ", sender, " compacted past it (first index ", first,
                  ", its last ", behind, ", next to send ", sent, "); link healed");

  // 2. Let it back and catch the transfer while the follower receives it,
  // once it has received a seeded amount (0, 1 or 2 MB: the runner's data
  // set makes an image of about 4 MB).
  ClearPartitions();
  const double target_mb = static_cast<double>((f.pick >> 24) % 3);
  std::string receiving, sending;
  const bool caught = testing::Cluster::WaitFor(
      [&] {
        auto fs = cluster_->Status(follower);
        if (!fs.ok() || (receiving = Find(*fs, "receiving: ")).empty()) return false;
        double mb = 0;
        if (!absl::SimpleAtod(ReceivedMb(receiving), &mb) || mb < target_mb) return false;
        for (int id : members_) {
          if (id == follower || !cluster_->running(id)) continue;
          auto s = cluster_->Status(id);
          if (!s.ok()) continue;
          sending = Find(*s, absl::StrCat("to ", follower, ":"));
          if (!sending.empty()) {
            sender = id;
            return true;
          }
        }
        return false;
      },
      absl::Seconds(15), absl::Milliseconds(2));
  if (!caught) {
    return absl::StrCat(what, "; no transfer to it caught in progress (", target_mb,
                        " MB received) within 15 s: nothing cut (",
                        Describe(follower), "; ", Describe(sender), ")");
  }

  // 3. Cut it, the way the seed says.
  absl::StrAppend(&what, "; transfer in progress (node ", follower, " ", receiving, "; node ",
                  sender, " ", sending, "): ");
  switch ((f.pick >> 20) % 3) {
    case 0:
      absl::StrAppend(&what, "link cut again ", Partition({{follower}, rest}));
      if (links_ == nullptr) {
        absl::StrAppend(&what, " (fault layer: the stream runs on and the image is refused at "
                               "its end: not counted as a mid-way cut)");
        return what;
      }
      break;
    case 1:
      cluster_->Kill(follower);
      killed_.insert(follower);
      absl::StrAppend(&what, "SIGKILL receiver ", follower);
      break;
    default:
      cluster_->Kill(sender);
      killed_.insert(sender);
      absl::StrAppend(&what, "SIGKILL sender ", sender);
      break;
  }
  snapshot_cuts_.fetch_add(1);
  return absl::StrCat(what, ": cut mid-way");
}

}  // namespace raftkv::jepsen
