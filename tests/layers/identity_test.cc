// Identity as torch.nn.Identity (tests/golden/gen_layers.py): the output is the input tensor itself,
// and a graph through it backpropagates as if it were not there.
#include "layers/identity.h"

#include <gtest/gtest.h>

#include "layers/linear.h"
#include "runtime/autograd.h"
#include "tests/layers/golden_module.h"

namespace lockstep {
namespace {

using testing::at;
using testing::layers_golden;

TEST(IdentityGolden, ReturnsItsInput) {
  const auto& g = layers_golden();
  Identity m;
  for (bool train : {true, false}) {
    m.train(train);
    const Tensor x = at(g, "identity.x0").clone();  // (2,3,4)
    const Tensor y = m(x);
    EXPECT_EQ(y.data(), x.data()) << "a copy";
    EXPECT_EQ(y.shape(), at(g, "identity.y0").shape());
    EXPECT_ALLCLOSE(y, at(g, "identity.y0"), 0, 0);
    EXPECT_EQ(m.output_shape({0, 3, 4}), (Shape{0, 3, 4}));
  }
}

TEST(Identity, GraphPassesThrough) {
  // Linear(3->2) on a ramp, with and without an Identity after it: the same weight gradient.
  auto weight_grad = [](bool with_identity) {
    Linear l(3, 2);
    for (auto& [name, p] : l.named_parameters())
      for (int64_t i = 0; i < p->value.numel(); ++i) p->value[i] = 0.1f * static_cast<float>(i + 1);
    Identity id;
    Tensor x = Tensor::from({2, 3}, std::vector<float>{1, 2, 3, -1, 0.5f, 2});
    Tensor y = with_identity ? id(l(x)) : l(x);
    backward(y, Tensor::from({2, 2}, std::vector<float>{1, -2, 0.5f, 3}));
    return l.named_parameters()[0].second->grad.clone();
  };
  const Tensor with = weight_grad(true), without = weight_grad(false);
  EXPECT_ALLCLOSE(with, without, 0, 0);
  EXPECT_NE(with[0], 0.f);
}

}  // namespace
}  // namespace lockstep
