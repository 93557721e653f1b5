#include "server/etcd/members.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "raft/membership.h"
#include "server/etcd/errors.h"

namespace raftkv::server::etcd {
namespace {

absl::Status BadURLs(std::string* why, std::string reason) {
  if (why != nullptr) *why = std::move(reason);
  return EtcdError(Error::kMemberBadURLs);
}

// HOST:PORT (HOST may be a bracketed IPv6 literal), port in 1..65535.
bool ValidHostPort(absl::string_view hp) {
  const size_t colon = hp.rfind(':');
  if (colon == absl::string_view::npos || colon == 0 || colon + 1 == hp.size()) return false;
  const absl::string_view host = hp.substr(0, colon), port = hp.substr(colon + 1);
  uint32_t p = 0;
  if (port.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(port, &p) || p == 0 || p > 65535) {
    return false;
  }
  if (host.front() == '[') return host.size() > 2 && host.back() == ']';
  // An unbracketed host has no ':' (an IPv6 literal needs brackets in a URL).
  for (char c : host) {
    if (c == ':' || c == '[' || c == ']' || absl::ascii_isspace(static_cast<unsigned char>(c)) ||
        absl::ascii_iscntrl(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string MemberURL(const std::string& address, bool tls) {
  return absl::StrCat(tls ? "https://" : "http://", address);
}

absl::StatusOr<std::string> AddressOfPeerURLs(const std::vector<std::string>& urls, bool tls,
                                              std::string* why) {
  if (urls.empty()) return BadURLs(why, "no peer URL given");
  if (urls.size() > 1) {
    return BadURLs(why, absl::StrCat(urls.size(), " peer URLs given; raftkv keeps one address "
                                     "per member"));
  }
  const std::string& url = urls[0];
  const absl::string_view want = tls ? "https://" : "http://";
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, want)) {
    return BadURLs(why, absl::StrCat("peer URL \"", absl::CHexEscape(url), "\" must start with ",
                                     want, tls ? " (this cluster's port takes TLS)"
                                               : " (this cluster's port takes no TLS)"));
  }
  // An empty path ("/") is what URL parsers print for none; accept it.
  absl::ConsumeSuffix(&rest, "/");
  if (rest.find_first_of("/?#@") != absl::string_view::npos || !ValidHostPort(rest)) {
    return BadURLs(why, absl::StrCat("peer URL \"", absl::CHexEscape(url),
                                     "\" is not ", want, "HOST:PORT (port 1-65535, no path)"));
  }
  return std::string(rest);
}

uint64_t NewMemberId(const std::set<uint64_t>& taken, const std::function<uint64_t()>& draw) {
  while (true) {
    const uint64_t id = draw();
    if (id != 0 && taken.count(id) == 0) return id;
  }
}

std::string MemberName(uint64_t id) { return absl::StrCat("node-", id); }

std::vector<etcdserverpb::Member> ListMembers(const raftpb::ConfState& conf,
                                              const std::map<uint64_t, std::string>& addresses,
                                              const std::set<uint64_t>& started, bool tls) {
  std::vector<etcdserverpb::Member> out;
  auto add = [&](uint64_t id, bool learner) {
    etcdserverpb::Member m;
    m.set_id(id);
    m.set_islearner(learner);
    auto it = addresses.find(id);
    const bool has_address = it != addresses.end() && !it->second.empty();
    if (has_address) m.add_peerurls(MemberURL(it->second, tls));
    if (started.count(id) > 0) {
      m.set_name(MemberName(id));
      if (has_address) m.add_clienturls(MemberURL(it->second, tls));
    }
    out.push_back(std::move(m));
  };
  for (uint64_t id : conf.voters()) add(id, false);
  for (uint64_t id : conf.learners()) add(id, true);
  std::sort(out.begin(), out.end(),
            [](const etcdserverpb::Member& a, const etcdserverpb::Member& b) {
              return a.id() < b.id();
            });
  return out;
}

absl::Status CheckPromotable(const raft::Status& leader, uint64_t id) {
  if (leader.role != raft::Role::kLeader) {
    return absl::FailedPreconditionError("readiness of a learner is known to the leader only");
  }
  if (raft::IsVoter(leader.conf_state, id)) return EtcdError(Error::kMemberNotLearner);
  if (!raft::IsLearner(leader.conf_state, id)) return EtcdError(Error::kMemberNotFound);
  uint64_t leader_match = leader.last_index;
  uint64_t learner_match = 0;
  for (const raft::PeerStatus& p : leader.progress) {
    if (p.id == leader.id && p.match != 0) leader_match = p.match;  // its persisted log
    if (p.id == id) learner_match = p.match;
  }
  // etcd's rule (server.go isLearnerReady): match >= 0.9 * the leader's.
  if (static_cast<double>(learner_match) < static_cast<double>(leader_match) * 0.9) {
    return EtcdError(Error::kLearnerNotReady);
  }
  return absl::OkStatus();
}

ConfChangeFn CheckingPromotions(ConfChangeFn change, std::function<raft::Status()> status) {
  return [change = std::move(change), status = std::move(status)](
             raftpb::ConfChange cc, absl::Time deadline) -> absl::StatusOr<raftpb::ConfState> {
    if (cc.type() == raftpb::CONF_ADD_VOTER) {
      const raft::Status st = status();
      if (st.role == raft::Role::kLeader) {
        if (absl::Status ready = CheckPromotable(st, cc.node_id()); !ready.ok()) return ready;
      }
    }
    return change(std::move(cc), deadline);
  };
}

}  // namespace raftkv::server::etcd
