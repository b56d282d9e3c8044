// Batch assembly and the Philox-driven Fisher-Yates shuffle.
// Note [shuffle draws]: swap k (k = 0, 1, ... for i = N-1 down to 1) uses word k % 4 of
// Philox::draw(layer 0, block k / 4) and picks j = (word * (i + 1)) >> 32, uniform on [0, i] up to
// a bias below (i + 1) / 2^32. tests/runtime/loader_test.cc re-derives orders from this note.
#include "runtime/data/loader.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <numeric>

#include "runtime/check.h"
#include "runtime/philox.h"

namespace lockstep {

BatchLoader::BatchLoader(const Dataset& ds, int64_t batch_size, bool shuffle, uint64_t seed, bool drop_last)
    : ds_(ds), batch_size_(batch_size), shuffle_(shuffle), seed_(seed), drop_last_(drop_last) {
  LOCKSTEP_FAIL_IF(batch_size <= 0) << "batch size must be positive, got " << batch_size;
  LOCKSTEP_CHECK(static_cast<int64_t>(ds_.pixels.size()) == ds_.size() * ds_.sample_numel())
      << "dataset has " << ds_.pixels.size() << " pixels for " << ds_.size() << " samples";
  set_epoch(0);
}

void shuffled_order(int64_t n, uint64_t seed, int64_t epoch, std::vector<int64_t>& order) {
  order.resize(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  const Philox rng(RngState{seed, 0, RngStream::kShuffle, static_cast<uint64_t>(epoch)});
  std::array<uint32_t, 4> words{};
  uint64_t k = 0;
  for (int64_t i = n - 1; i > 0; --i, ++k) {
    if (k % 4 == 0) words = rng.draw(0, k / 4);
    const auto j = static_cast<int64_t>((uint64_t{words[k % 4]} * static_cast<uint64_t>(i + 1)) >> 32);
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
}

void BatchLoader::set_epoch(int64_t epoch) {
  LOCKSTEP_CHECK(epoch >= 0) << "epoch " << epoch;
  epoch_ = epoch;
  if (shuffle_) {
    shuffled_order(ds_.size(), seed_, epoch, order_);
    return;
  }
  order_.resize(static_cast<size_t>(ds_.size()));
  std::iota(order_.begin(), order_.end(), int64_t{0});
}

int64_t BatchLoader::num_batches() const {
  const int64_t n = ds_.size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

void BatchLoader::batch(int64_t i, Tensor& x, Tensor& y) const {
  LOCKSTEP_CHECK(i >= 0 && i < num_batches()) << "batch " << i << " of " << num_batches();
  const int64_t start = i * batch_size_;
  const int64_t b = std::min(batch_size_, ds_.size() - start);
  const int64_t h = ds_.height, w = ds_.width, per = h * w;
  const Shape x_shape{b, 1, h, w};
  if (!x.defined() || x.shape() != x_shape) x = Tensor::empty(x_shape);
  if (!y.defined() || y.shape() != Shape{b}) y = Tensor::empty({b});
  for (int64_t r = 0; r < b; ++r) {
    const int64_t s = order_[static_cast<size_t>(start + r)];
    ds_.copy_sample(s, x.data() + r * per);
    y[r] = static_cast<float>(ds_.labels[static_cast<size_t>(s)]);
  }
}

}  // namespace lockstep
