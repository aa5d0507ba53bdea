// tools/transfer_progress.hpp: when progress is reported, and how it reads.
#include "tools/transfer_progress.hpp"

#include <gtest/gtest.h>

namespace kadnet::tools {
namespace {

using namespace std::chrono_literals;
using clock = transfer_meter::clock;

TEST(TransferMeter, ALogGetsALineAtEachFurtherTenthAndAtTheEnd) {
  const clock::time_point t0{};
  transfer_meter m(1000, t0);
  std::vector<std::uint64_t> reported;
  for (std::uint64_t done = 0; done <= 1000; done += 25)
    if (m.update(done, false, t0 + 1ms * done)) reported.push_back(done);
  EXPECT_EQ(reported, (std::vector<std::uint64_t>{0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000}));
  EXPECT_FALSE(m.update(1000, false, t0 + 2s));  // the end is told once
}

TEST(TransferMeter, ATerminalBarIsRedrawnAtMostEvery100Milliseconds) {
  const clock::time_point t0{};
  transfer_meter m(1000, t0);
  EXPECT_TRUE(m.update(0, true, t0));
  EXPECT_FALSE(m.update(10, true, t0 + 50ms));
  EXPECT_TRUE(m.update(20, true, t0 + 100ms));
  EXPECT_FALSE(m.update(30, true, t0 + 199ms));
  EXPECT_TRUE(m.update(1000, true, t0 + 150ms));  // the end, whenever it comes
}

TEST(TransferMeter, RateCountsOnlyTheBytesThisTransferMoved) {
  const clock::time_point t0{};
  transfer_meter m(10'000'000, t0);
  m.update(4'000'000, false, t0);  // resumed from here
  m.update(10'000'000, false, t0 + 2s);
  EXPECT_DOUBLE_EQ(m.mb_per_s(), 3.0);
  EXPECT_DOUBLE_EQ(m.percent(), 100.0);
  EXPECT_EQ(m.bar("f.bin"), "[##############################] 100.0 %      3.0 MB/s  f.bin");
  EXPECT_EQ(m.line("sending", "f.bin"), "sending f.bin: 100 % (10000000 of 10000000 bytes), 3.0 MB/s");
}

TEST(TransferMeter, AnEmptyFileIsDoneAtOnce) {
  transfer_meter m(0, clock::time_point{});
  EXPECT_TRUE(m.update(0, false, clock::time_point{}));
  EXPECT_DOUBLE_EQ(m.percent(), 100.0);
  EXPECT_EQ(m.mb_per_s(), 0.0);
}

}  // namespace
}  // namespace kadnet::tools
