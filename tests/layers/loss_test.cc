// CrossEntropyLoss and MSELoss against PyTorch (tests/golden/gen_layers.py): loss value and
// d(grad_output * loss)/dinput for mean and sum reductions, batch 1 and large logits.
#include "layers/loss.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

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
