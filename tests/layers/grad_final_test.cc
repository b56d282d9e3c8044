// Early gradient hooks (grad_final, runtime/autograd.h): a Linear declares its bias gradient final
// before it computes its weight gradient, so the bias's on_grad_ready fires first, while the weight
// gradient is still untouched; a parameter with another use later in the backward fires once, after
// that use; gradients equal those of a backward without hooks.
// Row blocks (grad_rows_final): with an on_grad_rows_ready hook a Linear computes its weight
// gradient in blocks of rows and reports each, in increasing order; every reported row is final
// (it equals the finished gradient), the gradient equals the one computed in one GEMM, and nothing
// is reported for a parameter with a later use.
#include <gtest/gtest.h>

#include <cmath>
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

// Runs backward from loss (+ sum(W * 2) when weight_used_again: the weight's leaf comes after the
// Linear's node in backward, its last use) and copies out dW, db and dx.
void backward_into(Tensor loss, bool weight_used_again, Parameter& w, Parameter& b, testing::GradInput& x, Tensor& dw,
                   Tensor& db, Tensor& dx) {
  if (weight_used_again) loss = add(loss, sum(mul(w.value, 2.f)));
  loss.backward();
  dw = w.grad.clone();
  db = b.grad.clone();
  dx = x.grad().clone();
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
  backward_into(sum(lin.forward(x.value())), weight_used_again, *w, *b, x, r.dw, r.db, r.dx);
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

// Linear(in -> out) on x (16, in); loss = sum(y * c) with fixed c, so every row of dW differs; with
// `rows_hook`, each report's rows [0, rows) of dW are copied when it fires.
struct RowsResult {
  std::vector<int64_t> reported;
  std::vector<Tensor> at_report;  // dW's first `reported[k]` rows when report k fired
  int weight_hooks = 0;
  Tensor dw, db, dx;
};

RowsResult run_rows(int64_t in, int64_t out, bool rows_hook, bool weight_used_again) {
  Linear lin(in, out);
  init_parameters(lin, 5);
  Parameter* w = lin.named_parameters()[0].second;
  Parameter* b = lin.named_parameters()[1].second;
  RowsResult r;
  w->on_grad_ready = [&](Parameter&) { ++r.weight_hooks; };
  if (rows_hook)
    w->on_grad_rows_ready = [&](Parameter& p, int64_t rows) {
      r.reported.push_back(rows);
      r.at_report.push_back(Tensor::view(p.grad, 0, {rows, in}).clone());
    };
  testing::GradInput x(randn({16, in}, 2));
  backward_into(sum(mul(lin.forward(x.value()), randn({16, out}, 3))), weight_used_again, *w, *b, x, r.dw, r.db,
                r.dx);
  return r;
}

TEST(GradRowsFinal, LinearReportsFinalRowBlocksInOrder) {
  constexpr int64_t kIn = 784, kOut = 512;  // fmnist-mlp's first layer
  const RowsResult plain = run_rows(kIn, kOut, false, false), rows = run_rows(kIn, kOut, true, false);
  ASSERT_GE(rows.reported.size(), 2u) << "a 1.6 MB weight gradient comes in several blocks";
  for (size_t k = 0; k < rows.reported.size(); ++k) {
    EXPECT_GT(rows.reported[k], k ? rows.reported[k - 1] : 0) << "report " << k;
    EXPECT_LT(rows.reported[k], kOut) << "the last block is the whole gradient: on_grad_ready says it";
    expect_equal(rows.at_report[k], Tensor::view(rows.dw, 0, {rows.reported[k], kIn}).clone(), "rows when reported");
  }
  EXPECT_EQ(rows.weight_hooks, 1);
  for (int64_t i = 0; i < plain.dw.numel(); ++i)  // blocks of rows: the same sums over the batch
    ASSERT_NEAR(rows.dw[i], plain.dw[i], 1e-6 * (1 + std::fabs(plain.dw[i]))) << "dW at " << i;
  expect_equal(rows.db, plain.db, "db");
  expect_equal(rows.dx, plain.dx, "dx");
}

TEST(GradRowsFinal, NothingIsReportedForAParameterWithALaterUse) {
  const RowsResult r = run_rows(784, 512, true, true);
  EXPECT_TRUE(r.reported.empty()) << "rows are not final while another use still adds to them";
  EXPECT_EQ(r.weight_hooks, 1);
  const RowsResult plain = run_rows(784, 512, false, true);
  for (int64_t i = 0; i < plain.dw.numel(); ++i)
    ASSERT_NEAR(r.dw[i], plain.dw[i], 1e-6 * (1 + std::fabs(plain.dw[i]))) << "dW at " << i;
}

TEST(GradRowsFinal, OutsideABackwardIsANoOp) {
  Parameter p;
  p.value = Tensor::zeros({4, 2});
  p.grad = Tensor::zeros({4, 2});
  int fired = 0;
  p.on_grad_rows_ready = [&](Parameter&, int64_t) { ++fired; };
  grad_rows_final(p, 2);
  EXPECT_EQ(fired, 0);
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
