#include "raft/test_cluster.h"

#include "glog/logging.h"

namespace raftkv::raft {

TestCluster::TestCluster(int n, std::function<void(Config*)> tweak)
    : tweak_(std::move(tweak)) {
  raftpb::ConfState cs;
  for (int i = 1; i <= n; ++i) cs.add_voters(i);
  for (int i = 1; i <= n; ++i) {
    auto node = std::make_unique<TestNode>();
    node->id = i;
    node->log = std::make_unique<MemoryLog>(cs);
    nodes_[i] = std::move(node);
    Boot(*nodes_[i]);
  }
}

void TestCluster::AddEmptyNode(uint64_t id) {
  auto node = std::make_unique<TestNode>();
  node->id = id;
  node->log = std::make_unique<MemoryLog>();
  nodes_[id] = std::move(node);
  Boot(*nodes_[id]);
}

void TestCluster::Boot(TestNode& n) {
  n.config = Config();
  n.config.id = n.id;
  n.config.seed = n.id;
  n.config.applied = n.applied.empty() ? 0 : n.applied.back().index();
  // Entries applied before a snapshot install are not in `applied`; a
  // restarted node re-applies from its snapshot index, like the server.
  if (n.config.applied < n.log->FirstIndex() - 1) n.config.applied = n.log->FirstIndex() - 1;
  if (tweak_) tweak_(&n.config);
  auto r = Raft::Create(n.config, n.log.get());
  CHECK(r.ok()) << r.status();
  n.raft = std::move(*r);
  n.down = false;
}

std::vector<uint64_t> TestCluster::ids() const {
  std::vector<uint64_t> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

void TestCluster::DrainReady(TestNode& n) {
  while (n.raft->HasReady()) {
    Ready rd = n.raft->GetReady();
    for (auto& m : rd.messages) pending_.push_back(std::move(m));
    if (rd.snapshot) CHECK(n.log->ApplySnapshot(*rd.snapshot).ok());
    CHECK(n.log->Append(rd.entries).ok());
    if (rd.hard_state) n.log->SetHardState(*rd.hard_state);
    for (auto& m : rd.persisted_messages) pending_.push_back(std::move(m));
    for (auto& e : rd.committed_entries) n.applied.push_back(e);
    for (auto& r : rd.read_states) n.reads.push_back(r);
    for (auto& c : rd.dropped_reads) n.dropped_reads.push_back(c);
    n.raft->Advance(rd);
  }
}

void TestCluster::ProcessReadies() {
  for (auto& [id, n] : nodes_) {
    if (!n->down) DrainReady(*n);
  }
}

void TestCluster::Stabilize(int max_rounds) {
  ProcessReadies();
  for (int round = 0; round < max_rounds && !pending_.empty(); ++round) {
    std::deque<raftpb::Message> batch;
    batch.swap(pending_);
    for (auto& m : batch) {
      auto it = nodes_.find(m.to());
      if (it == nodes_.end() || it->second->down) continue;
      if (cut_.count({m.from(), m.to()})) continue;
      (void)it->second->raft->Step(m);
      DrainReady(*it->second);
    }
    ProcessReadies();
  }
}

void TestCluster::TickAll() {
  for (auto& [id, n] : nodes_) {
    if (!n->down) n->raft->Tick();
  }
  ProcessReadies();
}

uint64_t TestCluster::ElectLeader(int max_ticks) {
  for (int t = 0; t < max_ticks; ++t) {
    Stabilize();
    if (uint64_t l = Leader(); l != 0) return l;
    TickAll();
  }
  Stabilize();
  return Leader();
}

void TestCluster::Campaign(uint64_t id) {
  nodes_.at(id)->raft->Campaign();
  Stabilize();
}

bool TestCluster::ElectWithoutAppends(uint64_t id) {
  nodes_.at(id)->raft->Campaign();
  for (int i = 0; i < 10 && nodes_.at(id)->raft->role() != Role::kLeader; ++i) {
    ProcessReadies();
    std::deque<raftpb::Message> batch;
    batch.swap(pending_);
    for (auto& m : batch) {
      auto it = nodes_.find(m.to());
      if (it == nodes_.end() || it->second->down || m.type() == raftpb::MSG_APPEND) continue;
      (void)it->second->raft->Step(m);
    }
  }
  ProcessReadies();
  pending_.clear();
  return nodes_.at(id)->raft->role() == Role::kLeader;
}

uint64_t TestCluster::Leader() const {
  uint64_t leader = 0, term = 0;
  for (const auto& [id, n] : nodes_) {
    if (!n->down && n->raft->role() == Role::kLeader && n->raft->term() >= term) {
      leader = id;
      term = n->raft->term();
    }
  }
  return leader;
}

void TestCluster::Isolate(uint64_t id) {
  for (const auto& [other, n] : nodes_) {
    if (other == id) continue;
    Cut(id, other);
    Cut(other, id);
  }
}

void TestCluster::Crash(uint64_t id) {
  TestNode& n = *nodes_.at(id);
  n.down = true;
  n.raft.reset();
}

void TestCluster::Restart(uint64_t id) { Boot(*nodes_.at(id)); }

bool TestCluster::Propose(const std::string& data) {
  uint64_t l = Leader();
  if (l == 0) return false;
  return nodes_.at(l)->raft->Propose(data).ok();
}

}  // namespace raftkv::raft
