#include "server/etcd/members.h"

#include <deque>

#include "gtest/gtest.h"
#include "server/etcd/errors.h"

namespace raftkv::server::etcd {
namespace {

TEST(MembersTest, OneURLForPeersAndClients) {
  EXPECT_EQ(MemberURL("127.0.0.1:7001", false), "http://127.0.0.1:7001");
  EXPECT_EQ(MemberURL("db-1.example:7001", true), "https://db-1.example:7001");
}

TEST(MembersTest, PeerURLsGiveTheAddress) {
  std::string why;
  auto one = [&](const std::string& url, bool tls) {
    return AddressOfPeerURLs({url}, tls, &why);
  };
  EXPECT_EQ(*one("http://127.0.0.1:7004", false), "127.0.0.1:7004");
  EXPECT_EQ(*one("http://127.0.0.1:7004/", false), "127.0.0.1:7004") << "an empty path";
  EXPECT_EQ(*one("https://db-4.example:443", true), "db-4.example:443");
  EXPECT_EQ(*one("http://[::1]:7004", false), "[::1]:7004");
  EXPECT_EQ(*one("http://localhost:65535", false), "localhost:65535");
}

TEST(MembersTest, BadPeerURLsAreEtcdsErrorWithAReason) {
  struct Case {
    std::vector<std::string> urls;
    bool tls;
    std::string reason;  // a part of *why
  };
  const Case cases[] = {
      {{}, false, "no peer URL"},
      {{"http://127.0.0.1:7004", "http://127.0.0.1:7005"}, false, "2 peer URLs"},
      {{"https://127.0.0.1:7004"}, false, "must start with http://"},
      {{"http://127.0.0.1:7004"}, true, "must start with https://"},
      {{"unix://sock:1"}, false, "must start with http://"},
      {{"127.0.0.1:7004"}, false, "must start with http://"},
      {{"http://127.0.0.1"}, false, "HOST:PORT"},
      {{"http://127.0.0.1:"}, false, "HOST:PORT"},
      {{"http://:7004"}, false, "HOST:PORT"},
      {{"http://127.0.0.1:0"}, false, "HOST:PORT"},
      {{"http://127.0.0.1:65536"}, false, "HOST:PORT"},
      {{"http://127.0.0.1:+70"}, false, "HOST:PORT"},
      {{"http://127.0.0.1:7004/path"}, false, "no path"},
      {{"http://127.0.0.1:7004?x=1"}, false, "HOST:PORT"},
      {{"http://127.0.0.1:7004#f"}, false, "HOST:PORT"},
      {{"http://user@127.0.0.1:7004"}, false, "HOST:PORT"},
      {{"http://::1:7004"}, false, "HOST:PORT"},
      {{"http://[]:7004"}, false, "HOST:PORT"},
      {{"http://a b:7004"}, false, "HOST:PORT"},
      {{""}, false, "must start with"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.urls.empty() ? "(none)" : c.urls[0]);
    std::string why;
    auto r = AddressOfPeerURLs(c.urls, c.tls, &why);
    ASSERT_FALSE(r.ok()) << *r;
    EXPECT_TRUE(IsEtcdError(r.status(), Error::kMemberBadURLs)) << r.status();
    EXPECT_NE(why.find(c.reason), std::string::npos) << why;
  }
  // *why is optional.
  EXPECT_FALSE(AddressOfPeerURLs({}, false, nullptr).ok());
}

TEST(MembersTest, NewIdIsNeitherZeroNorTaken) {
  std::deque<uint64_t> draws = {0, 7, 3, 0, 0xfeedface12345678};
  auto draw = [&] {
    uint64_t v = draws.front();
    draws.pop_front();
    return v;
  };
  EXPECT_EQ(NewMemberId({3, 7}, draw), 0xfeedface12345678u);
  EXPECT_TRUE(draws.empty());
  draws = {9};
  EXPECT_EQ(NewMemberId({}, draw), 9u);
}

TEST(MembersTest, ListIsByIdAndNamesOnlyStartedMembers) {
  raftpb::ConfState conf;
  conf.add_voters(2);
  conf.add_learners(0xfeedface12345678);
  conf.add_voters(1);
  const std::map<uint64_t, std::string> addresses = {
      {1, "127.0.0.1:7001"}, {0xfeedface12345678, "127.0.0.1:7004"}, {99, "127.0.0.1:7099"}};
  auto members = ListMembers(conf, addresses, /*started=*/{1, 2}, /*tls=*/false);
  ASSERT_EQ(members.size(), 3u);

  EXPECT_EQ(members[0].id(), 1u);
  EXPECT_EQ(members[0].name(), "node-1");
  ASSERT_EQ(members[0].peerurls_size(), 1);
  EXPECT_EQ(members[0].peerurls(0), "http://127.0.0.1:7001");
  ASSERT_EQ(members[0].clienturls_size(), 1);
  EXPECT_EQ(members[0].clienturls(0), "http://127.0.0.1:7001");
  EXPECT_FALSE(members[0].islearner());

  // Started, but its address unknown here: named, no URLs.
  EXPECT_EQ(members[1].id(), 2u);
  EXPECT_EQ(members[1].name(), "node-2");
  EXPECT_EQ(members[1].peerurls_size(), 0);
  EXPECT_EQ(members[1].clienturls_size(), 0);

  // Added, never started: as etcd shows it, no name and no client URL.
  EXPECT_EQ(members[2].id(), 0xfeedface12345678u);
  EXPECT_EQ(members[2].name(), "");
  ASSERT_EQ(members[2].peerurls_size(), 1);
  EXPECT_EQ(members[2].peerurls(0), "http://127.0.0.1:7004");
  EXPECT_EQ(members[2].clienturls_size(), 0);
  EXPECT_TRUE(members[2].islearner());

  auto tls = ListMembers(conf, addresses, {0xfeedface12345678}, /*tls=*/true);
  EXPECT_EQ(tls[2].name(), "node-18369614218089748088");
  EXPECT_EQ(tls[2].clienturls(0), "https://127.0.0.1:7004");
}

raft::Status LeaderStatus(uint64_t leader_match, uint64_t learner_match) {
  raft::Status st;
  st.id = 1;
  st.role = raft::Role::kLeader;
  st.last_index = leader_match + 5;  // not yet persisted on the leader
  st.conf_state.add_voters(1);
  st.conf_state.add_voters(2);
  st.conf_state.add_learners(4);
  st.progress.push_back({1, true, leader_match});
  st.progress.push_back({2, true, leader_match});
  st.progress.push_back({4, false, learner_match});
  return st;
}

TEST(MembersTest, PromotableAsEtcdDecides) {
  EXPECT_TRUE(CheckPromotable(LeaderStatus(100, 90), 4).ok());
  EXPECT_TRUE(CheckPromotable(LeaderStatus(100, 100), 4).ok());
  EXPECT_TRUE(IsEtcdError(CheckPromotable(LeaderStatus(100, 89), 4), Error::kLearnerNotReady));
  EXPECT_TRUE(IsEtcdError(CheckPromotable(LeaderStatus(100, 0), 4), Error::kLearnerNotReady));
  EXPECT_TRUE(IsEtcdError(CheckPromotable(LeaderStatus(100, 100), 2), Error::kMemberNotLearner));
  EXPECT_TRUE(IsEtcdError(CheckPromotable(LeaderStatus(100, 100), 5), Error::kMemberNotFound));

  // A learner the leader has no progress for yet is not ready.
  raft::Status no_progress = LeaderStatus(100, 100);
  no_progress.progress.pop_back();
  EXPECT_TRUE(IsEtcdError(CheckPromotable(no_progress, 4), Error::kLearnerNotReady));

  raft::Status follower = LeaderStatus(100, 100);
  follower.role = raft::Role::kFollower;
  EXPECT_EQ(CheckPromotable(follower, 4).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(MembersTest, PromotionsAreCheckedOnTheLeaderOnly) {
  int proposed = 0;
  ConfChangeFn change = [&](raftpb::ConfChange cc, absl::Time) -> absl::StatusOr<raftpb::ConfState> {
    ++proposed;
    raftpb::ConfState next;
    next.add_voters(cc.node_id());
    return next;
  };
  raft::Status st = LeaderStatus(100, 10);
  ConfChangeFn checked = CheckingPromotions(change, [&] { return st; });
  auto cc = [](raftpb::ConfChangeType t, uint64_t id) {
    raftpb::ConfChange c;
    c.set_type(t);
    c.set_node_id(id);
    return c;
  };
  const absl::Time deadline = absl::InfiniteFuture();

  // A lagging learner, a voter, a stranger: refused, nothing proposed.
  EXPECT_TRUE(IsEtcdError(checked(cc(raftpb::CONF_ADD_VOTER, 4), deadline).status(),
                          Error::kLearnerNotReady));
  EXPECT_TRUE(IsEtcdError(checked(cc(raftpb::CONF_ADD_VOTER, 2), deadline).status(),
                          Error::kMemberNotLearner));
  EXPECT_TRUE(IsEtcdError(checked(cc(raftpb::CONF_ADD_VOTER, 9), deadline).status(),
                          Error::kMemberNotFound));
  EXPECT_EQ(proposed, 0);
  // Other changes are not checked.
  EXPECT_TRUE(checked(cc(raftpb::CONF_ADD_LEARNER, 9), deadline).ok());
  EXPECT_TRUE(checked(cc(raftpb::CONF_REMOVE_NODE, 4), deadline).ok());
  EXPECT_EQ(proposed, 2);
  // Caught up: proposed.
  st = LeaderStatus(100, 95);
  auto r = checked(cc(raftpb::CONF_ADD_VOTER, 4), deadline);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(proposed, 3);
  // Not the leader: the change itself answers (not leader, for forwarding).
  st = LeaderStatus(100, 0);
  st.role = raft::Role::kFollower;
  EXPECT_TRUE(checked(cc(raftpb::CONF_ADD_VOTER, 4), deadline).ok());
  EXPECT_EQ(proposed, 4);
}

}  // namespace
}  // namespace raftkv::server::etcd
