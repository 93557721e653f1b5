#include "server/etcd/auto_compactor.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "server/etcd/errors.h"

namespace raftkv::server::etcd {
namespace {

absl::Duration CompactInterval(absl::Duration period) {
  return std::min(period, absl::Hours(1));
}

}  // namespace

absl::Status AutoCompactionOptions::Validate() const {
  if (mode == Mode::kPeriodic && period <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("periodic auto compaction needs a positive period");
  }
  if (mode == Mode::kRevision && revisions <= 0) {
    return absl::InvalidArgumentError("revision auto compaction needs a positive retention");
  }
  if (revision_check <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("revision_check must be positive");
  }
  return absl::OkStatus();
}

absl::Duration AutoCompactionOptions::step_interval() const {
  return mode == Mode::kRevision ? revision_check : CompactInterval(period) / 10;
}

absl::StatusOr<std::optional<AutoCompactionOptions>> ParseAutoCompaction(
    const std::string& mode, const std::string& retention) {
  AutoCompactionOptions o;
  if (mode == "periodic") {
    o.mode = AutoCompactionOptions::Mode::kPeriodic;
  } else if (mode == "revision") {
    o.mode = AutoCompactionOptions::Mode::kRevision;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--auto_compaction_mode: \"", mode, "\" is neither \"periodic\" nor \"revision\""));
  }
  if (retention.empty() || retention == "0") return std::optional<AutoCompactionOptions>();
  if (o.mode == AutoCompactionOptions::Mode::kRevision) {
    if (!absl::SimpleAtoi(retention, &o.revisions) || o.revisions < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--auto_compaction_retention: \"", retention,
          "\" is not a number of revisions (with --auto_compaction_mode=revision)"));
    }
    if (o.revisions == 0) return std::optional<AutoCompactionOptions>();
    return std::optional<AutoCompactionOptions>(o);
  }
  int64_t hours = 0;
  if (absl::SimpleAtoi(retention, &hours) && hours >= 0) {
    o.period = absl::Hours(hours);  // etcd: a bare number is hours
  } else if (!absl::ParseDuration(retention, &o.period) || o.period < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auto_compaction_retention: \"", retention,
                     "\" is not a duration (e.g. 1h, 30m) or a number of hours"));
  }
  if (o.period == absl::ZeroDuration()) return std::optional<AutoCompactionOptions>();
  return std::optional<AutoCompactionOptions>(o);
}

CompactionPolicy::CompactionPolicy(AutoCompactionOptions options, absl::Time start)
    : options_(std::move(options)), last_success_(start) {}

std::optional<int64_t> CompactionPolicy::Step(absl::Time now, int64_t revision,
                                              int64_t compacted, bool leader) {
  if (options_.mode == AutoCompactionOptions::Mode::kRevision) {
    const int64_t target = revision - options_.revisions;
    if (!leader || target <= 0 || target <= compacted) return std::nullopt;
    return target;
  }
  samples_.emplace_back(now, revision);
  // Keep the newest sample at least `period` old, and everything after it.
  while (samples_.size() > 1 && samples_[1].first <= now - options_.period) samples_.pop_front();
  const absl::Duration wait = first_done_ ? CompactInterval(options_.period) : options_.period;
  if (!leader || now - last_success_ < wait) return std::nullopt;
  if (samples_.front().first > now - options_.period) return std::nullopt;  // none old enough
  const int64_t target = samples_.front().second;
  if (target <= 0 || target <= compacted) return std::nullopt;
  return target;
}

void CompactionPolicy::Done(absl::Time now, int64_t /*revision*/, bool ok) {
  if (!ok) return;
  last_success_ = now;
  first_done_ = true;
}

AutoCompactor::AutoCompactor(AutoCompactionOptions options, Hooks hooks)
    : options_(std::move(options)), hooks_(std::move(hooks)) {
  thread_ = std::thread([this] { Run(); });
}

AutoCompactor::~AutoCompactor() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void AutoCompactor::Run() {
  CompactionPolicy policy(options_, absl::Now());
  const absl::Duration interval = options_.step_interval();
  while (true) {
    {
      absl::MutexLock l(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval)) return;
    }
    const absl::Time now = absl::Now();
    std::optional<int64_t> target = policy.Step(now, hooks_.revision(),
                                                hooks_.compact_revision(), hooks_.is_leader());
    if (!target.has_value()) continue;
    absl::Status s = hooks_.compact(*target);
    // Compacted already (by a client, or a leader before us): nothing lost.
    const bool ok = s.ok() || IsEtcdError(s, Error::kCompacted);
    if (ok) {
      LOG(INFO) << "auto compaction: compacted the history to revision " << *target;
    } else {
      LOG(WARNING) << "auto compaction to revision " << *target << " failed: " << s
                   << " (retried at the next step)";
    }
    policy.Done(now, *target, ok);
  }
}

}  // namespace raftkv::server::etcd
