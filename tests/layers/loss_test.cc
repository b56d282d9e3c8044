// CrossEntropyLoss and MSELoss against PyTorch (tests/golden/gen_layers.py): loss value and
// d(grad_output * loss)/dinput for mean and sum reductions, batch 1 and large logits, label
// smoothing 0.1, 0.2, 0.3 and 1; cross_entropy() through autograd behind a Linear.
#include "layers/loss.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "layers/linear.h"
#include "runtime/autograd.h"
#include "runtime/check.h"
#include "tests/layers/golden_module.h"

namespace lockstep {
namespace {

using testing::at;
using testing::layers_golden;

void expect_loss_case(Loss& loss, const std::string& c) {
  SCOPED_TRACE("case " + c);
  const auto& g = layers_golden();
  const double value = loss.forward(at(g, c + ".input"), at(g, c + ".target"));
  const double expected = at(g, c + ".loss")[0];
  EXPECT_NEAR(value, expected, 1e-5 + 1e-5 * std::fabs(expected));
  Tensor grad = loss.backward(at(g, c + ".grad_output")[0]);
  EXPECT_EQ(grad.shape(), at(g, c + ".input").shape());
  EXPECT_ALLCLOSE(grad, at(g, c + ".grad"), 1e-6, 1e-4);
}

TEST(CrossEntropyLossGolden, Mean) {
  CrossEntropyLoss loss;  // logits (5,7)
  expect_loss_case(loss, "ce_mean");
}

TEST(CrossEntropyLossGolden, SumWithGradOutput) {
  CrossEntropyLoss loss(Reduction::kSum);  // logits (4,3), grad_output 0.5
  expect_loss_case(loss, "ce_sum");
}

TEST(CrossEntropyLossGolden, Batch1) {
  CrossEntropyLoss loss;  // logits (1,10)
  expect_loss_case(loss, "ce_batch1");
}

TEST(CrossEntropyLossGolden, LargeLogits) {
  CrossEntropyLoss loss;  // logits around 100 +- 40: exp would overflow without the max shift
  expect_loss_case(loss, "ce_large");
}

TEST(CrossEntropyLossGolden, LabelSmoothing) {
  CrossEntropyLoss ls01({.label_smoothing = 0.1f});  // logits (5,7)
  expect_loss_case(ls01, "ce_ls01_mean");
  CrossEntropyLoss ls03({.reduction = Reduction::kSum, .label_smoothing = 0.3f});  // (4,3), grad_output 0.5
  expect_loss_case(ls03, "ce_ls03_sum");
  CrossEntropyLoss ls1({.label_smoothing = 1.f});  // (3,6): the target plays no part
  expect_loss_case(ls1, "ce_ls1_mean");
  CrossEntropyLoss ls02({.label_smoothing = 0.2f});  // logits around 100 +- 40, grad_output 2
  expect_loss_case(ls02, "ce_ls02_large");
}

TEST(CrossEntropyLoss, RejectsSmoothingOutsideZeroOne) {
  EXPECT_THROW(CrossEntropyLoss({.label_smoothing = -0.1f}), Error);
  EXPECT_THROW(CrossEntropyLoss({.label_smoothing = 1.5f}), Error);
  EXPECT_THROW(CrossEntropyLoss({.label_smoothing = std::nanf("")}), Error);
}

TEST(CrossEntropyLossAutograd, BackwardReachesTheModel) {
  // cross_entropy(linear(x), t, smoothing 0.2).backward() gives PyTorch's loss and Linear gradients.
  const auto& g = layers_golden();
  Linear lin(4, 3);
  for (auto& [name, p] : lin.named_parameters()) p->value.copy_from(at(g, "ce_autograd.state." + name));
  lin.zero_grad();
  Tensor loss = cross_entropy(lin(at(g, "ce_autograd.x")), at(g, "ce_autograd.target"),
                              {.label_smoothing = 0.2f});
  ASSERT_EQ(loss.numel(), 1);
  ASSERT_TRUE(loss.requires_grad());
  EXPECT_NEAR(loss[0], at(g, "ce_autograd.loss")[0], 1e-5);
  loss.backward();
  for (auto& [name, p] : lin.named_parameters()) {
    SCOPED_TRACE(name);
    EXPECT_ALLCLOSE(p->grad, at(g, "ce_autograd.grad." + name), 1e-6, 1e-4);
  }
}

TEST(CrossEntropyLossAutograd, NothingRecordedForAConstant) {
  Tensor loss = cross_entropy(Tensor::zeros({2, 3}), Tensor::from({2}, std::vector<float>{0.f, 2.f}));
  EXPECT_FALSE(loss.requires_grad());
  EXPECT_NEAR(loss[0], std::log(3.0), 1e-6);  // uniform softmax over 3 classes
}

TEST(MSELossGolden, Mean) {
  MSELoss loss;  // (3,4,5)
  expect_loss_case(loss, "mse_mean");
}

TEST(MSELossGolden, SumWithGradOutput) {
  MSELoss loss(Reduction::kSum);  // (2,7), grad_output 2
  expect_loss_case(loss, "mse_sum");
}

TEST(CrossEntropyLoss, RejectsBadTargets) {
  CrossEntropyLoss loss;
  Tensor logits = Tensor::zeros({2, 3});
  EXPECT_THROW(loss.forward(logits, Tensor::from({2}, std::vector<float>{0.f, 3.f})), Error);
  EXPECT_THROW(loss.forward(logits, Tensor::from({2}, std::vector<float>{0.f, -1.f})), Error);
  EXPECT_THROW(loss.forward(logits, Tensor::from({2}, std::vector<float>{0.f, 1.5f})), Error);
  EXPECT_THROW(loss.forward(logits, Tensor::zeros({3})), Error);
}

TEST(MSELoss, RejectsShapeMismatch) {
  MSELoss loss;
  EXPECT_THROW(loss.forward(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})), Error);
}

TEST(CountCorrect, FirstMaximumWins) {
  // rows: argmax 2; tie between 0 and 1 -> 0; argmax 1
  Tensor logits = Tensor::from({3, 3}, std::vector<float>{0, 1, 2, 5, 5, 1, -1, 0, -2});
  EXPECT_EQ(count_correct(logits, Tensor::from({3}, std::vector<float>{2, 0, 1})), 3);
  EXPECT_EQ(count_correct(logits, Tensor::from({3}, std::vector<float>{2, 1, 0})), 1);
}

}  // namespace
}  // namespace lockstep
