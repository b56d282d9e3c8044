// Activation modules (layers/activation.h) against the ops' PyTorch goldens (tests/golden/gen_ops.py):
// each forward is its op, recorded for backward; describe() and output_shape() as the other layers.
#include "layers/activation.h"

#include <gtest/gtest.h>

#include <memory>

#include "runtime/autograd.h"
#include "runtime/check.h"
#include "runtime/grad_mode.h"
#include "tests/golden_io.h"

namespace lockstep {
namespace {

// y = m(x) and dx for the golden case's dy, compared with torch's.
void expect_case(Module& m, const std::string& name) {
  SCOPED_TRACE(name + " via " + m.describe());
  static const auto golden = testing::load_golden("ops_golden.safetensors");
  Parameter x{testing::at(golden, name + ".x0").clone(), Tensor::zeros(testing::at(golden, name + ".x0").shape()), nullptr};
  make_leaf(x);
  Tensor y = m(x.value);
  EXPECT_EQ(y.shape(), x.value.shape());
  EXPECT_ALLCLOSE(y, testing::at(golden, name + ".y"), 1e-6, 1e-5);
  y.backward(testing::at(golden, name + ".dy"));
  EXPECT_ALLCLOSE(x.grad, testing::at(golden, name + ".dx0"), 1e-6, 1e-5);
}

TEST(ActivationModules, MatchPyTorch) {
  LeakyReLU leaky, leaky02(0.2f);
  GELU gelu_none, gelu_tanh("tanh");
  SiLU silu_m;
  Sigmoid sigmoid_m;
  Tanh tanh_m;
  expect_case(leaky, "leaky_relu");
  expect_case(leaky02, "leaky_relu.slope");
  expect_case(gelu_none, "gelu.none");
  expect_case(gelu_tanh, "gelu.tanh");
  expect_case(silu_m, "silu");
  expect_case(sigmoid_m, "sigmoid");
  expect_case(tanh_m, "tanh");
}

TEST(ActivationModules, DescribeShapeAndErrors) {
  EXPECT_EQ(LeakyReLU(0.2f).describe(), "LeakyReLU(0.2)");
  EXPECT_EQ(GELU("tanh").describe(), "GELU(tanh)");
  EXPECT_EQ(SiLU().describe(), "SiLU");
  EXPECT_EQ(Sigmoid().output_shape({8, 3, 5, 5}), (Shape{8, 3, 5, 5}));
  EXPECT_EQ(Tanh().output_shape({2}), (Shape{2}));
  EXPECT_TRUE(SiLU().named_parameters().empty());
  EXPECT_THROW(GELU("exact"), Error);
}

TEST(ActivationModules, NoGradRecordsNothing) {
  Parameter x{Tensor::full({2, 3}, -0.5f), Tensor::zeros({2, 3}), nullptr};
  make_leaf(x);
  GELU m;
  NoGradGuard no_grad;
  EXPECT_FALSE(m(x.value).requires_grad());
}

}  // namespace
}  // namespace lockstep
