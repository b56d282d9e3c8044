// The ops of runtime/ops.h against PyTorch (tests/golden/gen_ops.py): outputs and input gradients
// of every case, recording only when an input requires grad, and one-line errors on bad shapes.
#include "runtime/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <set>

#include "runtime/autograd.h"
#include "runtime/check.h"
#include "runtime/grad_mode.h"
#include "tests/golden_io.h"
#include "tests/runtime/ops_cases.h"

namespace lockstep {
namespace {

using Golden = std::map<std::string, Tensor>;

const Golden& golden() {
  static const Golden g = testing::load_golden("ops_golden.safetensors");
  return g;
}

// allclose with torch's equal_nan=True, and infinities equal only to themselves; shapes must match.
::testing::AssertionResult close(const Tensor& a, const Tensor& b, double atol, double rtol) {
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(a.shape()) << " vs " << shape_str(b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a[i], y = b[i];
    const bool ok = (std::isnan(x) && std::isnan(y)) || x == y || std::fabs(x - y) <= atol + rtol * std::fabs(y);
    if (!ok) return ::testing::AssertionFailure() << "element " << i << ": " << x << " vs torch " << y;
  }
  return ::testing::AssertionSuccess();
}

std::set<std::string> golden_cases() {
  std::set<std::string> names;
  for (const auto& [key, t] : golden())
    if (key.size() > 2 && key.ends_with(".y")) names.insert(key.substr(0, key.size() - 2));
  return names;
}

std::vector<Tensor> inputs_of(const std::string& name) {
  std::vector<Tensor> xs;
  for (int k = 0; golden().count(name + ".x" + std::to_string(k)); ++k)
    xs.push_back(testing::at(golden(), name + ".x" + std::to_string(k)).clone());
  return xs;
}

// Parameters whose values are xs (graph leaves), or plain tensors where `leaf` is false.
struct Leaves {
  std::deque<Parameter> params;
  std::vector<Tensor> values;
};
Leaves make_leaves(const std::vector<Tensor>& xs, const std::vector<bool>& leaf) {
  Leaves l;
  for (size_t k = 0; k < xs.size(); ++k) {
    if (!leaf[k]) {
      l.values.push_back(xs[k]);
      continue;
    }
    Parameter& p = l.params.emplace_back(Parameter{xs[k], Tensor::zeros(xs[k].shape()), nullptr});
    make_leaf(p);
    l.values.push_back(p.value);
  }
  return l;
}

double rtol_of(const std::string& name) { return name.starts_with("matmul") ? 1e-4 : 1e-5; }
double atol_of(const std::string& name) { return name.starts_with("matmul") ? 1e-5 : 1e-6; }

TEST(OpsGolden, EveryGoldenCaseHasAnOpAndBack) {
  std::set<std::string> ours;
  for (const auto& [name, fn] : testing::op_cases()) ours.insert(name);
  EXPECT_EQ(golden_cases(), ours);
}

TEST(OpsGolden, OutputsAndGradientsMatchPyTorch) {
  for (const std::string& name : golden_cases()) {
    SCOPED_TRACE(name);
    const auto& fn = testing::op_cases().at(name);
    std::vector<Tensor> xs = inputs_of(name);
    Leaves l = make_leaves(xs, std::vector<bool>(xs.size(), true));
    Tensor y = fn(l.values);
    EXPECT_TRUE(close(y, testing::at(golden(), name + ".y"), atol_of(name), rtol_of(name)));
    ASSERT_TRUE(y.requires_grad());
    y.backward(testing::at(golden(), name + ".dy"));
    for (size_t k = 0; k < xs.size(); ++k)
      EXPECT_TRUE(close(l.params[k].grad, testing::at(golden(), name + ".dx" + std::to_string(k)), atol_of(name),
                        rtol_of(name)))
          << "gradient of input " << k;
  }
}

// Only the last input requires grad: it gets torch's gradient, the others none (and no work).
TEST(OpsGolden, GradientOfOneInputAmongSeveral) {
  int multi = 0;
  for (const std::string& name : golden_cases()) {
    std::vector<Tensor> xs = inputs_of(name);
    if (xs.size() < 2) continue;
    SCOPED_TRACE(name);
    ++multi;
    std::vector<bool> leaf(xs.size(), false);
    leaf.back() = true;
    Leaves l = make_leaves(xs, leaf);
    Tensor y = testing::op_cases().at(name)(l.values);
    y.backward(testing::at(golden(), name + ".dy"));
    EXPECT_TRUE(close(l.params[0].grad, testing::at(golden(), name + ".dx" + std::to_string(xs.size() - 1)),
                      atol_of(name), rtol_of(name)));
  }
  EXPECT_GE(multi, 20);
}

TEST(OpsRecording, NothingRecordedWithoutGradOrUnderNoGrad) {
  for (const std::string& name : golden_cases()) {
    SCOPED_TRACE(name);
    std::vector<Tensor> xs = inputs_of(name);
    EXPECT_FALSE(testing::op_cases().at(name)(xs).requires_grad());  // no input requires grad
    Leaves l = make_leaves(xs, std::vector<bool>(xs.size(), true));
    NoGradGuard no_grad;
    Tensor y = testing::op_cases().at(name)(l.values);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(close(y, testing::at(golden(), name + ".y"), atol_of(name), rtol_of(name)));
  }
}

TEST(OpsRecording, ReshapeKeepsTheGraph) {
  Parameter p{Tensor::from({2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6}), Tensor::zeros({2, 3}), nullptr};
  make_leaf(p);
  Tensor y = reshape(p.value * 2.f, {3, 2});
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  sum(flatten(y, 0)).backward();
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(p.grad[i], 2.f) << i;  // d(sum(2 p))/dp
}

// The message of the Error fn throws: one line with every expected piece.
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& pieces) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one with " << pieces[0];
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const std::string& p : pieces) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

