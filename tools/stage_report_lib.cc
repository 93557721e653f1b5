#include "tools/stage_report_lib.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "server/stage_trace.h"

namespace raftkv::tools {
namespace {

// Every stage after "arrived" (the zero point), in the order a write passes them.
std::vector<server::Stage> ReportedStages() {
  std::vector<server::Stage> out;
  for (int s = static_cast<int>(server::kFirstStage) + 1;
       s <= static_cast<int>(server::kLastStage); ++s) {
    out.push_back(static_cast<server::Stage>(s));
  }
  return out;
}

// index -> stage -> first time
using Records = std::map<uint64_t, absl::flat_hash_map<std::string, uint64_t>>;

absl::StatusOr<Records> Parse(const std::string& text, size_t member) {
  Records out;
  std::istringstream in(text);
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.empty()) continue;
    std::istringstream l(line);
    std::string stage;
    uint64_t index = 0, ns = 0;
    if (!(l >> stage >> index >> ns)) {
      return absl::InvalidArgumentError(
          absl::StrCat("member ", member + 1, " line ", line_no, ": not \"stage index ns\""));
    }
    out[index].try_emplace(stage, ns);  // the first record of a stage counts
  }
  return out;
}

double Percentile(std::vector<double>* v, double q) {
  std::sort(v->begin(), v->end());
  return (*v)[std::min(v->size() - 1, static_cast<size_t>(q * v->size()))];
}

}  // namespace

absl::StatusOr<std::vector<StageRow>> BuildStageReport(const std::vector<std::string>& members) {
  std::vector<Records> recs;
  for (size_t m = 0; m < members.size(); ++m) {
    auto r = Parse(members[m], m);
    if (!r.ok()) return r.status();
    recs.push_back(std::move(*r));
  }
  size_t leader = 0, most = 0;
  for (size_t m = 0; m < recs.size(); ++m) {
    size_t n = 0;
    for (const auto& [index, stages] : recs[m]) n += stages.contains("proposed");
    if (n > most) most = n, leader = m;
  }
  std::map<std::string, std::vector<double>> after;  // stage -> us after arrival
  for (const auto& [index, stages] : recs.empty() ? Records() : recs[leader]) {
    auto arrived = stages.find("arrived");
    if (arrived == stages.end() || !stages.contains("answered")) continue;
    const uint64_t t0 = arrived->second;
    auto add = [&](const std::string& stage, uint64_t t) {
      after[stage].push_back((static_cast<double>(t) - static_cast<double>(t0)) / 1000);
    };
    for (server::Stage s : ReportedStages()) {
      if (server::IsFollowerStage(s)) continue;
      if (auto it = stages.find(server::StageName(s)); it != stages.end()) add(it->first, it->second);
    }
    const absl::flat_hash_map<std::string, uint64_t>* first = nullptr;
    for (size_t m = 0; m < recs.size(); ++m) {
      if (m == leader) continue;
      auto it = recs[m].find(index);
      if (it == recs[m].end() || !it->second.contains("follower_acked")) continue;
      if (first == nullptr || it->second.at("follower_acked") < first->at("follower_acked")) {
        first = &it->second;
      }
    }
    if (first != nullptr) {
      for (server::Stage s : ReportedStages()) {
        if (!server::IsFollowerStage(s)) continue;
        if (auto it = first->find(server::StageName(s)); it != first->end()) {
          add(it->first, it->second);
        }
      }
    }
  }
  if (after["answered"].empty()) {
    return absl::InvalidArgumentError(
        "no write has both \"arrived\" and \"answered\" on one member: were the traces "
        "taken on a loaded cluster's members, with the same --stage_trace_every?");
  }
  std::vector<StageRow> rows;
  for (server::Stage s : ReportedStages()) {
    auto& v = after[server::StageName(s)];
    if (v.empty()) continue;
    StageRow r;
    r.stage = server::StageName(s);
    r.samples = v.size();
    r.p10_us = Percentile(&v, 0.1);
    r.p50_us = Percentile(&v, 0.5);
    r.p90_us = Percentile(&v, 0.9);
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace raftkv::tools
