// Dropout across ranks (run under mpirun, np 1..4):
//   kPerRank:   two ranks' masks at the same step and layer differ (all-gathered and compared);
//               a rerun with the same seed is bit-identical; every rank advances the same steps.
//   kPerSample: the ranks' shard masks, concatenated in rank order, equal one rank's mask over
//               the whole global batch exactly (even and uneven shards, an empty rank included).
//   eval:       identity, no collective issued, no RNG drawn.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <vector>

#include "comm/communicator.h"
#include "layers/dropout.h"
#include "layers/relu.h"
#include "layers/sequential.h"
#include "runtime/autograd.h"
#include "runtime/grad_mode.h"
#include "tests/test_util.h"
#include "tests/distributed/test_comm.h"

namespace lockstep {
namespace {

// Never zero, so a zero output means "dropped".
Tensor ones_like_input(Shape shape) {
  Tensor x = Tensor::empty(std::move(shape));
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = 1.f + float(i % 13) / 16.f;
  return x;
}

// 1 where the element was kept, 0 where dropped.
std::vector<float> kept(const Tensor& y) {
  std::vector<float> m(y.numel());
  for (int64_t i = 0; i < y.numel(); ++i) m[i] = y[i] != 0.f;
  return m;
}

// Dropout(0.5) -> ReLU -> Dropout(0.3): two dropout layers numbered 0 and 1.
std::unique_ptr<Sequential> two_dropouts() {
  auto m = std::make_unique<Sequential>();
  m->emplace<Dropout>(0.5f).emplace<ReLU>().emplace<Dropout>(0.3f);
  return m;
}

TEST(DropoutRanks, PerRankMasksDifferAcrossRanks) {
  Communicator& comm = test_comm();
  const int world = comm.size();
  constexpr int64_t kN = 4096;
  Dropout d(0.5f);
  seed_dropout(d, 42, static_cast<uint32_t>(comm.rank()));
  comm.set_phase(1, CommMode::kTrain);
  for (int step = 0; step < 2; ++step) {
    std::vector<float> mine = kept(d.forward(ones_like_input({kN}))), all(kN * world);
    comm.all_gather(mine, all).wait();
    // Independent masks with p = 1/2 disagree on half the elements: 2048 +- 32 (1 sigma).
    for (int a = 0; a < world; ++a)
      for (int b = a + 1; b < world; ++b) {
        int64_t diff = 0;
        for (int64_t i = 0; i < kN; ++i) diff += all[a * kN + i] != all[b * kN + i];
        EXPECT_NEAR(double(diff) / kN, 0.5, 0.05) << "ranks " << a << " and " << b << ", step " << step;
      }
  }
  // Every rank took the same number of steps.
  std::vector<float> step{float(d.rng_state().step)}, steps(world);
  comm.all_gather(step, steps).wait();
  for (int r = 0; r < world; ++r) EXPECT_EQ(steps[r], 2.f) << "rank " << r;
}

TEST(DropoutRanks, RerunWithTheSameSeedIsBitIdentical) {
  Communicator& comm = test_comm();
  const uint32_t rank = static_cast<uint32_t>(comm.rank());
  auto run = [rank] {
    auto m = two_dropouts();
    seed_dropout(*m, 1234, rank);
    std::vector<Tensor> ys;
    for (int step = 0; step < 3; ++step) ys.push_back(m->forward(ones_like_input({64, 33})));
    return ys;
  };
  auto a = run(), b = run();
  for (int step = 0; step < 3; ++step)
    for (int64_t i = 0; i < a[step].numel(); ++i)
      ASSERT_EQ(a[step][i], b[step][i]) << "step " << step << " index " << i << " rank " << rank;
}

// Rows per rank of a global batch: even (4 each) or uneven with empty ranks (5/3/0/2...).
std::vector<int64_t> split_rows(bool even, int world) {
  std::vector<int64_t> rows(world);
  for (int r = 0; r < world; ++r) rows[r] = even ? 4 : std::vector<int64_t>{5, 3, 0, 2}[r % 4];
  return rows;
}

class PerSampleKeying : public ::testing::TestWithParam<bool> {};

TEST_P(PerSampleKeying, ShardMasksConcatenateToTheOneRankMask) {
  Communicator& comm = test_comm();
  const int world = comm.size(), rank = comm.rank();
  const std::vector<int64_t> rows = split_rows(GetParam(), world);
  const int64_t global_rows = std::accumulate(rows.begin(), rows.end(), int64_t{0});
  const int64_t row0 = std::accumulate(rows.begin(), rows.begin() + rank, int64_t{0});
  const int64_t max_rows = *std::max_element(rows.begin(), rows.end());
  constexpr int64_t kRowNumel = 6 * 5;  // rows of (6, 5): 30 elements, not a multiple of 4

  // One rank over the whole global batch.
  auto whole = two_dropouts();
  seed_dropout(*whole, 99, 0, DropoutKeying::kPerSample);
  set_dropout_first_global_row(*whole, 0);
  // This rank over its shard, keyed by its global rows.
  auto shard = two_dropouts();
  seed_dropout(*shard, 99, static_cast<uint32_t>(rank), DropoutKeying::kPerSample);
  set_dropout_first_global_row(*shard, row0);

  comm.set_phase(1, CommMode::kTrain);
  for (int step = 0; step < 3; ++step) {
    Tensor x_whole = ones_like_input({global_rows, 6, 5});
    Tensor x = Tensor::empty({rows[rank], 6, 5});
    std::copy_n(x_whole.data() + row0 * kRowNumel, x.numel(), x.data());
    Tensor y_whole = whole->forward(x_whole);
    Tensor y = shard->forward(x);
    // Gather every shard's mask (padded to the largest shard) and concatenate in rank order.
    std::vector<float> mine(max_rows * kRowNumel, -1.f), all(max_rows * kRowNumel * world);
    const std::vector<float> m = kept(y);
    std::copy(m.begin(), m.end(), mine.begin());
    comm.all_gather(mine, all).wait();
    std::vector<float> concat;
    for (int r = 0; r < world; ++r) {
      const float* b = all.data() + r * max_rows * kRowNumel;
      concat.insert(concat.end(), b, b + rows[r] * kRowNumel);
    }
    const std::vector<float> want = kept(y_whole);
    // Checks count mismatches rather than stop early: every rank must reach the next all_gather.
    EXPECT_EQ(concat.size(), want.size());
    int64_t diff = 0;
    for (size_t i = 0; i < std::min(want.size(), concat.size()); ++i) diff += concat[i] != want[i];
    EXPECT_EQ(diff, 0) << "step " << step << " on rank " << rank << " of " << world;
    // The kept values (not just the pattern) match too: same scaling, same layer order.
    int64_t value_diff = 0;
    for (int64_t i = 0; i < y.numel(); ++i) value_diff += y[i] != y_whole[row0 * kRowNumel + i];
    EXPECT_EQ(value_diff, 0) << "step " << step << " on rank " << rank << " of " << world;
  }
  // Empty shards advanced their step like the others.
  for (auto* m : {whole.get(), shard.get()})
    EXPECT_EQ(static_cast<Dropout&>((*m)[0]).rng_state().step, 3u);
}

INSTANTIATE_TEST_SUITE_P(Shards, PerSampleKeying, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "even" : "uneven_with_empty"; });

TEST(DropoutRanks, EvalIssuesNoCollectiveAndDrawsNothing) {
  Communicator& comm = test_comm();
  for (DropoutKeying keying : {DropoutKeying::kPerRank, DropoutKeying::kPerSample}) {
    auto m = two_dropouts();
    seed_dropout(*m, 7, static_cast<uint32_t>(comm.rank()), keying);
    m->forward(ones_like_input({8, 10}));  // one train step, so the step is not trivially 0
    m->eval();
    comm.set_phase(2, CommMode::kEval);
    const uint64_t issued = comm.collectives_issued();
    const uint64_t step0 = static_cast<Dropout&>((*m)[0]).rng_state().step;
    const uint64_t step2 = static_cast<Dropout&>((*m)[2]).rng_state().step;
    Tensor x = ones_like_input({8, 10});
    testing::GradInput in(x);
    Tensor y = m->forward(in.value());
    backward(y, x);
    const Tensor& dx = in.grad();
    EXPECT_EQ(comm.collectives_issued(), issued);
    EXPECT_EQ(static_cast<Dropout&>((*m)[0]).rng_state().step, step0);
    EXPECT_EQ(static_cast<Dropout&>((*m)[2]).rng_state().step, step2);
    for (int64_t i = 0; i < x.numel(); ++i) {
      ASSERT_EQ(y[i], x[i]) << "index " << i;
      ASSERT_EQ(dx[i], x[i]) << "index " << i;
    }
  }
}

}  // namespace
}  // namespace lockstep
