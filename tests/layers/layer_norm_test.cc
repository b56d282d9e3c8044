// LayerNorm against PyTorch (tests/golden/gen_layers.py): over the last dim of a 3-d input, over
// two dims, without affine, eps 1e-3 on a small-variance input, and two calls accumulating the
// parameter gradients; the same numbers in train and eval mode (no running statistics).
#include "layers/layer_norm.h"

#include <gtest/gtest.h>

#include "runtime/check.h"
#include "tests/layers/golden_module.h"

namespace lockstep {
namespace {

using testing::expect_module_case;

void expect_both_modes(LayerNorm& m, const char* c) {
  for (bool train : {true, false}) {
    m.train(train);
    expect_module_case(m, c, {1e-5, 1e-4}, {2e-5, 1e-4});
  }
}

TEST(LayerNormGolden, LastDim) {
  LayerNorm m({7});  // x (2,4,7): 8 rows of 7
  expect_both_modes(m, "ln_last");
}

TEST(LayerNormGolden, TwoDims) {
  LayerNorm m({4, 5});  // x (3,4,5) * 3 + 2: 3 rows of 20
  expect_both_modes(m, "ln_2d");
}

TEST(LayerNormGolden, NoAffine) {
  LayerNorm m({6}, 1e-5f, /*elementwise_affine=*/false);  // x (4,6); no parameters
  EXPECT_TRUE(m.named_parameters().empty());
  expect_both_modes(m, "ln_noaffine");
}

TEST(LayerNormGolden, LargeEps) {
  LayerNorm m({5}, 1e-3f);  // x (3,5) * 0.05 + 1: eps dominates the variance
  expect_both_modes(m, "ln_eps");
}

TEST(LayerNormGolden, GradientsAccumulateOverCalls) {
  LayerNorm m({6});  // (2,6) then (3,6), no zero_grad between
  expect_both_modes(m, "ln_accum");
}

TEST(LayerNorm, ShapesAndErrors) {
  LayerNorm m({4, 5});
  EXPECT_EQ(m.output_shape({2, 3, 4, 5}), (Shape{2, 3, 4, 5}));
  EXPECT_THROW(m.output_shape({2, 5, 4}), Error);
  EXPECT_THROW(m.output_shape({5}), Error);
  EXPECT_THROW(LayerNorm(Shape{}), Error);
  EXPECT_THROW(LayerNorm({3, 0}), Error);
  EXPECT_THROW(LayerNorm({3}, 0.f), Error);
}

}  // namespace
}  // namespace lockstep
