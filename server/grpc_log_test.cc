#include "server/grpc_log.h"

#include "absl/time/clock.h"
#include "grpc/grpc.h"
#include "grpc/support/log.h"
#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

// gRPC decides what it logs at init; the server has initialized it by then.
class GrpcLogTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { grpc_init(); }
};

TEST_F(GrpcLogTest, PassesABurstPerPeriodAndCountsTheRest) {
  RouteGrpcLogsToGlog(/*burst=*/5, /*period=*/absl::Hours(1));
  const uint64_t before = GrpcLogLinesDropped();
  for (int i = 0; i < 100; ++i) gpr_log(GPR_ERROR, "Handshake failed %d", i);
  EXPECT_EQ(GrpcLogLinesDropped() - before, 95u);
}

TEST_F(GrpcLogTest, ANewPeriodPassesAgain) {
  RouteGrpcLogsToGlog(/*burst=*/1, /*period=*/absl::Milliseconds(50));
  const uint64_t before = GrpcLogLinesDropped();
  gpr_log(GPR_ERROR, "first");
  gpr_log(GPR_ERROR, "dropped");
  EXPECT_EQ(GrpcLogLinesDropped() - before, 1u);
  absl::SleepFor(absl::Milliseconds(60));  // the period itself is what is tested
  gpr_log(GPR_ERROR, "passes");
  EXPECT_EQ(GrpcLogLinesDropped() - before, 1u);
}

}  // namespace
}  // namespace raftkv::server
