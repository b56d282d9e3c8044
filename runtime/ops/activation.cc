// Elementwise activations: relu, leaky_relu, gelu (erf and tanh), silu, sigmoid, tanh. Forward and
// backward follow the formulas of PyTorch's CPU kernels, in float, so results agree to rounding.
#include <cmath>
#include <numbers>
#include <string>

#include "runtime/autograd.h"
#include "runtime/ops.h"
#include "runtime/ops/op_util.h"

namespace lockstep {
namespace {

// y[i] = f(x[i]). When recorded, backward gives dx[i] = df(g[i], x[i], y[i]) and saves x and/or y
// as the formula needs.
template <typename F, typename DF>
Tensor unary(const char* op, const Tensor& x, bool save_x, bool save_y, F f, DF df) {
  ops_detail::check_input(op, x);
  Tensor y = Tensor::empty(x.shape(), x.memory_format());  // elementwise: any format, kept
  const float* xp = x.data();
  float* yp = y.data();
  const int64_t n = x.numel();
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) yp[i] = f(xp[i]);
  if (!should_record({&x})) return y;
  Tensor kx = save_x ? x.detach() : Tensor(), ky = save_y ? y.detach() : Tensor();  // detached: no cycle via y
  return record(op, y, {x}, [kx, ky, df, shape = x.shape()](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(shape, g.memory_format());  // g comes in y's format, which x has
    const float* gp = g.data();
    const float* xs = kx.defined() ? kx.data() : nullptr;
    const float* ys = ky.defined() ? ky.data() : nullptr;
    float* d = dx.data();
    const int64_t n = dx.numel();
    // One loop per saved operand, with no conditional load inside, so each vectorises.
    if (xs && ys) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) d[i] = df(gp[i], xs[i], ys[i]);
    } else if (xs) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) d[i] = df(gp[i], xs[i], 0.f);
    } else {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) d[i] = df(gp[i], 0.f, ys[i]);
    }
    return {dx};
  });
}

float sigmoid_of(float v) { return 1.f / (1.f + std::exp(-v)); }

}  // namespace

Tensor relu(const Tensor& x) {
  // clamp_min: NaN stays NaN (`v > 0 ? v : 0` would zero it). Backward as threshold_backward on
  // the output: dy passes unless y <= 0, so a NaN output passes its gradient.
  return unary(
      "relu", x, false, true, [](float v) { return v < 0.f ? 0.f : v; },
      [](float g, float, float y) { return y <= 0.f ? 0.f : g; });
}

Tensor add_relu(const Tensor& a, const Tensor& b) {
  ops_detail::check_input("add_relu", a);
  ops_detail::check_input("add_relu", b);
  if (a.shape() != b.shape() || a.memory_format() != b.memory_format()) return relu(add(a, b));
  Tensor y = Tensor::empty(a.shape(), a.memory_format());
  const float* ap = a.data();
  const float* bp = b.data();
  float* yp = y.data();
  const int64_t n = y.numel();
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float v = ap[i] + bp[i];
    yp[i] = v < 0.f ? 0.f : v;  // relu's clamp_min: NaN stays NaN
  }
  if (!should_record({&a, &b})) return y;
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  Tensor ky = y.detach();
  return record("add_relu", y, {a, b}, [ky, need_a, need_b](const Tensor& g) -> std::vector<Tensor> {
    // g comes in y's format; one masked gradient serves both inputs (add's backward is the identity).
    Tensor dx = Tensor::empty(ky.shape(), g.memory_format());
    const float* gp = g.data();
    const float* ys = ky.data();
    float* d = dx.data();
    const int64_t n = dx.numel();
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) d[i] = ys[i] <= 0.f ? 0.f : gp[i];
    return {need_a ? dx : Tensor(), need_b ? dx : Tensor()};
  });
}

Tensor leaky_relu(const Tensor& x, float negative_slope) {
  return unary(
      "leaky_relu", x, true, false, [negative_slope](float v) { return v > 0.f ? v : v * negative_slope; },
      [negative_slope](float g, float v, float) { return v > 0.f ? g : g * negative_slope; });
}

Tensor gelu(const Tensor& x, std::string_view approximate) {
  if (approximate == "none") {
    constexpr float kAlpha = static_cast<float>(std::numbers::sqrt2 / 2);                     // 1/sqrt(2)
    constexpr float kBeta = static_cast<float>(std::numbers::inv_sqrtpi * std::numbers::sqrt2 / 2);  // 1/sqrt(2 pi)
    return unary(
        "gelu", x, true, false, [](float v) { return v * 0.5f * (1.f + std::erf(v * kAlpha)); },
        [](float g, float v, float) {
          const float cdf = 0.5f * (1.f + std::erf(v * kAlpha));
          const float pdf = kBeta * std::exp(-0.5f * v * v);
          return g * (cdf + v * pdf);
        });
  }
  if (approximate == "tanh") {
    constexpr float kBeta = static_cast<float>(std::numbers::sqrt2 * std::numbers::inv_sqrtpi);  // sqrt(2/pi)
    constexpr float kKappa = 0.044715f;
    return unary(
        "gelu", x, true, false,
        [](float v) { return 0.5f * v * (1.f + std::tanh(kBeta * (v + kKappa * v * v * v))); },
        [](float g, float v, float) {
          const float t = std::tanh(kBeta * (v + kKappa * v * v * v));
          const float left_derivative = 0.5f * (1.f + t);
          const float right_derivative = 0.5f * v * (1.f - t * t) * kBeta * (1.f + 3.f * kKappa * v * v);
          return g * (left_derivative + right_derivative);
        });
  }
  LOCKSTEP_FAIL_IF(true) << "gelu: approximate must be \"none\" or \"tanh\", got \"" << std::string(approximate)
                         << "\" (input shape " << shape_str(x.shape()) << ")";
  return Tensor();
}

Tensor silu(const Tensor& x) {
  return unary(
      "silu", x, true, false, [](float v) { return v / (1.f + std::exp(-v)); },
      [](float g, float v, float) {
        const float s = sigmoid_of(v);
        return g * s * (1.f + v * (1.f - s));
      });
}

Tensor sigmoid(const Tensor& x) {
  return unary(
      "sigmoid", x, false, true, sigmoid_of, [](float g, float, float y) { return g * (1.f - y) * y; });
}

Tensor tanh(const Tensor& x) {
  return unary(
      "tanh", x, false, true, [](float v) { return std::tanh(v); },
      [](float g, float, float y) { return g * (1.f - y * y); });
}

}  // namespace lockstep
