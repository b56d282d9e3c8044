// Linear against PyTorch (tests/golden/gen_layers.py): output, input and parameter gradients, in
// train and eval mode (Linear does not depend on the mode), with and without bias.
#include "layers/linear.h"

#include <gtest/gtest.h>

#include "runtime/check.h"
#include "tests/layers/golden_module.h"

namespace lockstep {
namespace {

using testing::expect_module_case;
using testing::layers_golden;

TEST(LinearGolden, WithBias) {
  for (bool train : {true, false}) {
    Linear m(7, 5);  // x: (3, 7) -> y: (3, 5)
    m.train(train);
    expect_module_case(m, "linear_bias");
  }
}

TEST(LinearGolden, WithoutBiasBatch1) {
  for (bool train : {true, false}) {
    Linear m(4, 3, /*bias=*/false);  // x: (1, 4) -> y: (1, 3)
    m.train(train);
    EXPECT_EQ(m.state_dict().size(), 1u);
    expect_module_case(m, "linear_nobias");
  }
}

TEST(LinearGolden, ParameterGradientsAccumulateOverBackwards) {
  Linear m(3, 2);  // two forward/backward pairs, (2, 3) then (4, 3), no zero_grad between
  expect_module_case(m, "linear_accum");
}

TEST(LinearGolden, NoInputGradStillGivesParameterGrads) {
  const auto& g = layers_golden();
  Linear m(7, 5);
  m.set_needs_input_grad(false);
  testing::load_state(m, g, "linear_bias.state.");
  m.forward(testing::at(g, "linear_bias.x0"));
  Tensor dx = m.backward(testing::at(g, "linear_bias.dy0"));
  EXPECT_FALSE(dx.defined());
  EXPECT_ALLCLOSE(m.named_parameters()[0].second->grad, testing::at(g, "linear_bias.grad.weight"), 1e-5,
                  1e-4);
  EXPECT_ALLCLOSE(m.named_parameters()[1].second->grad, testing::at(g, "linear_bias.grad.bias"), 1e-5,
                  1e-4);
}

TEST(Linear, RejectsWrongInputShape) {
  Linear m(7, 5);
  EXPECT_THROW(m.forward(Tensor::zeros({3, 6})), Error);
  EXPECT_THROW(m.forward(Tensor::zeros({3, 7, 1})), Error);
}

}  // namespace
}  // namespace lockstep
