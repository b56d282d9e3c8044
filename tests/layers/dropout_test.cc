// Dropout by statistics and formula (its masks come from Philox, not PyTorch's generator, so there
// is no golden): the dropped fraction, the 1/(1-p) scaling, eval identity, backward through the
// same mask, and reproducibility per (seed, rank, layer, step).
#include "layers/dropout.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "layers/relu.h"
#include "layers/sequential.h"
#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {
namespace {

constexpr int64_t kN = 100000;

// Never zero, so a zero output means "dropped"; varied so scaling is checked on many values.
Tensor input(int64_t n = kN) {
  Tensor x = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f + static_cast<float>((i * 7919) % 1000) / 997.f;
  return x;
}

int64_t count_zeros(const Tensor& y) {
  int64_t z = 0;
  for (float v : y.span()) z += v == 0.f;
  return z;
}

int64_t count_different(const Tensor& a, const Tensor& b) {
  int64_t d = 0;
  for (int64_t i = 0; i < a.numel(); ++i) d += a[i] != b[i];
  return d;
}

class DropoutP : public ::testing::TestWithParam<float> {};

TEST_P(DropoutP, DroppedFractionWithinFiveSigma) {
  const float p = GetParam();
  Dropout d(p);
  d.seed(7, 0, 0);
  Tensor x = input();
  for (int rep = 0; rep < 3; ++rep) {  // three steps, three independent masks
    const double frac = static_cast<double>(count_zeros(d.forward(x))) / kN;
    const double sigma = std::sqrt(p * (1.0 - p) / kN);
    EXPECT_NEAR(frac, p, 5 * sigma) << "step " << rep;
  }
}

TEST_P(DropoutP, SurvivorsScaledByOneOverOneMinusP) {
  const float p = GetParam();
  Dropout d(p);
  d.seed(11, 0, 0);
  Tensor x = input();
  Tensor y = d.forward(x);
  // PyTorch multiplies by the float 1/(1-p) (noise.div_(1 - p), then input * noise); that is
  // within one rounding of x/(1-p) and bit-identical to x * (1/(1-p)).
  const float scale = 1.f / (1.f - p);
  for (int64_t i = 0; i < kN; ++i) {
    if (y[i] == 0.f) continue;
    ASSERT_EQ(y[i], x[i] * scale) << "index " << i;
    const float exact = x[i] / (1.f - p);
    ASSERT_LE(std::fabs(y[i] - exact), 2e-7f * exact) << "index " << i;
  }
}

TEST_P(DropoutP, BackwardUsesTheForwardMask) {
  const float p = GetParam();
  Dropout d(p);
  d.seed(3, 1, 2);
  Tensor x = input();
  Tensor y = d.forward(x);
  Tensor dy = Tensor::empty({kN});
  for (int64_t i = 0; i < kN; ++i) dy[i] = std::sin(static_cast<float>(i)) + 2.f;  // never zero
  Tensor dx = d.backward(dy);
  const float scale = 1.f / (1.f - p);
  for (int64_t i = 0; i < kN; ++i)
    ASSERT_EQ(dx[i], y[i] == 0.f ? 0.f : dy[i] * scale) << "index " << i;
}

TEST_P(DropoutP, EvalIsIdentityAndDrawsNothing) {
  Dropout d(GetParam());
  d.seed(5, 0, 0);
  d.forward(input());  // one train step first, so the step is not trivially 0
  d.eval();
  const RngState before = d.rng_state();
  Tensor x = input();
  Tensor y = d.forward(x);
  ASSERT_EQ(y.numel(), x.numel());
  for (int64_t i = 0; i < kN; ++i) ASSERT_EQ(y[i], x[i]) << "index " << i;
  EXPECT_EQ(d.rng_state().step, before.step);
  Tensor dx = d.backward(x);  // identity backward too
  for (int64_t i = 0; i < kN; ++i) ASSERT_EQ(dx[i], x[i]) << "index " << i;
}

INSTANTIATE_TEST_SUITE_P(Probabilities, DropoutP, ::testing::Values(0.1f, 0.5f, 0.9f),
                         [](const auto& info) { return "p" + std::to_string(int(info.param * 10)); });

TEST(Dropout, SameSeedSameMasks) {
  Dropout a(0.5f), b(0.5f);
  a.seed(42, 3, 1);
  b.seed(42, 3, 1);
  Tensor x = input();
  for (int step = 0; step < 2; ++step) EXPECT_EQ(count_different(a.forward(x), b.forward(x)), 0);
}

TEST(Dropout, OtherSeedRankOrLayerGivesOtherMasks) {
  Tensor x = input();
  Dropout base(0.5f);
  base.seed(42, 0, 0);
  Tensor y = base.forward(x);
  // Independent masks disagree on a fraction 2p(1-p) = 1/2 of the elements.
  for (auto [seed, rank, layer] : {std::tuple{43ull, 0u, 0u}, {42ull, 1u, 0u}, {42ull, 0u, 1u}}) {
    Dropout other(0.5f);
    other.seed(seed, rank, layer);
    EXPECT_NEAR(static_cast<double>(count_different(other.forward(x), y)) / kN, 0.5, 0.02)
        << "seed " << seed << " rank " << rank << " layer " << layer;
  }
}

TEST(Dropout, StepAdvancesOncePerTrainForward) {
  Dropout d(0.5f);
  d.seed(9, 0, 0);
  Tensor x = input();
  EXPECT_EQ(d.rng_state().step, 0u);
  Tensor y0 = d.forward(x);
  EXPECT_EQ(d.rng_state().step, 1u);
  Tensor y1 = d.forward(x);
  EXPECT_EQ(d.rng_state().step, 2u);
  EXPECT_NEAR(static_cast<double>(count_different(y0, y1)) / kN, 0.5, 0.02);
  {
    NoGradGuard no_grad;  // train mode under no-grad still drops, and still advances
    d.forward(x);
  }
  EXPECT_EQ(d.rng_state().step, 3u);
}

TEST(Dropout, RestoringTheRngStateReplaysTheMask) {
  Dropout d(0.3f);
  d.seed(1, 0, 0);
  Tensor x = input();
  d.forward(x);
  const RngState s = d.rng_state();
  Tensor y = d.forward(x);
  d.set_rng_state(s);
  EXPECT_EQ(count_different(d.forward(x), y), 0);
}

// seed_dropout keys each Dropout on its qualified name, a stable per-module id.
TEST(Dropout, SeedDropoutKeysEachLayerOnItsName) {
  auto make = [] {
    auto m = std::make_unique<Sequential>();
    m->emplace<Dropout>(0.5f).emplace<ReLU>().emplace<Dropout>(0.5f);
    return m;
  };
  auto m1 = make(), m2 = make();
  seed_dropout(*m1, 123, 2);
  seed_dropout(*m2, 123, 2);
  auto& a0 = static_cast<Dropout&>((*m1)[0]);
  auto& a2 = static_cast<Dropout&>((*m1)[2]);
  auto& b0 = static_cast<Dropout&>((*m2)[0]);
  Dropout direct(0.5f);
  direct.seed(123, 2, dropout_module_id("2"));  // the Dropout registered as "2"
  EXPECT_NE(dropout_module_id("2"), dropout_module_id("0"));
  Tensor x = input();
  Tensor y0 = a0.forward(x);
  EXPECT_EQ(count_different(y0, b0.forward(x)), 0);
  Tensor y2 = a2.forward(x);
  EXPECT_EQ(count_different(y2, direct.forward(x)), 0);
  EXPECT_GT(count_different(y0, y2), kN / 4);
  seed_dropout(*m2, 123, 3);  // another rank
  EXPECT_GT(count_different(static_cast<Dropout&>((*m2)[0]).forward(x), y0), kN / 4);
}

TEST(Dropout, PerSampleShardsAreSlicesOfTheGlobalMask) {
  // A (10, 7) global batch split 4/0/6 at rows 0, 4, 4: each shard's mask is the matching rows
  // of the whole batch's mask, whatever rank the shard sits on; and per-sample keying at row 0
  // equals per-rank keying of rank 0.
  constexpr int64_t kRows = 10, kCols = 7;
  Tensor x = input(kRows * kCols).reshape({kRows, kCols});
  Dropout whole(0.5f);
  whole.seed(77, 0, 1);
  whole.set_keying(DropoutKeying::kPerSample);
  Tensor y = whole.forward(x);
  Dropout per_rank(0.5f);
  per_rank.seed(77, 0, 1);
  EXPECT_EQ(count_different(per_rank.forward(x), y), 0);
  const int64_t starts[] = {0, 4, 4}, rows[] = {4, 0, 6};
  for (uint32_t r = 0; r < 3; ++r) {
    Dropout shard(0.5f);
    seed_dropout(shard, 77, r, DropoutKeying::kPerSample);
    shard.seed(77, r, 1);  // same layer slot as `whole`
    set_dropout_first_global_row(shard, starts[r]);
    Tensor xs = Tensor::empty({rows[r], kCols});
    for (int64_t i = 0; i < xs.numel(); ++i) xs[i] = x[starts[r] * kCols + i];
    Tensor ys = shard.forward(xs);
    EXPECT_EQ(shard.rng_state().step, 1u) << "rank " << r;  // an empty shard advances too
    for (int64_t i = 0; i < ys.numel(); ++i)
      ASSERT_EQ(ys[i], y[starts[r] * kCols + i]) << "rank " << r << " index " << i;
  }
}

TEST(Dropout, PerSampleOffsetsAreNotBlockAligned) {
  // Rows of 3 elements start mid Philox block: every offset 0..8 must match the whole-batch mask.
  Tensor x = input(12 * 3).reshape({12, 3});
  Dropout whole(0.5f);
  whole.seed(5, 0, 0);
  whole.set_keying(DropoutKeying::kPerSample);
  Tensor y = whole.forward(x);
  for (int64_t start = 0; start < 9; ++start) {
    Dropout shard(0.5f);
    shard.set_keying(DropoutKeying::kPerSample);
    shard.seed(5, 2, 0);
    shard.set_first_global_row(start);
    Tensor xs = Tensor::empty({3, 3});
    for (int64_t i = 0; i < 9; ++i) xs[i] = x[start * 3 + i];
    Tensor ys = shard.forward(xs);
    for (int64_t i = 0; i < 9; ++i) ASSERT_EQ(ys[i], y[start * 3 + i]) << "start " << start;
  }
}

TEST(Dropout, PZeroIsIdentity) {
  Dropout d(0.f);
  Tensor x = input(1000);
  Tensor y = d.forward(x);
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(y[i], x[i]);
  Tensor dx = d.backward(x);
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(dx[i], x[i]);
}

TEST(Dropout, POneZeroesEverything) {
  Dropout d(1.f);
  Tensor x = input(1000);
  EXPECT_EQ(count_zeros(d.forward(x)), 1000);
  EXPECT_EQ(count_zeros(d.backward(x)), 1000);
}

TEST(Dropout, RejectsPOutsideUnitInterval) {
  EXPECT_THROW(Dropout(-0.1f), Error);
  EXPECT_THROW(Dropout(1.5f), Error);
  EXPECT_THROW(Dropout(std::nanf("")), Error);
}

TEST(Dropout, BackwardAfterNoGradForwardThrows) {
  Dropout d(0.5f);
  {
    NoGradGuard no_grad;
    d.forward(input(100));
  }
  EXPECT_THROW(d.backward(input(100)), Error);
}

}  // namespace
}  // namespace lockstep
