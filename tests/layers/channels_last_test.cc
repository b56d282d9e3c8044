// channels_last (Note [memory format], runtime/tensor.h) against the contiguous run: every
// format-aware layer and op gives the NCHW run's output and gradients (exact where the arithmetic
// order is the same, else within float reassociation), in the format PyTorch's rules give; the
// others read contiguous() of their input; reshape and flatten give the logical NCHW order; the
// autograd engine sums gradients that arrive in both formats.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "layers/adaptive_avg_pool2d.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/flatten.h"
#include "layers/init.h"
#include "layers/loss.h"
#include "layers/max_pool2d.h"
#include "layers/relu.h"
#include "layers/resnet.h"
#include "runtime/grad_mode.h"
#include "runtime/ops.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

constexpr auto kNCHW = MemoryFormat::kContiguous;
constexpr auto kNHWC = MemoryFormat::kChannelsLast;

using testing::randn;

// a and b hold the same logical values (whatever their formats): exactly when rtol is 0, else each
// within rtol of b's largest magnitude (float reassociation of a sum errs relative to the terms,
// not to the result, which may be near zero).
void expect_same(const Tensor& a_any, const Tensor& b_any, double rtol, const std::string& what) {
  ASSERT_EQ(a_any.shape(), b_any.shape()) << what;
  const Tensor a = a_any.contiguous(), b = b_any.contiguous();
  float scale = 0.f;
  for (float v : b.span()) scale = std::max(scale, std::abs(v));
  for (int64_t i = 0; i < a.numel(); ++i) {
    if (rtol == 0) {
      ASSERT_EQ(a[i], b[i]) << what << " at " << i;
    } else {
      ASSERT_NEAR(a[i], b[i], rtol * scale) << what << " at " << i;
    }
  }
}

// One forward and backward of a fresh module from make() on x in `format`, dL/dy = dy (handed to
// backward in y's format, so the layer's own backward sees it as the engine would).
struct LayerRun {
  Tensor y, dx;
  std::vector<Tensor> param_grads, buffers;
};

LayerRun run(const std::function<std::unique_ptr<Module>()>& make, const Tensor& x, const Tensor& dy,
        MemoryFormat format) {
  auto m = make();
  testing::GradInput in(x.to_format(format));
  LayerRun r;
  r.y = m->forward(in.value());
  r.y.backward(r.y.ndim() == 4 ? dy.to_format(r.y.memory_format()) : dy);
  r.dx = in.grad();
  for (Parameter* p : m->parameters()) r.param_grads.push_back(p->grad.clone());
  for (auto& [name, t] : m->named_buffers()) r.buffers.push_back(t->clone());
  return r;
}

// The channels_last run equals the contiguous one; returns it for format checks.
LayerRun expect_matches_contiguous(const std::function<std::unique_ptr<Module>()>& make, const Shape& in_shape,
                              double rtol, const std::string& what) {
  const Tensor x = randn(in_shape, 1);
  const Tensor dy = randn(make()->output_shape(in_shape), 2);
  const LayerRun a = run(make, x, dy, kNCHW), b = run(make, x, dy, kNHWC);
  EXPECT_FALSE(a.y.is_channels_last()) << what;
  expect_same(b.y, a.y, rtol, what + ": y");
  expect_same(b.dx, a.dx, rtol, what + ": dx");
  for (size_t i = 0; i < a.param_grads.size(); ++i)
    expect_same(b.param_grads[i], a.param_grads[i], rtol, what + ": grad of parameter " + std::to_string(i));
  for (size_t i = 0; i < a.buffers.size(); ++i)
    expect_same(b.buffers[i], a.buffers[i], rtol, what + ": buffer " + std::to_string(i));
  return b;
}

std::function<std::unique_ptr<Module>()> seeded(std::function<std::unique_ptr<Module>()> make) {
  return [make] {
    auto m = make();
    init_parameters(*m, 5);
    return m;
  };
}

TEST(ChannelsLast, TensorConversionsKeepLogicalValues) {
  const Tensor x = randn({2, 3, 4, 5}, 3);
  const Tensor cl = x.to_channels_last();
  EXPECT_TRUE(cl.is_channels_last());
  EXPECT_EQ(cl.shape(), x.shape());
  // storage (N, H, W, C): element (n, c, h, w) at ((n*H + h)*W + w)*C + c
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t h = 0; h < 4; ++h)
        for (int64_t w = 0; w < 5; ++w)
          ASSERT_EQ(cl[((n * 4 + h) * 5 + w) * 3 + c], x[((n * 3 + c) * 4 + h) * 5 + w]);
  expect_same(cl.contiguous(), x, 0, "round trip");
  EXPECT_FALSE(cl.contiguous().is_channels_last());
  EXPECT_TRUE(cl.clone().is_channels_last());
  Tensor dst = Tensor::empty(x.shape());
  dst.copy_from(cl);  // by logical position
  expect_same(dst, x, 0, "copy_from");
  // C == 1: the same storage, relabelled (no copy)
  const Tensor one = randn({2, 1, 3, 3}, 4);
  EXPECT_EQ(one.to_channels_last().data(), one.data());
  EXPECT_TRUE(one.to_channels_last().is_contiguous(kNHWC) && one.to_channels_last().is_contiguous(kNCHW));
  EXPECT_FALSE(cl.is_contiguous(kNCHW));
}

