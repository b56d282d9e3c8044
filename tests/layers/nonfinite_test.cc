// Non-finite values are never hidden: every layer and loss propagates NaN, +inf and -inf forward
// and backward exactly as PyTorch does (goldens "nonfinite_*" from tests/golden/gen_layers.py; NaN
// positions must match exactly, infinities by value, finite values within tolerance). Dropout has
// no golden (its masks come from Philox), so its reference is torch's formula y = x * mask.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/flatten.h"
#include "layers/linear.h"
#include "layers/loss.h"
#include "layers/max_pool2d.h"
#include "layers/relu.h"
#include "tests/layers/golden_module.h"

namespace lockstep {
namespace {

using testing::at;
using testing::expect_module_case;
using testing::layers_golden;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

BatchNormOptions bn(int64_t c) { return BatchNormOptions{.num_features = c}; }

TEST(NonFinite, Linear) {
  Linear m(4, 3);  // x (3, 4) with NaN, +inf, -inf -> y (3, 3)
  expect_module_case(m, "nonfinite_linear");
}

TEST(NonFinite, Conv2d) {
  Conv2d m({.in_channels = 2, .out_channels = 3, .kernel = 3, .padding = 1});  // (2,2,5,5) -> (2,3,5,5)
  expect_module_case(m, "nonfinite_conv");
}

TEST(NonFinite, MaxPool2dKernel2Stride2) {
  for (bool train : {true, false}) {  // train: positions saved for backward; eval: values only
    MaxPool2d m(2);  // x (1,2,6,10) -> (1,2,3,5): NaN wins, the last NaN takes the gradient
    m.train(train);
    expect_module_case(m, "nonfinite_pool_k2s2", {0, 0}, {0, 0});
  }
}

TEST(NonFinite, MaxPool2dKernel2Stride2FullVectorAndTail) {
  MaxPool2d m(2);  // x (1,3,4,70) -> (1,3,2,35): 16 outputs a vector, then a masked tail
  expect_module_case(m, "nonfinite_pool_k2s2_wide", {0, 0}, {0, 0});
}

TEST(NonFinite, MaxPool2dKernel3Stride2) {
  MaxPool2d m(3, 2);  // x (1,2,6,10) -> (1,2,2,4), overlapping windows
  expect_module_case(m, "nonfinite_pool_k3s2", {0, 0}, {0, 0});
}

TEST(NonFinite, ReLUKeepsNaNAndPassesItsGradient) {
  ReLU m;  // relu(NaN) = NaN and threshold_backward passes dy there
  expect_module_case(m, "nonfinite_relu", {0, 0}, {0, 0});
}

TEST(NonFinite, Flatten) {
  Flatten m;
  expect_module_case(m, "nonfinite_flatten", {0, 0}, {0, 0});
}

TEST(NonFinite, BatchNorm1dTrainMakesRunningStatsNonFinite) {
  BatchNorm1d m(bn(5));  // channel 0 NaN, 1 +inf first, 2 +inf, 3 -inf: running_var NaN, not clamped
  expect_module_case(m, "nonfinite_bn1d_train");
}

TEST(NonFinite, BatchNorm1dEval) {
  BatchNorm1d m(bn(5));
  m.eval();
  expect_module_case(m, "nonfinite_bn1d_eval");
}

TEST(NonFinite, BatchNorm1dCumulativeAverage) {
  BatchNormOptions o = bn(5);
  o.momentum = std::nullopt;
  BatchNorm1d m(o);
  expect_module_case(m, "nonfinite_bn1d_cumulative");
}

TEST(NonFinite, BatchNorm1dWithoutRunningStatsEval) {
  BatchNormOptions o = bn(5);
  o.track_running_stats = false;
  BatchNorm1d m(o);
  m.eval();
  expect_module_case(m, "nonfinite_bn1d_notrack_eval");
}

TEST(NonFinite, BatchNorm2dTrain) {
  BatchNorm2d m(bn(4));  // +inf as a channel's first element, NaN, -inf
  expect_module_case(m, "nonfinite_bn2d_train");
}

TEST(NonFinite, BatchNorm2dEval) {
  BatchNorm2d m(bn(4));
  m.eval();
  expect_module_case(m, "nonfinite_bn2d_eval");
}

void expect_loss_case(Loss& loss, const std::string& c) {
  SCOPED_TRACE("case " + c);
  const auto& g = layers_golden();
  const float value = static_cast<float>(loss.forward(at(g, c + ".input"), at(g, c + ".target")));
  EXPECT_ALLCLOSE_NAN(Tensor::full({1}, value), at(g, c + ".loss"), 1e-5, 1e-5);
  Tensor grad = loss.backward(at(g, c + ".grad_output")[0]);
  EXPECT_EQ(grad.shape(), at(g, c + ".input").shape());
  EXPECT_ALLCLOSE_NAN(grad, at(g, c + ".grad"), 1e-6, 1e-4);
}

TEST(NonFinite, CrossEntropyLoss) {
  // One row each: NaN logit; +inf at / off the target; -inf off / at the target (loss inf); all -inf.
  for (int row = 0; row < 6; ++row) {
    CrossEntropyLoss loss;
    expect_loss_case(loss, "nonfinite_ce_row" + std::to_string(row));
  }
  CrossEntropyLoss mean;
  expect_loss_case(mean, "nonfinite_ce_mean");
  CrossEntropyLoss sum(Reduction::kSum);  // -inf off the target only: finite loss, zero gradient there
  expect_loss_case(sum, "nonfinite_ce_finite");
}

TEST(NonFinite, MSELoss) {
  MSELoss loss;
  expect_loss_case(loss, "nonfinite_mse");
}

// torch's dropout is input * mask with mask in {0, 1/(1-p)}, so a dropped NaN or inf gives NaN
// (0 * inf), not 0; backward is dy * mask the same way. The mask is learned from a finite run with
// the same seed and step.
TEST(NonFinite, DropoutMultipliesByTheMaskAsPyTorchDoes) {
  for (float p : {0.5f, 1.f}) {
    SCOPED_TRACE("p " + std::to_string(p));
    constexpr int64_t kN = 64;
    Dropout probe(p), d(p);
    probe.seed(7, 0, 0);
    d.seed(7, 0, 0);
    const Tensor mask = probe.forward(Tensor::full({kN}, 1.f));  // 0 or 1/(1-p)
    Tensor x = Tensor::full({kN}, 2.f), dy = Tensor::full({kN}, 3.f);
    for (int64_t i = 0; i < kN; i += 3) x[i] = i % 2 ? kNaN : (i % 4 ? kInf : -kInf);
    for (int64_t i = 1; i < kN; i += 5) dy[i] = kNaN;
    Tensor y = d.forward(x);
    Tensor dx = d.backward(dy);
    int64_t dropped_nonfinite = 0;
    for (int64_t i = 0; i < kN; ++i) {
      SCOPED_TRACE("element " + std::to_string(i));
      dropped_nonfinite += mask[i] == 0.f && !std::isfinite(x[i]);
      EXPECT_ALLCLOSE_NAN(Tensor::full({1}, y[i]), Tensor::full({1}, x[i] * mask[i]), 0, 1e-6);
      EXPECT_ALLCLOSE_NAN(Tensor::full({1}, dx[i]), Tensor::full({1}, dy[i] * mask[i]), 0, 1e-6);
    }
    EXPECT_GT(dropped_nonfinite, 0) << "the case must drop a non-finite input";
  }
}

}  // namespace
}  // namespace lockstep
