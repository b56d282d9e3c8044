// Early gradient hooks (grad_final, runtime/autograd.h): a Linear declares its bias gradient final
// before it computes its weight gradient, so the bias's on_grad_ready fires first, while the weight
// gradient is still untouched; a parameter with another use later in the backward fires once, after
// that use; gradients equal those of a backward without hooks.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "layers/init.h"
#include "layers/linear.h"
#include "runtime/autograd.h"
#include "runtime/ops.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

using testing::randn;

double abs_sum(const Tensor& t) {
  double s = 0;
  for (float v : t.span()) s += v < 0 ? -v : v;
  return s;
}

// Linear(5 -> 3) on x (4, 5); loss = sum(y) (+ sum(W * 2) when weight_used_again).
struct Result {
  std::vector<std::string> order;
  double weight_grad_at_bias_hook = -1;
  Tensor dw_at_weight_hook;
  Tensor dw, db, dx;
};

Result run(bool hooks, bool weight_used_again) {
  Linear lin(5, 3);
  init_parameters(lin, 3);
  Parameter* w = lin.named_parameters()[0].second;
  Parameter* b = lin.named_parameters()[1].second;
  Result r;
  if (hooks) {
    b->on_grad_ready = [&](Parameter&) {
      r.order.push_back("bias");
      r.weight_grad_at_bias_hook = abs_sum(w->grad);
    };
    w->on_grad_ready = [&](Parameter&) {
      r.order.push_back("weight");
      r.dw_at_weight_hook = w->grad.clone();
    };
  }
  testing::GradInput x(randn({4, 5}, 1));
  Tensor loss = sum(lin.forward(x.value()));
  // The weight's leaf comes after the Linear's node in backward: its last use.
  if (weight_used_again) loss = add(loss, sum(mul(w->value, 2.f)));
  loss.backward();
  r.dw = w->grad.clone();
  r.db = b->grad.clone();
  r.dx = x.grad().clone();
  return r;
}

void expect_equal(const Tensor& a, const Tensor& b, const char* what) {
  ASSERT_EQ(a.numel(), b.numel()) << what;
  for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a[i], b[i]) << what << " at " << i;
}

TEST(GradFinal, LinearBiasHookFiresBeforeItsWeightGradientIsComputed) {
  const Result plain = run(false, false), hooked = run(true, false);
  EXPECT_EQ(hooked.order, (std::vector<std::string>{"bias", "weight"}));
  EXPECT_EQ(hooked.weight_grad_at_bias_hook, 0.0) << "the weight gradient was already computed";
  EXPECT_GT(abs_sum(hooked.dw), 0.0);
  expect_equal(hooked.dw, plain.dw, "dW");
  expect_equal(hooked.db, plain.db, "db");
  expect_equal(hooked.dx, plain.dx, "dx");
}

TEST(GradFinal, AParameterWithALaterUseFiresOnceAfterIt) {
  const Result plain = run(false, true), hooked = run(true, true);
  // The weight's hook waits for its leaf (the sum(W * 2) term) and fires once.
  EXPECT_EQ(hooked.order, (std::vector<std::string>{"bias", "weight"}));
  expect_equal(hooked.dw, plain.dw, "dW");
  expect_equal(hooked.dw_at_weight_hook, plain.dw, "dW when its hook fired");
  // dW = dy^T x + 2: the leaf's share is in it.
  const Result without = run(false, false);
  for (int64_t i = 0; i < plain.dw.numel(); ++i) EXPECT_FLOAT_EQ(plain.dw[i], without.dw[i] + 2.f) << i;
}

TEST(GradFinal, OutsideABackwardIsANoOp) {
  Parameter p;
  p.value = Tensor::zeros({2});
  p.grad = Tensor::zeros({2});
  int fired = 0;
  p.on_grad_ready = [&](Parameter&) { ++fired; };
  grad_final(p);
  EXPECT_EQ(fired, 0);
}

}  // namespace
}  // namespace lockstep
