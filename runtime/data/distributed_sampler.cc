// Shard arithmetic of the distributed sampler and the eval slices.
#include "runtime/data/distributed_sampler.h"

#include <algorithm>
#include <numeric>
#include <sstream>

#include "runtime/check.h"
#include "runtime/data/loader.h"

namespace lockstep {

DistributedSampler::DistributedSampler(int64_t dataset_size, DistributedSamplerOptions o)
    : n_(dataset_size), o_(o) {
  LOCKSTEP_CHECK(o_.world >= 1 && o_.rank >= 0 && o_.rank < o_.world)
      << "rank " << o_.rank << " of world " << o_.world;
  LOCKSTEP_FAIL_IF(o_.global_batch <= 0) << "global batch size must be positive, got " << o_.global_batch;
  LOCKSTEP_FAIL_IF(o_.global_batch % o_.world != 0)
      << "global batch " << o_.global_batch << " is not a multiple of the world size " << o_.world
      << ": every rank must get an equal shard";
  const int64_t b = o_.global_batch;
  steps_ = o_.remainder == RemainderPolicy::kDropLast ? n_ / b : (n_ + b - 1) / b;
  LOCKSTEP_FAIL_IF(n_ > 0 && steps_ == 0)
      << "data set of " << n_ << " samples is smaller than one global batch of " << b
      << " and drop_last is set";
  set_epoch(0);
}

void DistributedSampler::set_epoch(int64_t epoch) {
  LOCKSTEP_CHECK(epoch >= 0) << "epoch " << epoch;
  epoch_ = epoch;
  if (o_.shuffle) {
    shuffled_order(n_, o_.seed, epoch, order_);
  } else {
    order_.resize(static_cast<size_t>(n_));
    std::iota(order_.begin(), order_.end(), int64_t{0});
  }
}

std::vector<int64_t> DistributedSampler::shard(int64_t step) const {
  LOCKSTEP_CHECK(step >= 0 && step < steps_) << "step " << step << " of " << steps_;
  const int64_t start = step * o_.global_batch + first_global_row();
  std::vector<int64_t> out(static_cast<size_t>(shard_size()));
  // Positions past the end wrap to the permutation's start (kPad only; kDropLast never gets there).
  for (int64_t i = 0; i < shard_size(); ++i) out[static_cast<size_t>(i)] = order_[static_cast<size_t>((start + i) % n_)];
  return out;
}

std::vector<int64_t> DistributedSampler::global_batch(int64_t step) const {
  LOCKSTEP_CHECK(step >= 0 && step < steps_) << "step " << step << " of " << steps_;
  std::vector<int64_t> out(static_cast<size_t>(o_.global_batch));
  for (int64_t i = 0; i < o_.global_batch; ++i)
    out[static_cast<size_t>(i)] = order_[static_cast<size_t>((step * o_.global_batch + i) % n_)];
  return out;
}

int64_t DistributedSampler::dropped_samples() const {
  return o_.remainder == RemainderPolicy::kDropLast ? n_ - steps_ * o_.global_batch : 0;
}

int64_t DistributedSampler::padded_samples() const {
  return o_.remainder == RemainderPolicy::kPad ? steps_ * o_.global_batch - n_ : 0;
}

std::string DistributedSampler::describe() const {
  std::ostringstream os;
  os << "global batch " << o_.global_batch << " = " << o_.world << " x " << shard_size() << ", "
     << (o_.remainder == RemainderPolicy::kDropLast ? "drop_last" : "pad") << ": " << steps_
     << " steps per epoch, ";
  if (o_.remainder == RemainderPolicy::kDropLast) os << dropped_samples() << " samples dropped";
  else os << padded_samples() << " samples padded (seen twice)";
  return os.str();
}

void DistributedSampler::gather(const Dataset& ds, std::span<const int64_t> indices, Tensor& x, Tensor& y) {
  gather(ds, indices, x, y, [&ds](int64_t s, float* dst) { ds.copy_sample(s, dst); });
}

void DistributedSampler::gather(const Dataset& ds, std::span<const int64_t> indices, Tensor& x, Tensor& y,
                                const std::function<void(int64_t, float*)>& fill) {
  const auto b = static_cast<int64_t>(indices.size());
  const int64_t per = ds.sample_numel();
  const Shape x_shape{b, 1, ds.height, ds.width};
  if (!x.defined() || x.shape() != x_shape) x = Tensor::empty(x_shape);
  if (!y.defined() || y.shape() != Shape{b}) y = Tensor::empty({b});
  for (int64_t r = 0; r < b; ++r) {
    const int64_t s = indices[static_cast<size_t>(r)];
    LOCKSTEP_CHECK(s >= 0 && s < ds.size()) << "sample " << s << " of " << ds.size();
    fill(s, x.data() + r * per);
    y[r] = static_cast<float>(ds.labels[static_cast<size_t>(s)]);
  }
}

EvalSlice eval_slice(int64_t n, int rank, int world) {
  LOCKSTEP_CHECK(world >= 1 && rank >= 0 && rank < world) << "rank " << rank << " of world " << world;
  const int64_t base = n / world, extra = n % world;
  EvalSlice s;
  s.begin = rank * base + std::min<int64_t>(rank, extra);
  s.end = s.begin + base + (rank < extra ? 1 : 0);
  return s;
}

}  // namespace lockstep