TEST(OpsErrors, OneLineNamingTheOpAndTheShapes) {
  const Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4}), c = Tensor::zeros({4, 5});
  expect_error([&] { add(a, b); }, {"add", "(2, 3)", "(4)", "broadcast"});
  expect_error([&] { sub(a, b); }, {"sub", "(2, 3)", "(4)"});
  expect_error([&] { mul(Tensor::zeros({2, 3, 4, 4}), Tensor::zeros({1, 4, 1, 1})); }, {"mul", "(2, 3, 4, 4)", "(1, 4, 1, 1)"});
  expect_error([&] { matmul(a, c); }, {"matmul", "(2, 3)", "(4, 5)", "3", "4"});
  expect_error([&] { matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 4})); }, {"matmul", "(2, 2, 3)", "(3, 3, 4)", "batch"});
  expect_error([&] { matmul(b, b); }, {"matmul", "(4)"});
  expect_error([&] { reshape(a, {4, -1}); }, {"reshape", "(2, 3)", "(4, -1)"});
  expect_error([&] { view(a, {-1, -1}); }, {"view", "(2, 3)", "(-1, -1)"});
  expect_error([&] { flatten(a, 3); }, {"flatten", "dim 3", "(2, 3)"});
  expect_error([&] { cat({a, c}, 1); }, {"cat", "(4, 5)", "(2, 3)"});
  expect_error([&] { cat({a, Tensor::zeros({2, 3, 1})}, 0); }, {"cat", "(2, 3, 1)", "(2, 3)"});
  expect_error([&] { cat({}, 0); }, {"cat", "non-empty"});
  expect_error([&] { sum(a, {2}); }, {"sum", "dim 2", "(2, 3)"});
  expect_error([&] { mean(a, {1, -1}); }, {"mean", "more than once", "(2, 3)"});
  expect_error([&] { gelu(a, "exact"); }, {"gelu", "exact", "(2, 3)"});
  expect_error([&] { relu(Tensor()); }, {"relu", "undefined"});
}

TEST(OpsSemantics, EmptyAndZeroDimCases) {
  EXPECT_TRUE(std::isnan(mean(Tensor::zeros({0, 3}))[0]));      // as torch: mean of nothing is NaN
  EXPECT_EQ(sum(Tensor::zeros({0, 3}), {0}).shape(), (Shape{3}));  // sum of nothing is 0
  EXPECT_EQ(sum(Tensor::zeros({0, 3}), {0})[0], 0.f);
  EXPECT_EQ(sum(Tensor::full({}, 2.f)).shape(), Shape{});
  EXPECT_EQ(flatten(Tensor::full({}, 2.f)).shape(), (Shape{1}));
  Tensor z = matmul(Tensor::zeros({2, 0}), Tensor::zeros({0, 3}));  // empty inner dim: zeros
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(z[i], 0.f);
}

}  // namespace
}  // namespace lockstep
