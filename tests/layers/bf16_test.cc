// bf16 autocast (runtime/precision.h) on Conv2d and Linear: forward output and dx, dW, db under
// AutocastGuard(kBF16) against the fp32 result of the same inputs, within the error bound of
// rounding the inputs to bf16 and accumulating in fp32; and BatchNorm's statistics of a bf16
// convolution's output, which stays fp32.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "runtime/grad_mode.h"
#include "runtime/parameter.h"
#include "runtime/precision.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

// On a CPU below AVX-512 oneDNN has no bf16 kernels and the layers run in fp32.
#define SKIP_WITHOUT_BF16()                                   \
  if (const std::string why = precision_unsupported(Precision::kBF16); !why.empty()) \
  GTEST_SKIP() << why

using testing::randn;

Tensor abs_of(const Tensor& t) {
  Tensor a = Tensor::empty(t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) a[i] = std::fabs(t[i]);
  return a;
}

Tensor& weight_of(Layer& l) { return l.named_parameters()[0].second->value; }

// One forward and backward of `layer` on (x, dy): y, dx and each parameter's gradient.
struct Result {
  Tensor y, dx;
  std::vector<Tensor> grads;
};

Result run(Layer& layer, const Tensor& x, const Tensor& dy) {
  layer.zero_grad();
  Parameter leaf{x.clone(), Tensor::zeros(x.shape()), nullptr};
  make_leaf(leaf);
  Result r;
  r.y = layer.forward(leaf.value);
  r.y.backward(dy.clone());
  r.dx = leaf.grad;
  for (auto& [name, p] : layer.named_parameters()) r.grads.push_back(p->grad.clone());
  return r;
}

// bf16 rounds each input of a product to 8 significant bits, relative error at most
// u = 2^-8; a product of two rounded factors is off by at most (2u + u^2)|x||w|, and fp32
// accumulation of K terms adds about K * 2^-24 relative, so every element of y, dx, dW, db obeys
//   |bf16 - fp32| <= c * u * sum_k |x_k||w_k|,   c = 2.5,
// where sum_k |x_k||w_k| is the same layer run in fp32 on |x|, |w| (and |dy| for the gradients).
constexpr double kU = 1.0 / 256, kC = 2.5;

