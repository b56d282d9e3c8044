// ReLU against PyTorch (tests/golden/gen_layers.py), any shape, both modes.
#include "layers/relu.h"

#include <gtest/gtest.h>

#include "tests/layers/golden_module.h"

namespace lockstep {
namespace {

TEST(ReLUGolden, MatchesPyTorch) {
  for (bool train : {true, false}) {
    ReLU m;  // x (3,5,7) -> y (3,5,7)
    m.train(train);
    testing::expect_module_case(m, "relu", {0, 0}, {0, 0});  // exact: no arithmetic
  }
}

TEST(ReLU, GradientAtZeroIsZero) {
  ReLU m;  // as PyTorch: threshold_backward passes dy only where the output is > 0
  Tensor x = Tensor::from({3}, std::vector<float>{-1.f, 0.f, 2.f});
  m.forward(x);
  Tensor dx = m.backward(Tensor::full({3}, 5.f));
  EXPECT_EQ(dx[0], 0.f);
  EXPECT_EQ(dx[1], 0.f);
  EXPECT_EQ(dx[2], 5.f);
}

}  // namespace
}  // namespace lockstep
