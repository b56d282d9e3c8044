// Every op's backward against central finite differences of its forward, in float: a second
// reference independent of PyTorch. L = sum(dy * op(x)); dL/dx[i] ~ (L(x + eps e_i) - L(x - eps e_i)) / 2 eps.
#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <random>

#include "runtime/autograd.h"
#include "runtime/grad_mode.h"
#include "runtime/ops.h"
#include "tests/golden_io.h"
#include "tests/runtime/ops_cases.h"

namespace lockstep {
namespace {

constexpr float kEps = 1e-2f;
constexpr double kTol = 1e-2;  // |analytic - numeric| <= kTol * (1 + |numeric|)

float loss(const testing::OpFn& fn, const std::vector<Tensor>& xs, const Tensor& dy) {
  NoGradGuard no_grad;
  Tensor y = fn(xs);
  float l = 0.f;
  for (int64_t i = 0; i < y.numel(); ++i) l += dy[i] * y[i];
  return l;
}

TEST(OpsGradcheck, BackwardMatchesFiniteDifferences) {
  // Inputs: the golden cases' shapes, values drawn here (uniform in [-2, 2], kept 0.1 away from 0
  // so relu and leaky_relu are differentiable within eps); the special-value cases are left out.
  const auto golden = testing::load_golden("ops_golden.safetensors");
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> uni(-2.f, 2.f);
  int checked = 0;
  for (const auto& [name, fn] : testing::op_cases()) {
    if (name.ends_with(".special")) continue;
    SCOPED_TRACE(name);
    std::deque<Parameter> params;
    std::vector<Tensor> xs;
    for (int k = 0; golden.count(name + ".x" + std::to_string(k)); ++k) {
      Tensor x = Tensor::empty(testing::at(golden, name + ".x" + std::to_string(k)).shape());
      for (float& v : x.span()) {
        v = uni(rng);
        if (std::fabs(v) < 0.1f) v += v < 0.f ? -0.1f : 0.1f;
      }
      Parameter& p = params.emplace_back(Parameter{x, Tensor::zeros(x.shape()), nullptr});
      make_leaf(p);
      xs.push_back(p.value);
    }
    ASSERT_FALSE(xs.empty());
    Tensor y = fn(xs);
    Tensor dy = Tensor::empty(y.shape());
    for (float& v : dy.span()) v = uni(rng);
    y.backward(dy);

    std::vector<Tensor> plain;
    for (const Tensor& x : xs) plain.push_back(x.detach());
    for (size_t k = 0; k < plain.size(); ++k) {
      for (int64_t i = 0; i < plain[k].numel(); ++i) {
        float* v = plain[k].data() + i;  // shares storage with the parameter: restored below
        const float saved = *v;
        *v = saved + kEps;
        const float up = loss(fn, plain, dy);
        *v = saved - kEps;
        const float down = loss(fn, plain, dy);
        *v = saved;
        const double numeric = (double(up) - double(down)) / (2.0 * kEps);
        const double analytic = params[k].grad[i];
        EXPECT_NEAR(analytic, numeric, kTol * (1.0 + std::fabs(numeric))) << "input " << k << " element " << i;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 1000);
}

}  // namespace
}  // namespace lockstep