void expect_within_bound(const Tensor& bf16, const Tensor& fp32, const Tensor& abs_sum, const std::string& what) {
  ASSERT_EQ(bf16.shape(), fp32.shape()) << what;
  int64_t bad = 0, first = -1, differ = 0, nonzero = 0;
  for (int64_t i = 0; i < bf16.numel(); ++i) {
    if (bf16[i] != fp32[i]) ++differ;
    if (abs_sum[i] != 0.f) ++nonzero;
    if (!(std::fabs(double(bf16[i]) - fp32[i]) <= kC * kU * abs_sum[i] + 1e-30)) {
      if (first < 0) first = i;
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << bf16.numel() << " elements outside c*u*sum|x||w|; first at "
                    << first << ": " << (first >= 0 ? bf16[first] : 0.f) << " vs " << (first >= 0 ? fp32[first] : 0.f)
                    << " (bound " << (first >= 0 ? kC * kU * abs_sum[first] : 0.) << ")";
  // Random fp32 inputs have bits below bf16's 8: rounding them must change most results (a stride-2
  // 1x1 convolution's dx is exactly 0 in both where no output reads the pixel).
  EXPECT_GT(differ, nonzero / 2) << what << ": (nearly) bit-identical to fp32, so bf16 did not run";
}

// Runs `make()` three times: fp32, bf16 (under AutocastGuard) and fp32 on |x|, |w|, |dy| for the
// bound, all with the same parameters, and compares y, dx and every parameter gradient.
// fp32_bias_grad: the bias gradient is summed from fp32 dy (Linear), so it must equal fp32's exactly;
// a convolution's comes from oneDNN's bf16 backward-weights (bf16 diff_dst, f32 sum).
void expect_bf16_close(const std::function<std::unique_ptr<Layer>()>& make, const Tensor& x, uint32_t seed,
                       bool fp32_bias_grad = false) {
  auto fp32 = make(), bf16 = make(), abs = make();
  uint32_t k = 0;
  for (auto& [name, p] : fp32->named_parameters()) p->value.copy_from(randn(p->value.shape(), seed + 100 + k++, 0.2f));
  auto params = fp32->named_parameters(), b = bf16->named_parameters(), a = abs->named_parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    b[i].second->value.copy_from(params[i].second->value);
    a[i].second->value.copy_from(abs_of(params[i].second->value));
  }
  Tensor y_probe;
  {
    NoGradGuard no_grad;
    y_probe = fp32->forward(x);
  }
  const Tensor dy = randn(y_probe.shape(), seed + 7);
  const Result r32 = run(*fp32, x, dy);
  Result r16;
  {
    AutocastGuard bf16_scope(Precision::kBF16);
    r16 = run(*bf16, x, dy);
  }
  const Result rabs = run(*abs, abs_of(x), abs_of(dy));
  expect_within_bound(r16.y, r32.y, rabs.y, "y");
  expect_within_bound(r16.dx, r32.dx, rabs.dx, "dx");
  for (size_t i = 0; i < params.size(); ++i) {
    if (fp32_bias_grad && params[i].first == "bias") {  // an fp32 sum of fp32 dy in both
      for (int64_t j = 0; j < r32.grads[i].numel(); ++j) EXPECT_EQ(r16.grads[i][j], r32.grads[i][j]) << "db " << j;
      continue;
    }
    expect_within_bound(r16.grads[i], r32.grads[i], rabs.grads[i], "grad of " + params[i].first);
  }
}

struct ConvCase {
  const char* name;
  Conv2dOptions o;
  Shape x;
};

void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }

class Bf16Conv2d : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Bf16Conv2d, WithinBf16BoundOfFp32) {
  SKIP_WITHOUT_BF16();
  const ConvCase& c = GetParam();
  expect_bf16_close([&] { return std::make_unique<Conv2d>(c.o); }, randn(c.x, 1), 11);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Bf16Conv2d,
    ::testing::Values(
        // x (4,16,12,12) -> y (4,32,12,12)
        ConvCase{"k3s1p1", {.in_channels = 16, .out_channels = 32, .kernel = 3, .padding = 1}, {4, 16, 12, 12}},
        // x (4,16,13,13) -> y (4,16,7,7)
        ConvCase{"k3s2p1", {.in_channels = 16, .out_channels = 16, .kernel = 3, .stride = 2, .padding = 1},
                 {4, 16, 13, 13}},
        // x (4,32,8,8) -> y (4,16,4,4): ResNet's projection shortcut
        ConvCase{"k1s2_nobias", {.in_channels = 32, .out_channels = 16, .kernel = 1, .stride = 2, .bias = false},
                 {4, 32, 8, 8}},
        // x (4,1,28,28) -> y (4,16,28,28): a network's first layer
        ConvCase{"k3_cin1", {.in_channels = 1, .out_channels = 16, .kernel = 3, .padding = 1}, {4, 1, 28, 28}},
        // x (2,16,9,9) -> y (2,32,9,9), 4 groups of 4 -> 8 channels
        ConvCase{"groups4", {.in_channels = 16, .out_channels = 32, .kernel = 3, .padding = 1, .groups = 4},
                 {2, 16, 9, 9}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Bf16Linear, WithinBf16BoundOfFp32) {
  SKIP_WITHOUT_BF16();
  // x (32,100) -> y (32,50); x (128,784) -> y (128,256); x (7,13) -> y (7,5) without bias
  expect_bf16_close([] { return std::make_unique<Linear>(100, 50); }, randn({32, 100}, 2), 21, true);
  expect_bf16_close([] { return std::make_unique<Linear>(784, 256); }, randn({128, 784}, 3), 31, true);
  expect_bf16_close([] { return std::make_unique<Linear>(13, 5, false); }, randn({7, 13}, 4), 41, true);
}

// Backward runs in the dtype its forward ran: the same gradients whether or not the guard is still
// in place when backward runs.
TEST(Bf16Linear, BackwardFollowsItsForward) {
  SKIP_WITHOUT_BF16();
  Linear inside(20, 10), outside(20, 10);
  weight_of(inside).copy_from(randn({10, 20}, 5, 0.3f));
  weight_of(outside).copy_from(weight_of(inside));
  const Tensor x = randn({8, 20}, 6), dy = randn({8, 10}, 7);
  Result a, b;
  {
    AutocastGuard g(Precision::kBF16);
    a = run(inside, x, dy);
  }
  {
    Parameter leaf{x.clone(), Tensor::zeros(x.shape()), nullptr};
    make_leaf(leaf);
    outside.zero_grad();
    Tensor y;
    {
      AutocastGuard g(Precision::kBF16);
      y = outside.forward(leaf.value);
    }
    y.backward(dy.clone());
    b.dx = leaf.grad;
    for (auto& [name, p] : outside.named_parameters()) b.grads.push_back(p->grad.clone());
  }
  for (int64_t i = 0; i < a.dx.numel(); ++i) ASSERT_EQ(a.dx[i], b.dx[i]) << "dx at " << i;
  for (size_t k = 0; k < a.grads.size(); ++k)
    for (int64_t i = 0; i < a.grads[k].numel(); ++i) ASSERT_EQ(a.grads[k][i], b.grads[k][i]) << "grad " << k;
}

TEST(Bf16Linear, NoGradForwardMatchesTrainForward) {
  Linear m(30, 6);
  weight_of(m).copy_from(randn({6, 30}, 8, 0.3f));
  const Tensor x = randn({5, 30}, 9);
  AutocastGuard g(Precision::kBF16);
  const Tensor y_train = m.forward(x);
  NoGradGuard no_grad;
  const Tensor y_eval = m.forward(x);
  for (int64_t i = 0; i < y_train.numel(); ++i) ASSERT_EQ(y_train[i], y_eval[i]) << i;
}

// An activation with a large offset and a small spread, x = 1000 + 0.05 * noise, made by a bf16
// 1x1 convolution (weight 1, bias 1000, input 0.05 * noise): its output is fp32, so BatchNorm's
// batch variance is the fp32 run's (about 0.0025). Under torch.autocast("cpu",
// dtype=torch.bfloat16) the convolution's output is bf16, whose spacing near 1000 is 4: every value
// rounds to 1000 and the batch variance is exactly 0.
TEST(Bf16BatchNorm, ReadsFp32ActivationsSoASmallSpreadKeepsItsVariance) {
  SKIP_WITHOUT_BF16();
  const Tensor noise = randn({64, 1, 8, 8}, 10, 0.05f);
  auto batch_variance = [&](Precision p) {
    Conv2d conv({.in_channels = 1, .out_channels = 1, .kernel = 1});
    conv.named_parameters()[0].second->value.fill(1.f);
    conv.named_parameters()[1].second->value.fill(1000.f);
    // momentum 1: running_var becomes the batch's (unbiased) variance.
    BatchNorm2d bn({.num_features = 1, .momentum = 1.f});
    AutocastGuard g(p);
    bn.forward(conv.forward(noise));
    for (auto& [name, b] : bn.named_buffers())
      if (name == "running_var") return double((*b)[0]);
    ADD_FAILURE() << "no running_var";
    return 0.0;
  };
  const double v32 = batch_variance(Precision::kFP32), v16 = batch_variance(Precision::kBF16);
  EXPECT_NEAR(v32, 0.0025, 0.0005);
  EXPECT_NEAR(v16, v32, 0.01 * v32) << "bf16 " << v16 << " vs fp32 " << v32;
}

}  // namespace
}  // namespace lockstep
