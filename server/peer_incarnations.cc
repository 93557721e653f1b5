#include "server/peer_incarnations.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace raftkv::server {

PeerIncarnations::PeerIncarnations(storage::LogStore* store, ClusterView view)
    : store_(store), view_(std::move(view)), known_(store->PeerIncarnations()) {}

absl::Status PeerIncarnations::Admit(uint64_t peer, uint64_t incarnation) {
  if (incarnation == 0) {
    refused_.fetch_add(1);
    return absl::InvalidArgumentError(absl::StrCat("node ", peer, " sent no incarnation"));
  }
  if (view_.records) {
    const std::map<uint64_t, uint64_t> replicated = view_.records();
    if (auto r = replicated.find(peer); r != replicated.end()) {
      if (r->second == incarnation) return absl::OkStatus();
      absl::MutexLock l(&mu_);
      return Refuse(peer, incarnation, r->second);
    }
  }
  absl::MutexLock l(&mu_);
  auto it = known_.find(peer);
  if (it != known_.end()) {
    if (it->second == incarnation) return absl::OkStatus();
    return Refuse(peer, incarnation, it->second);
  }
  if (view_.is_member && !view_.is_member(peer)) return absl::OkStatus();
  // Durable before any of its messages is delivered.
  if (absl::Status s = store_->RecordPeerIncarnation(peer, incarnation); !s.ok()) return s;
  known_[peer] = incarnation;
  version_.fetch_add(1);
  LOG(INFO) << "node " << peer << " is incarnation " << incarnation;
  return absl::OkStatus();
}

absl::Status PeerIncarnations::Refuse(uint64_t peer, uint64_t incarnation, uint64_t known) {
  refused_.fetch_add(1);
  const absl::Time now = absl::Now();
  if (now - last_warning_ >= absl::Seconds(10)) {
    last_warning_ = now;
    LOG(ERROR) << "refusing node " << peer << ": it came back as incarnation " << incarnation
               << " but this cluster knows it as incarnation " << known
               << "; it lost its data dir and must not vote or acknowledge. Remove it (kvctl "
               << "member remove " << peer << ") and add a fresh node with --join";
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "node ", peer, " is known to this cluster as incarnation ", known, ", not ", incarnation,
      ": it lost its data and may not take part. Remove it (kvctl member remove ", peer,
      ") and add a fresh node with --join"));
}

absl::Status PeerIncarnations::Reconcile() {
  if (!view_.is_member) return absl::OkStatus();
  absl::MutexLock l(&mu_);
  for (auto it = known_.begin(); it != known_.end();) {
    if (view_.is_member(it->first)) {
      ++it;
      continue;
    }
    if (absl::Status s = store_->RecordPeerIncarnation(it->first, 0); !s.ok()) return s;
    LOG(INFO) << "node " << it->first << " is not a member: its incarnation is forgotten";
    it = known_.erase(it);
    version_.fetch_add(1);
  }
  return absl::OkStatus();
}

std::map<uint64_t, uint64_t> PeerIncarnations::Local() const {
  absl::MutexLock l(&mu_);
  return known_;
}

std::map<uint64_t, uint64_t> PeerIncarnations::Known() const {
  std::map<uint64_t, uint64_t> out;
  {
    absl::MutexLock l(&mu_);
    out = known_;
  }
  if (view_.records) {
    for (const auto& [id, inc] : view_.records()) out[id] = inc;
  }
  return out;
}

}  // namespace raftkv::server
