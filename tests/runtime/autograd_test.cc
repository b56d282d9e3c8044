// The autograd engine (runtime/autograd.h): accumulation into .grad, summing over several paths,
// no-grad, errors on misuse, the grad-ready hook's timing, and the deterministic backward order.
#include "runtime/autograd.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "runtime/check.h"
#include "runtime/grad_mode.h"
#include "runtime/ops.h"
#include "runtime/optim/sgd.h"

namespace lockstep {
namespace {

// A graph leaf of `values`, its .grad zero.
struct Leaf {
  explicit Leaf(std::vector<float> values) {
    const int64_t n = static_cast<int64_t>(values.size());
    p.value = Tensor::from({n}, values);
    p.grad = Tensor::zeros({n});
    make_leaf(p);
  }
  Parameter p;
};

const std::vector<float> kW = {0.5f, -1.f, 2.f}, kX = {3.f, 4.f, -5.f};

TEST(Autograd, GradAccumulatesAcrossBackwardCallsUntilZeroGrad) {
  Leaf w(kW);
  const Tensor x = Tensor::from({3}, kX);
  sum(w.p.value * x).backward();  // d/dw sum(w x) = x
  sum(w.p.value * x).backward();  // a second graph adds into .grad, as PyTorch's .grad
  for (int i = 0; i < 3; ++i) EXPECT_EQ(w.p.grad[i], 2 * kX[i]) << i;
  Sgd opt({&w.p}, {.lr = 0.1f});
  opt.zero_grad();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(w.p.grad[i], 0.f) << i;
  sum(w.p.value * x).backward();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(w.p.grad[i], kX[i]) << i;
}

TEST(Autograd, DiamondSumsTheGradientsOfBothPaths) {
  Leaf w(kW);
  // a = 2w and b = 3w both read w; L = sum(a * b) = sum(6 w^2), so dL/dw = 12 w.
  Tensor a = w.p.value * 2.f, b = w.p.value * 3.f;
  sum(a * b).backward();
  for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(w.p.grad[i], 12 * kW[i]) << i;
  // One tensor used twice by one op: d/dw sum(w * w + w) = 2w + 1.
  Leaf v(kW);
  sum(v.p.value * v.p.value + v.p.value).backward();
  for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(v.p.grad[i], 2 * kW[i] + 1) << i;
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Leaf w(kW);
  Tensor y;
  {
    NoGradGuard no_grad;
    EXPECT_FALSE(grad_enabled());
    y = sum(relu(w.p.value * Tensor::from({3}, kX)));
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
  EXPECT_THROW(y.backward(), Error);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(w.p.grad[i], 0.f);
}

TEST(Autograd, BackwardOfANonScalarNeedsItsGradient) {
  Leaf w(kW);
  Tensor y = w.p.value * Tensor::from({3}, kX);  // (3)
  EXPECT_THROW(y.backward(), Error);
  EXPECT_THROW(y.backward(Tensor::zeros({2})), Error);  // grad of the wrong size
  y.backward(Tensor::from({3}, std::vector<float>{1.f, 2.f, 3.f}));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(w.p.grad[i], kX[i] * (i + 1)) << i;
}

TEST(Autograd, SecondBackwardThroughTheSameGraphThrows) {
  Leaf w(kW);
  Tensor loss = sum(w.p.value * Tensor::from({3}, kX));
  loss.backward();
  try {
    loss.backward();
    FAIL() << "second backward did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a second time"), std::string::npos) << e.what();
  }
  for (int i = 0; i < 3; ++i) EXPECT_EQ(w.p.grad[i], kX[i]) << i;  // the first one counted once
}

// A fused "layer" y = s * x with a one-element parameter s, accumulating s's gradient itself, as
// layers/layer.h's nodes do. Logs its name when it runs.
class FusedScale final : public Node {
 public:
  FusedScale(Parameter* s, const Tensor& x, std::vector<std::string>* log, std::string name)
      : Node({x.grad_fn(), s->value.grad_fn()}), s_(s), x_(x.detach()), log_(log), name_(std::move(name)) {}
  std::vector<Tensor> apply(const Tensor& g) override {
    log_->push_back(name_);
    float ds = 0.f;
    Tensor dx = Tensor::empty(x_.shape());
    for (int64_t i = 0; i < g.numel(); ++i) {
      ds += g[i] * x_[i];
      dx[i] = g[i] * s_->value[0];
    }
    s_->grad[0] += ds;
    return {dx, Tensor()};  // s's gradient is already in s->grad
  }
  std::string name() const override { return name_; }
  std::vector<Parameter*> accumulates() const override { return {s_}; }
  static Tensor call(Parameter* s, const Tensor& x, std::vector<std::string>* log, std::string name) {
    Tensor y = Tensor::empty(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) y[i] = s->value[0] * x[i];
    y.set_grad_fn(std::make_shared<FusedScale>(s, x, log, std::move(name)));
    return y;
  }

