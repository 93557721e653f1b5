#include "raft/membership.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"

namespace raftkv::raft {
namespace {

bool Contains(const google::protobuf::RepeatedField<uint64_t>& ids,
              uint64_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

void Insert(google::protobuf::RepeatedField<uint64_t>* ids, uint64_t id) {
  ids->Add(id);
  std::sort(ids->begin(), ids->end());
}

void Erase(google::protobuf::RepeatedField<uint64_t>* ids, uint64_t id) {
  auto it = std::remove(ids->begin(), ids->end(), id);
  ids->Truncate(static_cast<int>(it - ids->begin()));
}

}  // namespace

bool IsVoter(const raftpb::ConfState& cs, uint64_t id) {
  return Contains(cs.voters(), id);
}

bool IsLearner(const raftpb::ConfState& cs, uint64_t id) {
  return Contains(cs.learners(), id);
}

std::string ConfStateString(const raftpb::ConfState& cs) {
  return absl::StrCat("voters=[", absl::StrJoin(cs.voters(), ","),
                      "] learners=[", absl::StrJoin(cs.learners(), ","), "]");
}

absl::StatusOr<raftpb::ConfState> ApplyConfChange(
    const raftpb::ConfState& cs, const raftpb::ConfChange& cc) {
  const uint64_t id = cc.node_id();
  if (id == 0) return absl::InvalidArgumentError("node id 0 is reserved");
  raftpb::ConfState next = cs;
  switch (cc.type()) {
    case raftpb::CONF_ADD_LEARNER:
      if (IsVoter(cs, id)) {
        return absl::FailedPreconditionError(
            absl::StrCat("node ", id, " is a voter; demotion is not supported"));
      }
      if (IsLearner(cs, id)) {
        return absl::AlreadyExistsError(
            absl::StrCat("node ", id, " is already a learner"));
      }
      Insert(next.mutable_learners(), id);
      break;
    case raftpb::CONF_ADD_VOTER:
      if (IsVoter(cs, id)) {
        return absl::AlreadyExistsError(
            absl::StrCat("node ", id, " is already a voter"));
      }
      Erase(next.mutable_learners(), id);  // promotion, if it was a learner
      Insert(next.mutable_voters(), id);
      break;
    case raftpb::CONF_REMOVE_NODE:
      if (!IsMember(cs, id)) {
        return absl::NotFoundError(absl::StrCat("node ", id, " is not a member"));
      }
      if (IsVoter(cs, id) && cs.voters_size() == 1) {
        return absl::FailedPreconditionError(
            absl::StrCat("node ", id, " is the last voter"));
      }
      Erase(next.mutable_voters(), id);
      Erase(next.mutable_learners(), id);
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown conf change type ", cc.type()));
  }
  return next;
}

absl::StatusOr<raftpb::ConfChange> DecodeConfChange(const raftpb::Entry& e) {
  raftpb::ConfChange cc;
  if (e.type() != raftpb::ENTRY_CONF_CHANGE || !cc.ParseFromString(e.data())) {
    return absl::DataLossError(
        absl::StrCat("entry ", e.index(), " is not a valid conf change"));
  }
  return cc;
}

void ConfigLog::Reset(uint64_t base_index, raftpb::ConfState base) {
  base_index_ = base_index;
  base_ = std::move(base);
  later_.clear();
}

void ConfigLog::Append(uint64_t index, raftpb::ConfState cs) {
  CHECK_GT(index, LatestIndex()) << "configurations out of order";
  later_.emplace_back(index, std::move(cs));
}

void ConfigLog::TruncateFrom(uint64_t index) {
  CHECK_GT(index, base_index_) << "truncating a committed configuration";
  while (!later_.empty() && later_.back().first >= index) later_.pop_back();
}

void ConfigLog::CompactTo(uint64_t index) {
  auto it = later_.begin();
  while (it != later_.end() && it->first <= index) {
    base_index_ = it->first;
    base_ = std::move(it->second);
    ++it;
  }
  later_.erase(later_.begin(), it);
}

const raftpb::ConfState& ConfigLog::Latest() const {
  return later_.empty() ? base_ : later_.back().second;
}

uint64_t ConfigLog::LatestIndex() const {
  return later_.empty() ? base_index_ : later_.back().first;
}

}  // namespace raftkv::raft
