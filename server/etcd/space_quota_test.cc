#include "server/etcd/space_quota.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/etcd/errors.h"

namespace raftkv::server::etcd {
namespace {

struct Fake {
  std::atomic<uint64_t> size{0};
  std::atomic<bool> active{false};
  std::atomic<int> raises{0};
};


TEST(SpaceQuotaTest, AdmitRefusesPastTheQuotaAndRaisesOncePerInterval) {
  Fake f;
  SpaceQuotaOptions o;
  o.quota_bytes = 1000;
  o.check_interval = absl::Hours(1);
  SpaceQuota q(o, [&f] { return f.size.load(); }, [&f] { return f.active.load(); },
               [&f] { f.raises++; });
  f.size = 900;
  EXPECT_TRUE(q.Admit(100).ok());  // exactly at the quota
  EXPECT_FALSE(q.Check());
  EXPECT_TRUE(IsEtcdError(q.Admit(101), Error::kNoSpace));
  EXPECT_EQ(f.raises, 1);
  EXPECT_TRUE(IsEtcdError(q.Admit(101), Error::kNoSpace));
  EXPECT_EQ(f.raises, 1) << "once per interval";
  f.size = 2000;
  EXPECT_TRUE(q.Check());
  EXPECT_EQ(f.raises, 1);
}

TEST(SpaceQuotaTest, NoRaiseWhileTheAlarmIsActive) {
  Fake f;
  SpaceQuotaOptions o;
  o.quota_bytes = 10;
  o.check_interval = absl::Milliseconds(1);
  SpaceQuota q(o, [&f] { return f.size.load(); }, [&f] { return f.active.load(); },
               [&f] { f.raises++; });
  f.size = 11;
  f.active = true;
  EXPECT_TRUE(q.Check());
  EXPECT_TRUE(IsEtcdError(q.Admit(0), Error::kNoSpace));
  EXPECT_EQ(f.raises, 0);
}

TEST(SpaceQuotaTest, TheThreadRaisesWhenTheDataGrowPastTheQuota) {
  Fake f;
  SpaceQuotaOptions o;
  o.quota_bytes = 100;
  o.check_interval = absl::Milliseconds(5);
  absl::Notification raised;
  SpaceQuota q(o, [&f] { return f.size.load(); }, [&f] { return f.active.load(); },
               [&] {
                 if (f.raises++ == 0) raised.Notify();
                 f.active = true;  // the raise is applied
               });
  q.Start();
  f.size = 101;
  EXPECT_TRUE(raised.WaitForNotificationWithTimeout(absl::Seconds(10)));
  q.Stop();
  EXPECT_EQ(f.raises, 1);
}

TEST(SpaceQuotaTest, OptionsAreChecked) {
  SpaceQuotaOptions o;
  EXPECT_EQ(o.quota_bytes, uint64_t{2} << 30);
  EXPECT_TRUE(o.Validate().ok());
  o.quota_bytes = 0;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o = SpaceQuotaOptions();
  o.check_interval = absl::ZeroDuration();
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace raftkv::server::etcd
