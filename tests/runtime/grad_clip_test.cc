// Gradient norms and clipping against their formulas (torch.nn.utils.clip_grad_norm_ and
// clip_grad_value_); the PyTorch goldens of a whole step are in tests/trainer/loop_golden_test.cc.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "runtime/check.h"
#include "runtime/optim/grad_clip.h"

namespace lockstep {
namespace {

// Two parameters with gradients (3, -4) and (12): 2-norm 13, inf-norm 12, 1-norm 19.
struct Two {
  Parameter a, b;
  std::vector<Parameter*> ps{&a, &b};
  Two() {
    a.value = Tensor::zeros({2});
    b.value = Tensor::zeros({1});
    a.grad = Tensor::zeros({2});
    b.grad = Tensor::zeros({1});
    a.grad[0] = 3.f;
    a.grad[1] = -4.f;
    b.grad[0] = 12.f;
  }
};

TEST(GradClip, TotalNormOfAllGradientsTogether) {
  Two t;
  EXPECT_DOUBLE_EQ(total_grad_norm(t.ps, 2.0), 13.0);
  EXPECT_DOUBLE_EQ(total_grad_norm(t.ps, std::numeric_limits<double>::infinity()), 12.0);
  EXPECT_NEAR(total_grad_norm(t.ps, 1.0), 19.0, 1e-12);
  EXPECT_NEAR(total_grad_norm(t.ps, 3.0), std::cbrt(27.0 + 64.0 + 1728.0), 1e-9);
  EXPECT_THROW(total_grad_norm(t.ps, 0.5), Error);
}

TEST(GradClip, NormScalesByMaxNormOverTotalAndReturnsThePreClipNorm) {
  Two t;
  EXPECT_DOUBLE_EQ(clip_grad_norm(t.ps, 6.5, 2.0), 13.0);
  const double c = 6.5 / (13.0 + 1e-6);
  EXPECT_FLOAT_EQ(t.a.grad[0], float(3.0 * c));
  EXPECT_FLOAT_EQ(t.a.grad[1], float(-4.0 * c));
  EXPECT_FLOAT_EQ(t.b.grad[0], float(12.0 * c));
  Two u;  // below max_norm: untouched
  EXPECT_DOUBLE_EQ(clip_grad_norm(u.ps, 100.0, 2.0), 13.0);
  EXPECT_EQ(u.b.grad[0], 12.f);
}

TEST(GradClip, ValueClampsEveryElement) {
  Two t;
  clip_grad_value(t.ps, 3.5);
  EXPECT_EQ(t.a.grad[0], 3.f);
  EXPECT_EQ(t.a.grad[1], -3.5f);
  EXPECT_EQ(t.b.grad[0], 3.5f);
}

TEST(GradClip, NonFiniteNormLeavesGradientsAsTheyAre) {
  Two t;
  t.a.grad[0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(clip_grad_norm(t.ps, 1.0, 2.0)));
  EXPECT_EQ(t.b.grad[0], 12.f);
}

}  // namespace
}  // namespace lockstep
