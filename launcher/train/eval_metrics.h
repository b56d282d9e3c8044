// Classification counts of an eval pass beyond top-1: top-k hits and the confusion matrix (per-class
// accuracy follows from it). Integer counts only, so a distributed eval sums them exactly: they
// travel as doubles (exact below 2^53) in the eval phase's one all-reduce (Trainer::evaluate).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "runtime/tensor.h"

namespace lockstep {

struct ClassCounts {
  int64_t num_classes = 0;              // C; 0: nothing counted (no eval ran)
  std::vector<int64_t> top_k;           // the k values asked for, in the order given
  std::vector<int64_t> top_k_correct;   // per k: samples whose target is among the k largest logits
  std::vector<int64_t> confusion;       // (C, C) row-major: [true class][predicted class] (sklearn's
                                        // confusion_matrix, torchmetrics' MulticlassConfusionMatrix)

  // Zero counts for C classes and these k (each in [1, C], else Error naming k and C).
  static ClassCounts zeros(int64_t num_classes, const std::vector<int64_t>& top_k);

  // logits: (N, C), target: (N) class indices in [0, C). The prediction is the first index of the
  // largest logit (torch.argmax); a target is in the top k when fewer than k logits rank above it,
  // where a logit ranks above another if it is larger, or NaN while the other is not (torch.topk
  // sorts NaN first), or equal with a smaller index (ties: the lower class index first, as argmax).
  void add(const Tensor& logits, const Tensor& target);

  // Fraction of samples whose target is in the top top_k[i]; 0 for no samples.
  double top_k_accuracy(size_t i) const;
  int64_t count(int64_t true_class) const;    // row sum: samples of that class
  int64_t correct(int64_t true_class) const;  // diagonal
  // correct / count of each class; NaN for a class with no sample (as sklearn's recall, which warns).
  std::vector<double> per_class_accuracy() const;

  // The counts as doubles (top_k_correct, then confusion), to append to an all-reduce buffer;
  // from_sums reads them back from the reduced buffer (same layout, same k and C on every rank).
  void append_sums(std::vector<double>& out) const;
  void from_sums(std::span<const double> in);
  size_t sums_size() const { return top_k_correct.size() + confusion.size(); }
};

// The JSON members of a metrics line for these counts, with a leading comma, e.g.
// ,"top_k_accuracy":{"5":0.9912},"per_class_accuracy":[0.81,...],"confusion_matrix":[[812,3,...],...]
// (null for a class with no sample); empty when nothing was counted.
std::string eval_json(const ClassCounts& c);

// The end-of-job summary of an eval, e.g.
//   top-5 accuracy 0.9950
//   per-class accuracy: 0 0.8120  1 0.9710  2 ...
//   confusion matrix (rows: true class, columns: predicted class):
//            0     1 ...
//       0  812     3 ...
// top_k: (k, accuracy) pairs; confusion: (C, C) row-major counts. Empty for C = 0.
std::string eval_summary(const std::vector<std::pair<int64_t, double>>& top_k, int64_t num_classes,
                         const std::vector<int64_t>& confusion);
std::string eval_summary(const ClassCounts& c);

}  // namespace lockstep
