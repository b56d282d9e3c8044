// Top-k hits and the confusion matrix of an eval pass, and their metrics-line JSON.
#include "launcher/train/eval_metrics.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "runtime/check.h"

namespace lockstep {

ClassCounts ClassCounts::zeros(int64_t num_classes, const std::vector<int64_t>& top_k) {
  LOCKSTEP_FAIL_IF(num_classes < 1) << "eval: the model has " << num_classes << " outputs; need at least one class";
  ClassCounts c;
  c.num_classes = num_classes;
  for (int64_t k : top_k)
    LOCKSTEP_FAIL_IF(k < 1 || k > num_classes)
        << "eval.top_k: " << k << " is outside [1, " << num_classes << "] (the model has " << num_classes
        << " classes; torch.topk refuses k above that)";
  c.top_k = top_k;
  c.top_k_correct.assign(top_k.size(), 0);
  c.confusion.assign(static_cast<size_t>(num_classes * num_classes), 0);
  return c;
}

void ClassCounts::add(const Tensor& logits, const Tensor& target) {
  const int64_t n = logits.dim(0), c = logits.dim(1);
  LOCKSTEP_FAIL_IF(c != num_classes) << "eval: the model gives " << c << " logits per sample, expected "
                                     << num_classes << " (one per class)";
  for (int64_t i = 0; i < n; ++i) {
    const float* z = logits.data() + i * c;  // row i: (C)
    const auto t = static_cast<int64_t>(target[i]);
    LOCKSTEP_CHECK(t >= 0 && t < c) << "label " << t << " of sample " << i << " is outside [0, " << c << ")";
    int64_t pred = 0;  // torch.argmax: the first largest (NaN counts as largest)
    for (int64_t j = 1; j < c; ++j)
      if (!std::isnan(z[pred]) && (std::isnan(z[j]) || z[j] > z[pred])) pred = j;
    // rank of the target: the logits ordered before it (larger, NaN first, ties by index)
    const float zt = z[t];
    const bool tnan = std::isnan(zt);
    int64_t above = 0;
    for (int64_t j = 0; j < c; ++j) {
      const bool jnan = std::isnan(z[j]);
      const bool equal = (jnan && tnan) || z[j] == zt;
      above += (jnan && !tnan) || z[j] > zt || (equal && j < t);
    }
    for (size_t k = 0; k < top_k.size(); ++k) top_k_correct[k] += above < top_k[k];
    ++confusion[static_cast<size_t>(t * c + pred)];
  }
}

int64_t ClassCounts::count(int64_t true_class) const {
  int64_t s = 0;
  for (int64_t j = 0; j < num_classes; ++j) s += confusion[static_cast<size_t>(true_class * num_classes + j)];
  return s;
}

int64_t ClassCounts::correct(int64_t true_class) const {
  return confusion[static_cast<size_t>(true_class * num_classes + true_class)];
}

double ClassCounts::top_k_accuracy(size_t i) const {
  int64_t total = 0;
  for (int64_t v : confusion) total += v;
  return total ? static_cast<double>(top_k_correct[i]) / static_cast<double>(total) : 0.0;
}

std::vector<double> ClassCounts::per_class_accuracy() const {
  std::vector<double> a(static_cast<size_t>(num_classes));
  for (int64_t k = 0; k < num_classes; ++k) {
    const int64_t n = count(k);
    a[static_cast<size_t>(k)] = n ? static_cast<double>(correct(k)) / static_cast<double>(n)
                                  : std::numeric_limits<double>::quiet_NaN();
  }
  return a;
}

void ClassCounts::append_sums(std::vector<double>& out) const {
  for (int64_t v : top_k_correct) out.push_back(static_cast<double>(v));
  for (int64_t v : confusion) out.push_back(static_cast<double>(v));
}

void ClassCounts::from_sums(std::span<const double> in) {
  LOCKSTEP_CHECK(in.size() == sums_size()) << in.size() << " sums for " << sums_size() << " counts";
  size_t i = 0;
  for (int64_t& v : top_k_correct) v = static_cast<int64_t>(in[i++]);
  for (int64_t& v : confusion) v = static_cast<int64_t>(in[i++]);
}

std::string eval_json(const ClassCounts& c) {
  if (c.num_classes == 0) return "";
  std::string s;
  char num[64];
  if (!c.top_k.empty()) {
    s += ",\"top_k_accuracy\":{";
    for (size_t i = 0; i < c.top_k.size(); ++i) {
      std::snprintf(num, sizeof num, "%s\"%lld\":%.6f", i ? "," : "", static_cast<long long>(c.top_k[i]),
                    c.top_k_accuracy(i));
      s += num;
    }
    s += "}";
  }
  s += ",\"per_class_accuracy\":[";
  const std::vector<double> acc = c.per_class_accuracy();
  for (size_t k = 0; k < acc.size(); ++k) {
    if (std::isnan(acc[k])) std::snprintf(num, sizeof num, "%snull", k ? "," : "");
    else std::snprintf(num, sizeof num, "%s%.6f", k ? "," : "", acc[k]);
    s += num;
  }
  s += "],\"confusion_matrix\":[";
  for (int64_t r = 0; r < c.num_classes; ++r) {
    s += r ? ",[" : "[";
    for (int64_t j = 0; j < c.num_classes; ++j) {
      std::snprintf(num, sizeof num, "%s%lld", j ? "," : "",
                    static_cast<long long>(c.confusion[static_cast<size_t>(r * c.num_classes + j)]));
      s += num;
    }
    s += "]";
  }
  s += "]";
  return s;
}

std::string eval_summary(const std::vector<std::pair<int64_t, double>>& top_k, int64_t num_classes,
                         const std::vector<int64_t>& confusion) {
  if (num_classes == 0) return "";
  ClassCounts c;
  c.num_classes = num_classes;
  c.confusion = confusion;
  std::string s;
  char cell[64];
  for (const auto& [k, acc] : top_k) {
    std::snprintf(cell, sizeof cell, "top-%lld accuracy %.4f\n", static_cast<long long>(k), acc);
    s += cell;
  }
  s += "per-class accuracy:";
  const std::vector<double> acc = c.per_class_accuracy();
  for (size_t k = 0; k < acc.size(); ++k) {
    if (std::isnan(acc[k])) std::snprintf(cell, sizeof cell, "%s%zu -", k ? "  " : " ", k);
    else std::snprintf(cell, sizeof cell, "%s%zu %.4f", k ? "  " : " ", k, acc[k]);
    s += cell;
  }
  s += "\nconfusion matrix (rows: true class, columns: predicted class):\n      ";
  for (int64_t j = 0; j < num_classes; ++j) {
    std::snprintf(cell, sizeof cell, " %6lld", static_cast<long long>(j));
    s += cell;
  }
  s += "\n";
  for (int64_t r = 0; r < num_classes; ++r) {
    std::snprintf(cell, sizeof cell, "%6lld", static_cast<long long>(r));
    s += cell;
    for (int64_t j = 0; j < num_classes; ++j) {
      std::snprintf(cell, sizeof cell, " %6lld", static_cast<long long>(c.confusion[static_cast<size_t>(r * num_classes + j)]));
      s += cell;
    }
    s += "\n";
  }
  return s;
}

std::string eval_summary(const ClassCounts& c) {
  std::vector<std::pair<int64_t, double>> top_k;
  for (size_t i = 0; i < c.top_k.size(); ++i) top_k.emplace_back(c.top_k[i], c.top_k_accuracy(i));
  return eval_summary(top_k, c.num_classes, c.confusion);
}

}  // namespace lockstep
