// Eval metrics beyond top-1 (launcher/train/eval_metrics.h): top-k hits, confusion matrix and
// per-class accuracy of fixed logits against PyTorch (tests/golden/gen_eval_metrics.py), ties and
// NaN against the stated rule, counts added batch by batch equal to one pass, and the metrics-line
// JSON and summary text.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "launcher/train/eval_metrics.h"
#include "launcher/train/trainer.h"
#include "runtime/check.h"
#include "tests/golden_io.h"

namespace lockstep {
namespace {

using testing::at;
using testing::load_golden;

TEST(EvalMetrics, ANonFiniteLossIsOneLineNamingTheEpoch) {
  EvalResult e;
  e.count = 4;
  e.loss_sum = 2;
  check_eval_finite(e, 3);
  e.loss_sum = std::numeric_limits<double>::quiet_NaN();
  try {
    check_eval_finite(e, 3);
    FAIL() << "a NaN eval loss passed";
  } catch (const Error& x) {
    EXPECT_EQ(std::string(x.what()).rfind("eval at epoch 3: test loss is nan: the model diverged", 0), 0u) << x.what();
  }
  e.loss_sum = std::numeric_limits<double>::infinity();
  EXPECT_THROW(check_eval_finite(e, 1), Error);
}

TEST(EvalMetrics, MatchesTorchTopkAndBincount) {
  const auto g = load_golden("eval_metrics_golden.safetensors");
  const Tensor& logits = at(g, "logits");  // (N, C)
  const Tensor& target = at(g, "target");  // (N)
  const Tensor& ks = at(g, "top_k");
  std::vector<int64_t> top_k;
  for (int64_t i = 0; i < ks.numel(); ++i) top_k.push_back(static_cast<int64_t>(ks[i]));
  ClassCounts c = ClassCounts::zeros(logits.dim(1), top_k);
  c.add(logits, target);
  const Tensor& want_topk = at(g, "top_k_correct");
  for (size_t i = 0; i < top_k.size(); ++i)
    EXPECT_EQ(c.top_k_correct[i], static_cast<int64_t>(want_topk[static_cast<int64_t>(i)])) << "k " << top_k[i];
  const Tensor& want_conf = at(g, "confusion");
  ASSERT_EQ(static_cast<int64_t>(c.confusion.size()), want_conf.numel());
  for (int64_t i = 0; i < want_conf.numel(); ++i)
    EXPECT_EQ(c.confusion[static_cast<size_t>(i)], static_cast<int64_t>(want_conf[i])) << "cell " << i;
  const Tensor& want_pc = at(g, "per_class_accuracy");
  const std::vector<double> pc = c.per_class_accuracy();
  for (int64_t k = 0; k < want_pc.numel(); ++k) EXPECT_NEAR(pc[static_cast<size_t>(k)], want_pc[k], 1e-6) << "class " << k;
  EXPECT_EQ(c.top_k_correct.back(), logits.dim(0)) << "top-C holds every target";
}

TEST(EvalMetrics, BatchesAddUpToOnePass) {
  const auto g = load_golden("eval_metrics_golden.safetensors");
  const Tensor& logits = at(g, "logits");
  const Tensor& target = at(g, "target");
  const int64_t n = logits.dim(0), classes = logits.dim(1);
  ClassCounts whole = ClassCounts::zeros(classes, {2, 5});
  whole.add(logits, target);
  ClassCounts parts = ClassCounts::zeros(classes, {2, 5});
  for (int64_t start = 0; start < n; start += 7) {  // uneven last batch
    const int64_t b = std::min<int64_t>(7, n - start);
    Tensor x = Tensor::from({b, classes}, std::vector<float>(logits.data() + start * classes,
                                                             logits.data() + (start + b) * classes));
    Tensor y = Tensor::from({b}, std::vector<float>(target.data() + start, target.data() + start + b));
    parts.add(x, y);
  }
  EXPECT_EQ(parts.top_k_correct, whole.top_k_correct);
  EXPECT_EQ(parts.confusion, whole.confusion);
  // The all-reduce layout round-trips.
  std::vector<double> sums;
  whole.append_sums(sums);
  ASSERT_EQ(sums.size(), whole.sums_size());
  ClassCounts back = ClassCounts::zeros(classes, {2, 5});
  back.from_sums(sums);
  EXPECT_EQ(back.confusion, whole.confusion);
  EXPECT_EQ(back.top_k_correct, whole.top_k_correct);
}

TEST(EvalMetrics, TiesRankTheLowerClassFirstAndNaNAboveAll) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Row 0: all equal, target 2: classes 0 and 1 rank above it -> rank 2: in top-3, not top-2;
  //        predicted class 0 (torch.argmax's first maximum).
  // Row 1: (1, 5, 5, 0), target 2: class 1 ties and ranks above -> rank 1: in top-2, not top-1.
  // Row 2: (1, 5, 5, 0), target 1: rank 0 -> top-1.
  // Row 3: (NaN, 9, 0, 0), target 1: NaN ranks above -> rank 1; predicted class 0.
  const Tensor logits = Tensor::from({4, 4}, std::vector<float>{3, 3, 3, 3, 1, 5, 5, 0, 1, 5, 5, 0, nan, 9, 0, 0});
  const Tensor target = Tensor::from({4}, std::vector<float>{2, 2, 1, 1});
  ClassCounts c = ClassCounts::zeros(4, {1, 2, 3});
  c.add(logits, target);
  EXPECT_EQ(c.top_k_correct, (std::vector<int64_t>{1, 3, 4}));
  // rows: true class; columns: predicted
  EXPECT_EQ(c.confusion[2 * 4 + 0], 1);  // row 0
  EXPECT_EQ(c.confusion[2 * 4 + 1], 1);  // row 1
  EXPECT_EQ(c.confusion[1 * 4 + 1], 1);  // row 2
  EXPECT_EQ(c.confusion[1 * 4 + 0], 1);  // row 3
  EXPECT_EQ(c.count(1), 2);
  EXPECT_EQ(c.correct(1), 1);
  const std::vector<double> pc = c.per_class_accuracy();
  EXPECT_TRUE(std::isnan(pc[0])) << "no sample of class 0";
  EXPECT_DOUBLE_EQ(pc[1], 0.5);
  EXPECT_DOUBLE_EQ(pc[2], 0.0);
}

TEST(EvalMetrics, RefusesKOutsideTheClassesAndAWrongWidth) {
  try {
    ClassCounts::zeros(10, {5, 11});
    FAIL() << "k 11 of 10 classes accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "eval.top_k: 11 is outside [1, 10] (the model has 10 classes; torch.topk refuses k above that)");
  }
  EXPECT_THROW(ClassCounts::zeros(10, {0}), Error);
  ClassCounts c = ClassCounts::zeros(3, {});
  try {
    c.add(Tensor::zeros({2, 4}), Tensor::zeros({2}));
    FAIL() << "4 logits for 3 classes accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "eval: the model gives 4 logits per sample, expected 3 (one per class)");
  }
}

TEST(EvalMetrics, JsonAndSummaryCarryTheCounts) {
  ClassCounts c = ClassCounts::zeros(2, {1});
  c.add(Tensor::from({3, 2}, std::vector<float>{0, 1, 2, 0, 0, 3}), Tensor::from({3}, std::vector<float>{1, 0, 0}));
  // predictions 1, 0, 1: confusion [[1, 1], [0, 1]]
  EXPECT_EQ(eval_json(c),
            ",\"top_k_accuracy\":{\"1\":0.666667},\"per_class_accuracy\":[0.500000,1.000000],"
            "\"confusion_matrix\":[[1,1],[0,1]]");
  EXPECT_EQ(eval_json(ClassCounts{}), "");
  const std::string s = eval_summary(c);
  EXPECT_NE(s.find("top-1 accuracy 0.6667\n"), std::string::npos) << s;
  EXPECT_NE(s.find("per-class accuracy: 0 0.5000  1 1.0000\n"), std::string::npos) << s;
  EXPECT_NE(s.find("     0      1      1\n"), std::string::npos) << s;
}

}  // namespace
}  // namespace lockstep