TEST(ChannelsLast, ReshapeAndFlattenGiveLogicalOrder) {
  Tensor x = Tensor::empty({2, 3, 4, 5});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(i);  // value = NCHW index
  const Tensor cl = x.to_channels_last();
  for (const Tensor& y : {cl.reshape({2, -1}), reshape(cl, {2, -1}), view(cl, {120}), flatten(cl)}) {
    EXPECT_FALSE(y.is_channels_last());
    for (int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(y[i], static_cast<float>(i));
  }
  Flatten f;
  const Tensor y = f.forward(cl);
  for (int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(y[i], static_cast<float>(i));
}

TEST(ChannelsLast, Conv2dMatchesContiguous) {
  for (int64_t c_in : {1, 3, 16}) {
    const std::string what = "Conv2d(" + std::to_string(c_in) + "->8, k=3, stride=2, pad=1)";
    LayerRun b = expect_matches_contiguous(seeded([c_in] {
                                        return std::make_unique<Conv2d>(Conv2dOptions{
                                            .in_channels = c_in, .out_channels = 8, .kernel = 3, .stride = 2,
                                            .padding = 1});
                                      }),
                                      {4, c_in, 9, 9}, 1e-5, what);
    EXPECT_TRUE(b.y.is_channels_last()) << what << ": the output follows a channels_last input";
  }
}

TEST(ChannelsLast, Conv2dBackwardAcceptsEitherFormat) {
  Conv2d conv(Conv2dOptions{.in_channels = 4, .out_channels = 6, .kernel = 3, .padding = 1});
  init_parameters(conv, 5);
  const Tensor x = randn({2, 4, 5, 5}, 1).to_channels_last();
  const Tensor dy = randn({2, 6, 5, 5}, 2);
  Tensor dx[2];
  for (int k = 0; k < 2; ++k) {
    conv.forward(x);  // no input requires grad: nothing recorded, backward called directly
    dx[k] = conv.backward(k == 0 ? dy : dy.to_channels_last());
  }
  EXPECT_TRUE(dx[0].is_channels_last());
  expect_same(dx[0], dx[1], 0, "dx from a contiguous and a channels_last dy");
}

TEST(ChannelsLast, BatchNorm2dMatchesContiguous) {
  for (bool train : {true, false}) {
    auto make = [train] {
      auto bn = std::make_unique<BatchNorm2d>(BatchNormOptions{.num_features = 6});
      // Non-trivial affine parameters and running statistics, so eval differs from train.
      for (auto& [name, p] : bn->named_parameters()) p->value.copy_from(randn(p->value.shape(), 7));
      bn->named_buffers()[0].second->copy_from(randn({6}, 8));
      bn->train(train);
      return std::unique_ptr<Module>(std::move(bn));
    };
    LayerRun b = expect_matches_contiguous(make, {4, 6, 7, 7}, 1e-5, train ? "BatchNorm2d train" : "BatchNorm2d eval");
    EXPECT_TRUE(b.y.is_channels_last());
  }
}

TEST(ChannelsLast, ReLUExact) {
  LayerRun b = expect_matches_contiguous([] { return std::make_unique<ReLU>(); }, {3, 5, 4, 4}, 0, "ReLU layer");
  EXPECT_TRUE(b.y.is_channels_last());
  struct ReluOp : Module {
    Tensor forward(const Tensor& x) override { return relu(gelu(x)); }
    std::string describe() const override { return "relu(gelu)"; }
    Shape output_shape(const Shape& in) const override { return in; }
  };
  b = expect_matches_contiguous([] { return std::make_unique<ReluOp>(); }, {3, 5, 4, 4}, 0, "relu/gelu ops");
  EXPECT_TRUE(b.y.is_channels_last());
}

TEST(ChannelsLast, MaxPool2dExact) {
  for (auto o : {MaxPool2dOptions{.kernel = 2}, MaxPool2dOptions{.kernel = 3, .stride = 2, .padding = 1},
                 MaxPool2dOptions{.kernel = 2, .stride = 1, .dilation = 2}}) {
    const std::string what = MaxPool2d(o).describe();
    LayerRun b = expect_matches_contiguous([o] { return std::make_unique<MaxPool2d>(o); }, {2, 5, 9, 9}, 0, what);
    EXPECT_TRUE(b.y.is_channels_last()) << what;
  }
}

TEST(ChannelsLast, AdaptiveAvgPool2dExact) {
  LayerRun b = expect_matches_contiguous([] { return std::make_unique<AdaptiveAvgPool2d>(1); }, {3, 8, 7, 7}, 0,
                                    "global pooling");
  EXPECT_FALSE(b.y.is_channels_last()) << "(N, C, 1, 1) is returned contiguous";
  expect_matches_contiguous([] { return std::make_unique<AdaptiveAvgPool2d>(3, 2); }, {3, 8, 7, 7}, 0,
                            "AdaptiveAvgPool2d(3x2)");
}

TEST(ChannelsLast, DropoutMasksUnchanged) {
  auto make = [] {
    auto d = std::make_unique<Dropout>(0.3f);
    d->seed(11, 0, 0);
    return std::unique_ptr<Module>(std::move(d));
  };
  expect_matches_contiguous(make, {4, 6, 5, 5}, 0, "Dropout(0.3)");
}

// relu(bn(conv(x)) + x): (no conv bias: BatchNorm makes its gradient 0 up to rounding) the residual add of two channels_last operands stays channels_last.
struct Residual : Module {
  Conv2d& conv = register_module("conv", std::make_unique<Conv2d>(
                                             Conv2dOptions{.in_channels = 4, .out_channels = 4, .kernel = 3, .padding = 1, .bias = false}));
  BatchNorm2d& bn = register_module("bn", std::make_unique<BatchNorm2d>(BatchNormOptions{.num_features = 4}));
  Tensor forward(const Tensor& x) override { return relu(bn(conv(x)) + x); }
  std::string describe() const override { return "Residual"; }
  Shape output_shape(const Shape& in) const override { return in; }
};

TEST(ChannelsLast, ResidualAddMatchesContiguous) {
  LayerRun b = expect_matches_contiguous(seeded([] { return std::make_unique<Residual>(); }), {4, 4, 6, 6}, 1e-5,
                                    "residual block");
  EXPECT_TRUE(b.y.is_channels_last());
}

TEST(ChannelsLast, AddOfMixedFormatsIsContiguous) {
  const Tensor a = randn({2, 3, 4, 4}, 1), b = randn({2, 3, 4, 4}, 2), dy = randn({2, 3, 4, 4}, 3);
  testing::GradInput ga(a.to_channels_last()), gb(b);
  const Tensor y = ga.value() * 2.f + gb.value();  // channels_last + contiguous
  EXPECT_FALSE(y.is_channels_last());
  for (int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(y[i], a[i] * 2.f + b[i]);
  y.backward(dy);
  for (int64_t i = 0; i < dy.numel(); ++i) {
    ASSERT_EQ(ga.grad()[i], dy[i] * 2.f);
    ASSERT_EQ(gb.grad()[i], dy[i]);
  }
  testing::GradInput gc(a.to_channels_last());
  const Tensor same = gc.value() + gc.value();
  EXPECT_TRUE(same.is_channels_last());
  expect_same(same, a * 2.f, 0, "a + a");
}

TEST(ChannelsLast, EngineSumsGradientsOfBothFormats) {
  // u (channels_last) feeds relu(u) (its gradient comes back channels_last) and relu(u.contiguous())
  // (contiguous): d/dx of sum(w1 * relu(u)) + sum(w2 * relu(u)), u = 2x, is 2 (w1 + w2) [u > 0].
  const Tensor x = randn({2, 3, 4, 4}, 1), w1 = randn({2, 3, 4, 4}, 2), w2 = randn({2, 3, 4, 4}, 3);
  testing::GradInput gx(x);
  const Tensor u = to_channels_last(gx.value() * 2.f);
  ASSERT_TRUE(u.is_channels_last());
  const Tensor loss = sum(relu(u) * w1.to_channels_last()) + sum(relu(u.contiguous()) * w2);
  loss.backward();
  for (int64_t i = 0; i < x.numel(); ++i)
    ASSERT_FLOAT_EQ(gx.grad()[i], x[i] > 0 ? 2.f * (w1[i] + w2[i]) : 0.f) << i;
}

TEST(ChannelsLast, ConversionOpsAreRecorded) {
  const Tensor x = randn({2, 3, 4, 4}, 1), dy = randn({2, 3, 4, 4}, 2);
  testing::GradInput gx(x);
  const Tensor y = contiguous(to_channels_last(gx.value()));
  EXPECT_FALSE(y.is_channels_last());
  y.backward(dy);
  expect_same(gx.grad(), dy, 0, "the gradient through two conversions");
}

TEST(ChannelsLast, ResNet8MatchesContiguous) {
  const ResNetOptions o{.in_channels = 3, .blocks_per_stage = 1};
  const Tensor x = randn({8, 3, 16, 16}, 1);
  Tensor target = Tensor::empty({8});
  for (int64_t i = 0; i < 8; ++i) target[i] = static_cast<float>(i % 10);
  double loss[2];
  std::vector<Tensor> grads[2];
  for (int k = 0; k < 2; ++k) {
    ResNet m(o);
    init_parameters(m, 3);
    const Tensor l = cross_entropy(m.forward(x.to_format(k ? kNHWC : kNCHW)), target);
    loss[k] = l[0];
    l.backward();
    for (Parameter* p : m.parameters()) grads[k].push_back(p->grad.clone());
  }
  EXPECT_NEAR(loss[1], loss[0], 1e-5 * std::abs(loss[0]));
  ASSERT_EQ(grads[0].size(), grads[1].size());
  for (size_t i = 0; i < grads[0].size(); ++i)
    expect_same(grads[1][i], grads[0][i], 1e-5, "ResNet-8 grad of parameter " + std::to_string(i));
}

}  // namespace
}  // namespace lockstep
