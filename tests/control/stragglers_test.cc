// The straggler rule (launcher/coordinator/stragglers.h): a rank is named when its median compute
// time over a full window is above factor x the median rank's and at least 1 ms above it; ranks
// without a full window are neither judged nor counted; the job status and the text carry it.
#include <gtest/gtest.h>

#include "launcher/coordinator/status_format.h"
#include "launcher/coordinator/stragglers.h"

namespace lockstep {
namespace {

proto::RankStatus rank_with(int rank, double compute_s, int window_steps) {
  proto::RankStatus r;
  r.set_rank(rank);
  r.set_host("h" + std::to_string(rank));
  r.mutable_metrics()->set_compute_median_s(compute_s);
  r.mutable_metrics()->set_comm_exposed_median_s(0.5 * compute_s);
  r.mutable_metrics()->set_window_steps(window_steps);
  return r;
}

std::vector<const proto::RankStatus*> pointers(const std::vector<proto::RankStatus>& v) {
  std::vector<const proto::RankStatus*> out;
  for (const auto& r : v) out.push_back(&r);
  return out;
}

TEST(Stragglers, NamesTheRanksAboveFactorTimesTheMedian) {
  // 8 ranks at 10 ms + rank/1000 ms; rank 5 at 3x, rank 2 at 1.4x (under the factor), rank 6 at 2x.
  std::vector<proto::RankStatus> v;
  for (int r = 0; r < 8; ++r) v.push_back(rank_with(r, 0.010 + r * 1e-6, 20));
  v[5] = rank_with(5, 0.030, 20);
  v[2] = rank_with(2, 0.014, 20);
  v[6] = rank_with(6, 0.020, 20);
  const StragglerRule rule{.factor = 1.5, .window_steps = 20};
  // The median of 8 medians is the lower middle one, the 4th smallest: ranks 0,1,3 then 4 (10.004 ms).
  const double median = 0.010 + 4 * 1e-6;
  const auto s = find_stragglers(pointers(v), rule);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].rank(), 5);  // slowest first
  EXPECT_EQ(s[1].rank(), 6);
  EXPECT_DOUBLE_EQ(s[0].median_compute_s(), median);
  EXPECT_DOUBLE_EQ(s[0].compute_s(), 0.030);
  EXPECT_DOUBLE_EQ(s[0].comm_exposed_s(), 0.015);
  EXPECT_EQ(s[0].host(), "h5");
  EXPECT_EQ(s[0].window_steps(), 20);
  // A higher factor keeps only the 3x rank.
  EXPECT_EQ(find_stragglers(pointers(v), {.factor = 2.5, .window_steps = 20}).size(), 1u);
}

TEST(Stragglers, OnlyFullWindowsCountAndTwoAreNeeded) {
  std::vector<proto::RankStatus> v{rank_with(0, 0.010, 20), rank_with(1, 0.050, 19)};
  EXPECT_TRUE(find_stragglers(pointers(v), {.factor = 1.5, .window_steps = 20}).empty());  // one full window
  v[1] = rank_with(1, 0.050, 20);
  const auto s = find_stragglers(pointers(v), {.factor = 1.5, .window_steps = 20});
  ASSERT_EQ(s.size(), 1u);  // two ranks: the reference is the faster one (lower middle)
  EXPECT_EQ(s[0].rank(), 1);
  // A rank resumed a moment ago (short window) is not the reference either: rank 2 at 1 ms is left out.
  v.push_back(rank_with(2, 0.001, 3));
  EXPECT_DOUBLE_EQ(find_stragglers(pointers(v), {.factor = 1.5, .window_steps = 20})[0].median_compute_s(), 0.010);
}

TEST(Stragglers, MicrosecondsAboveTheMedianNameNobody) {
  // 3x the median, but 0.2 ms above it: under the 1 ms floor.
  std::vector<proto::RankStatus> v{rank_with(0, 0.0001, 5), rank_with(1, 0.0001, 5), rank_with(2, 0.0003, 5)};
  EXPECT_TRUE(find_stragglers(pointers(v), {.factor = 1.5, .window_steps = 5}).empty());
}

TEST(Stragglers, StatusTextNamesRankHostAndRatio) {
  proto::JobStatus st;
  st.set_job("j");
  proto::Straggler& s = *st.add_stragglers();
  s.set_rank(3);
  s.set_host("n12");
  s.set_compute_s(0.052);
  s.set_median_compute_s(0.005);
  s.set_window_steps(20);
  const std::string text = status_format::status(st);
  EXPECT_NE(text.find("straggler: rank 3 (host n12): compute 52.0 ms/step over 20 steps, 10.4x the median rank's "
                      "5.0 ms\n"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace lockstep
