#include "server/stage_trace.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(StageTraceTest, RecordsOnlySampledIndexes) {
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/trace";
  {
    auto t = StageTrace::Open(path, 4);
    ASSERT_TRUE(t.ok()) << t.status();
    (*t)->Record(Stage::kProposed, 3, 100);
    (*t)->Record(Stage::kProposed, 8, 200);
    (*t)->RecordRange(Stage::kApplied, 1, 13);  // 4, 8, 12
    (*t)->RecordRange(Stage::kApplied, 5, 7);   // none
  }
  const auto lines = Lines(path);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "proposed 8 200");
  for (int k = 1; k <= 3; ++k) {
    std::istringstream in(lines[k]);
    std::string stage;
    uint64_t index = 0, ns = 0;
    in >> stage >> index >> ns;
    EXPECT_EQ(stage, "applied");
    EXPECT_EQ(index, 4u * k);
    EXPECT_GT(ns, 0u);
  }
}

TEST(StageTraceTest, RefusesBadArguments) {
  EXPECT_FALSE(StageTrace::Open(std::string(getenv("TEST_TMPDIR")) + "/t", 0).ok());
  EXPECT_FALSE(StageTrace::Open("/nonexistent-dir/trace", 1).ok());
}

}  // namespace
}  // namespace raftkv::server
