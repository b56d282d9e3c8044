// One layer called several times in one graph (torchvision's BasicBlock calls its ReLU twice;
// weight sharing calls a Linear twice): each call's node keeps its own saved values, and the
// parameter gradients of every call accumulate. Checked against the same function written with ops
// (runtime/ops.h), an independent path through the engine. Conv2d, which cannot hand its saved
// values over, refuses a second call with a clear error instead of a wrong gradient.
#include <gtest/gtest.h>

#include <string>

#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/relu.h"
#include "runtime/autograd.h"
#include "runtime/check.h"
#include "runtime/ops.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

Tensor ramp(const Shape& s, float scale) {
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = scale * (static_cast<float>((i * 13) % 17) - 8.f) / 8.f;
  return t;
}

TEST(LayerReuse, ALinearAndAReluCalledTwiceMatchTheOpsFormula) {
  Linear lin(6, 6);
  for (auto& [name, p] : lin.named_parameters()) p->value.copy_from(ramp(p->value.shape(), 0.4f));
  ReLU act;
  const Tensor x = ramp({3, 6}, 1.f), dy = ramp({3, 6}, 0.7f);

  testing::GradInput in(x);
  Tensor y = act(lin(act(lin(in.value()))));
  backward(y, dy);

  // The formula: relu(relu(x W^T + b) W^T + b), with W^T and b as leaves of their own.
  const Tensor& weight = lin.named_parameters()[0].second->value;
  Tensor transposed = Tensor::empty({6, 6});
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t c = 0; c < 6; ++c) transposed[c * 6 + r] = weight[r * 6 + c];
  testing::GradInput wt(transposed), b(lin.named_parameters()[1].second->value);
  testing::GradInput in2(x);
  Tensor y2 = relu(add(matmul(relu(add(matmul(in2.value(), wt.value()), b.value())), wt.value()), b.value()));
  backward(y2, dy);
  for (int64_t i = 0; i < y.numel(); ++i) ASSERT_NEAR(y[i], y2[i], 1e-5) << "output " << i;
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_NEAR(in.grad()[i], in2.grad()[i], 1e-5) << "dx " << i;
  const Tensor& gw = lin.named_parameters()[0].second->grad;
  const Tensor& gb = lin.named_parameters()[1].second->grad;
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t c = 0; c < 6; ++c) ASSERT_NEAR(gw[r * 6 + c], wt.grad()[c * 6 + r], 1e-5) << "dW " << r << "," << c;
  for (int64_t i = 0; i < gb.numel(); ++i) ASSERT_NEAR(gb[i], b.grad()[i], 1e-5) << "db " << i;
}

TEST(LayerReuse, ASecondConvCallIsRefusedNamingTheLayer) {
  Conv2d conv(Conv2dOptions{.in_channels = 2, .out_channels = 2, .kernel = 3, .padding = 1});
  testing::GradInput in(ramp({1, 2, 5, 5}, 1.f));
  Tensor y = conv(conv(in.value()));
  try {
    backward(y, ramp({1, 2, 5, 5}, 1.f));
    ADD_FAILURE() << "a second Conv2d call in one graph was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Conv2d"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("register one layer per use"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lockstep
