#include "server/incarnation_recorder.h"

#include <vector>

#include "glog/logging.h"

namespace raftkv::server {

IncarnationRecorder::IncarnationRecorder(uint64_t self_id, uint64_t self_incarnation, Node* node,
                                         const KvStateMachine* sm,
                                         const PeerIncarnations* peers, absl::Duration interval)
    : self_id_(self_id),
      self_incarnation_(self_incarnation),
      node_(node),
      sm_(sm),
      peers_(peers),
      interval_(interval) {}

IncarnationRecorder::~IncarnationRecorder() { Stop(); }

void IncarnationRecorder::Start() {
  thread_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(interval_)) RecordMissing();
  });
}

void IncarnationRecorder::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void IncarnationRecorder::RecordMissing() {
  if (!node_->is_leader()) return;
  // Members as of the applied state: the record is proposed at that
  // membership, and replicas that applied another one ignore it.
  const auto [conf_index, conf] = sm_->Membership();
  std::vector<uint64_t> members(conf.voters().begin(), conf.voters().end());
  members.insert(members.end(), conf.learners().begin(), conf.learners().end());
  const std::map<uint64_t, uint64_t> recorded = sm_->Incarnations();
  std::map<uint64_t, uint64_t> heard = peers_->Known();
  heard[self_id_] = self_incarnation_;
  const absl::Time now = absl::Now();
  for (uint64_t id : members) {
    if (recorded.count(id) > 0) continue;
    auto h = heard.find(id);
    if (h == heard.end()) continue;  // not heard from yet
    {
      absl::MutexLock l(&mu_);
      auto p = pending_.find(id);
      if (p != pending_.end() && p->second > now) continue;
      pending_[id] = now + absl::Seconds(5);  // retried after a lost proposal
    }
    VLOG(1) << "recording node " << id << "'s incarnation " << h->second;
    node_->Propose(KvStateMachine::IncarnationCommand(id, h->second, conf_index),
                   now + absl::Seconds(5),
                   [this, id](absl::StatusOr<kvpb::WriteResult> r) {
                     absl::MutexLock l(&mu_);
                     if (r.ok()) pending_.erase(id);
                   });
  }
}

}  // namespace raftkv::server