 private:
  Parameter* s_;
  Tensor x_;
  std::vector<std::string>* log_;
  std::string name_;
};

TEST(Autograd, GradReadyFiresOncePerBackwardAfterTheLastUse) {
  std::vector<std::string> log;
  Leaf s({2.f}), w(kW);
  int fired_s = 0, fired_w = 0;
  float grad_s_at_hook = 0.f;
  s.p.on_grad_ready = [&](Parameter& p) {
    ++fired_s;
    grad_s_at_hook = p.grad[0];
    log.push_back("ready s");
  };
  w.p.on_grad_ready = [&](Parameter&) { ++fired_w; };
  // s is used by two fused nodes and, through its value, by one op: y = s * (s * w) * s.
  const Tensor x = Tensor::from({3}, kX);
  Tensor y1 = FusedScale::call(&s.p, w.p.value, &log, "scale1");
  Tensor y2 = FusedScale::call(&s.p, y1, &log, "scale2");
  Tensor loss = sum(y2 * s.p.value * x);  // L = s^3 sum(w x)
  loss.backward();
  EXPECT_EQ(fired_s, 1);
  EXPECT_EQ(fired_w, 1);
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back(), "ready s");  // after every node that used s
  float wx = 0.f;
  for (int i = 0; i < 3; ++i) wx += kW[i] * kX[i];
  EXPECT_FLOAT_EQ(grad_s_at_hook, 3 * 2.f * 2.f * wx);  // dL/ds = 3 s^2 sum(w x): final at the hook
  for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(w.p.grad[i], 8.f * kX[i]) << i;  // s^3 x

  loss = sum(FusedScale::call(&s.p, w.p.value, &log, "scale3"));  // a second backward fires again
  loss.backward();
  EXPECT_EQ(fired_s, 2);
  EXPECT_EQ(fired_w, 2);
}

// Note [backward order]: among nodes whose gradient is complete, the latest created runs first.
// Since a node is created after its inputs, this is the reverse of the creation order.
std::vector<std::string> run_branchy_graph(float* grad_x) {
  std::vector<std::string> log;
  Leaf x({1.f});
  auto op = [&log](const char* name, std::vector<Tensor> inputs) {
    const size_t n = inputs.size();
    return record(name, Tensor::zeros({1}), std::span<const Tensor>(inputs), [&log, name, n](const Tensor& g) {
      log.push_back(name);
      return std::vector<Tensor>(n, g);  // each input gets g: x's gradient counts the paths
    });
  };
  Tensor a = op("a", {x.p.value});
  Tensor b = op("b", {x.p.value});
  Tensor c = op("c", {a});
  Tensor d = op("d", {b, c});
  Tensor e = op("e", {a, d});
  e.backward();
  *grad_x = x.p.grad[0];
  return log;
}

TEST(Autograd, BackwardOrderIsReverseCreationOrderEveryTime) {
  float grad_x = 0.f;
  const std::vector<std::string> expected = {"e", "d", "c", "b", "a"};
  EXPECT_EQ(run_branchy_graph(&grad_x), expected);
  EXPECT_EQ(grad_x, 3.f);  // paths e-a-x, e-d-b-x, e-d-c-a-x
  for (int run = 0; run < 3; ++run) EXPECT_EQ(run_branchy_graph(&grad_x), expected) << "run " << run;
}

}  // namespace
}  // namespace lockstep
