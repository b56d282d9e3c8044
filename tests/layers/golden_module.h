// Replays one module case of tests/fixtures/layers_golden.safetensors (written by tests/golden/gen_layers.py
// from PyTorch) on a C++ module: loads its state through state_dict(), runs every recorded
// forward/backward, and compares outputs, input gradients, buffers and accumulated parameter
// gradients. Key layout is documented at the top of gen_layers.py.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <string>

#include "layers/layer.h"
#include "tests/golden_io.h"

namespace lockstep::testing {

using Golden = std::map<std::string, Tensor>;

inline const Golden& layers_golden() {
  static const Golden g = load_golden("layers_golden.safetensors");
  return g;
}

inline bool has(const Golden& g, const std::string& key) { return g.count(key) != 0; }

// As torch.allclose(equal_nan=True), infinities compared by value: NaN positions must match exactly,
// an infinity must meet the same infinity, finite values |a - b| <= atol + rtol * |b|. For goldens
// with NaN / inf inputs, where a hidden NaN (a finite value where PyTorch has NaN) must fail.
inline ::testing::AssertionResult allclose_nan(const Tensor& a, const Tensor& b, double atol, double rtol) {
  if (a.numel() != b.numel())
    return ::testing::AssertionFailure() << "numel " << a.numel() << " vs " << b.numel();
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a[i], y = b[i];
    bool ok;
    if (std::isnan(x) || std::isnan(y)) {
      ok = std::isnan(x) && std::isnan(y);
    } else if (std::isinf(x) || std::isinf(y)) {
      ok = x == y;
    } else {
      ok = std::fabs(x - y) <= atol + rtol * std::fabs(y);
    }
    if (!ok) {
      if (first < 0) first = i;
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << a.numel() << " elements differ; first at "
                                       << first << ": " << a[first] << " vs " << b[first];
}

#define EXPECT_ALLCLOSE_NAN(a, b, atol, rtol) \
  EXPECT_TRUE(::lockstep::testing::allclose_nan((a), (b), (atol), (rtol)))

struct Tolerance {
  double atol = 1e-5, rtol = 1e-4;
};

// Copies {prefix}{name} into every state_dict entry, and checks the module's state_dict names are
// exactly PyTorch's (no entry missing on either side).
inline void load_state(Module& m, const Golden& g, const std::string& prefix) {
  std::set<std::string> expected, got;
  for (const auto& [key, t] : g)
    if (key.rfind(prefix, 0) == 0) expected.insert(key.substr(prefix.size()));
  for (auto& [name, t] : m.state_dict()) {
    got.insert(name);
    auto it = g.find(prefix + name);
    if (it == g.end()) continue;
    // golden_io.py stores a 0-dim tensor (num_batches_tracked) as shape (1): np.ascontiguousarray
    // returns at least one dimension.
    if (t->ndim() > 0) {
      ASSERT_EQ(t->shape(), it->second.shape()) << name;
    } else {
      ASSERT_EQ(it->second.numel(), 1) << name;
    }
    t->copy_from(it->second);
  }
  EXPECT_EQ(got, expected) << "state_dict names differ from PyTorch's";
}

// Runs case c on m in m's current mode. Buffers are compared exactly in count
// (num_batches_tracked) and with `out` tolerance otherwise; NaN must sit exactly where PyTorch's is.
inline void expect_module_case(Layer& m, const std::string& c, Tolerance out = {}, Tolerance grad = {}) {
  SCOPED_TRACE("case " + c + (m.is_training() ? " (train)" : " (eval)"));
  const Golden& g = layers_golden();
  ASSERT_TRUE(has(g, c + ".x0")) << "no golden case " << c;
  load_state(m, g, c + ".state.");
  m.zero_grad();
  for (int k = 0; has(g, c + ".x" + std::to_string(k)); ++k) {
    const std::string ks = std::to_string(k);
    SCOPED_TRACE("call " + ks);
    // x as a graph leaf, so backward yields dL/dx in its .grad.
    Parameter x{at(g, c + ".x" + ks).clone(), Tensor::zeros(at(g, c + ".x" + ks).shape()), nullptr};
    make_leaf(x);
    Tensor y = m.forward(x.value);
    EXPECT_EQ(y.shape(), at(g, c + ".y" + ks).shape());
    EXPECT_ALLCLOSE_NAN(y, at(g, c + ".y" + ks), out.atol, out.rtol);
    for (auto& [name, b] : m.named_buffers()) {
      SCOPED_TRACE("buffer " + name);
      EXPECT_ALLCLOSE_NAN(*b, at(g, c + ".after" + ks + "." + name), out.atol, out.rtol);
    }
    y.backward(at(g, c + ".dy" + ks).clone());
    const Tensor& dx = x.grad;
    EXPECT_EQ(dx.shape(), at(g, c + ".dx" + ks).shape());
    EXPECT_ALLCLOSE_NAN(dx, at(g, c + ".dx" + ks), grad.atol, grad.rtol);
  }
  for (auto& [name, p] : m.named_parameters()) {
    SCOPED_TRACE("grad of " + name);
    EXPECT_ALLCLOSE_NAN(p->grad, at(g, c + ".grad." + name), grad.atol, grad.rtol);
  }
}

}  // namespace lockstep::testing
