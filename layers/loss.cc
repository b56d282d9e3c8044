// Cross-entropy (log-softmax with max shift, in double) and mean squared error.
#include "layers/loss.h"

#include <cmath>
#include <memory>

#include "runtime/autograd.h"
#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {

CrossEntropyLoss::CrossEntropyLoss(CrossEntropyOptions o)
    : reduction_(o.reduction), smoothing_(o.label_smoothing) {
  LOCKSTEP_FAIL_IF(!(smoothing_ >= 0.f && smoothing_ <= 1.f))
      << "CrossEntropyLoss: label_smoothing must be in [0, 1], got " << smoothing_;
}

double CrossEntropyLoss::forward(const Tensor& logits, const Tensor& target) {
  LOCKSTEP_FAIL_IF(logits.ndim() != 2 || target.ndim() != 1 || target.dim(0) != logits.dim(0))
      << "CrossEntropyLoss: expected logits (N, C) and target (N), got " << shape_str(logits.shape())
      << " and " << shape_str(target.shape());
  const int64_t n = logits.dim(0), c = logits.dim(1);
  Tensor probs = Tensor::empty(logits.shape());
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float* z = logits.data() + i * c;
    const int64_t t = static_cast<int64_t>(target[i]);
    LOCKSTEP_FAIL_IF(t < 0 || t >= c || static_cast<float>(t) != target[i])
        << "CrossEntropyLoss: target " << target[i] << " at row " << i << " is not a class in [0, " << c
        << ")";
    float m = z[0];
    for (int64_t j = 1; j < c; ++j) m = std::max(m, z[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < c; ++j) sum += std::exp(static_cast<double>(z[j]) - m);
    const double lse = m + std::log(sum);
    if (smoothing_ == 0.f) {  // not (1 - 0) * ... + 0 * ...: an infinite mean would make 0 * inf = NaN
      total += lse - z[t];
    } else {
      double zsum = 0.0;
      for (int64_t j = 0; j < c; ++j) zsum += z[j];
      total += (1.0 - smoothing_) * (lse - z[t]) + smoothing_ * (lse - zsum / static_cast<double>(c));
    }
    for (int64_t j = 0; j < c; ++j) probs[i * c + j] = static_cast<float>(std::exp(z[j] - lse));
  }
  if (grad_enabled()) {
    probs_ = probs;
    target_ = target;
  }
  return reduction_ == Reduction::kMean ? total / static_cast<double>(n) : total;
}

Tensor CrossEntropyLoss::backward(float grad_output) {
  LOCKSTEP_FAIL_IF(!probs_.defined()) << "CrossEntropyLoss: backward() without a recorded forward";
  const int64_t n = probs_.dim(0), c = probs_.dim(1);
  const float scale = grad_output / (reduction_ == Reduction::kMean ? static_cast<float>(n) : 1.f);
  // d loss_i / d z_i,j = p_i,j - (1 - e) * [j == t_i] - e / C
  const float on = 1.f - smoothing_, off = smoothing_ / static_cast<float>(c);
  Tensor d = probs_;  // reuse: probs are not needed afterwards
  for (int64_t i = 0; i < n; ++i) {
    if (smoothing_ != 0.f)
      for (int64_t j = 0; j < c; ++j) d[i * c + j] -= off;
    d[i * c + static_cast<int64_t>(target_[i])] -= on;
    for (int64_t j = 0; j < c; ++j) d[i * c + j] *= scale;
  }
  probs_ = Tensor();
  target_ = Tensor();
  return d;
}

double MSELoss::forward(const Tensor& input_any, const Tensor& target_any) {
  LOCKSTEP_FAIL_IF(input_any.shape() != target_any.shape())
      << "MSELoss: input " << shape_str(input_any.shape()) << " and target " << shape_str(target_any.shape())
      << " differ";
  // Compared by logical position whatever their formats; dL/dinput comes back contiguous.
  const Tensor input = input_any.contiguous(), target = target_any.contiguous();
  Tensor diff = Tensor::empty(input.shape());
  double total = 0.0;
  for (int64_t i = 0; i < input.numel(); ++i) {
    diff[i] = input[i] - target[i];
    total += static_cast<double>(diff[i]) * diff[i];
  }
  if (grad_enabled()) diff_ = diff;
  return reduction_ == Reduction::kMean ? total / static_cast<double>(input.numel()) : total;
}

Tensor MSELoss::backward(float grad_output) {
  LOCKSTEP_FAIL_IF(!diff_.defined()) << "MSELoss: backward() without a recorded forward";
  const float scale =
      2.f * grad_output / (reduction_ == Reduction::kMean ? static_cast<float>(diff_.numel()) : 1.f);
  Tensor d = diff_;
  for (float& v : d.span()) v *= scale;
  diff_ = Tensor();
  return d;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, CrossEntropyOptions o) {
  auto loss = std::make_shared<CrossEntropyLoss>(o);
  const double value = loss->forward(logits, target);
  Tensor out = Tensor::full({1}, static_cast<float>(value));
  // The node owns the loss (and so its saved softmax) until backward has run or the graph is dropped.
  return record("cross_entropy", std::move(out), {logits}, [loss](const Tensor& g) -> std::vector<Tensor> {
    return {loss->backward(g[0])};
  });
}

int64_t count_correct(const Tensor& logits, const Tensor& target) {
  const int64_t n = logits.dim(0), c = logits.dim(1);
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* z = logits.data() + i * c;
    int64_t best = 0;
    for (int64_t j = 1; j < c; ++j)
      if (z[j] > z[best]) best = j;
    correct += best == static_cast<int64_t>(target[i]);
  }
  return correct;
}

}  // namespace lockstep
