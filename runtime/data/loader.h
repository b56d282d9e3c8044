// BatchLoader: mini-batches over a Dataset in a per-epoch order. The shuffle is a Fisher-Yates
// permutation driven by Philox keyed on (seed, stream kShuffle) at step = epoch, so an order is a
// pure function of (seed, epoch): a resumed run or another rank reproduces it without shared state.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/data/dataset.h"
#include "runtime/tensor.h"

namespace lockstep {

// order := the Philox Fisher-Yates permutation of [0, n) for (seed, epoch) (Note [shuffle draws]
// in loader.cc); shared by BatchLoader and DistributedSampler so both shuffle identically.
void shuffled_order(int64_t n, uint64_t seed, int64_t epoch, std::vector<int64_t>& order);

class BatchLoader {
 public:
  // Keeps a copy of ds (sharing its image storage). The order starts at epoch 0.
  BatchLoader(const Dataset& ds, int64_t batch_size, bool shuffle, uint64_t seed, bool drop_last = false);

  void set_epoch(int64_t epoch);  // recomputes order(); call before each epoch, like DistributedSampler
  int64_t epoch() const { return epoch_; }
  // ceil(N / B), or floor(N / B) with drop_last (PyTorch DataLoader's default keeps the last partial batch).
  int64_t num_batches() const;
  int64_t batch_size() const { return batch_size_; }

  // Batch i of the current epoch, samples order()[i*B ..): x: (b, 1, H, W) copied images;
  // y: (b) class indices as floats; b = B except for a kept partial last batch. x and y are
  // reused (overwritten in place) when they already have that shape, else reallocated.
  void batch(int64_t i, Tensor& x, Tensor& y) const;

  const std::vector<int64_t>& order() const { return order_; }  // sample index per position

 private:
  Dataset ds_;
  int64_t batch_size_;
  bool shuffle_;
  uint64_t seed_;
  bool drop_last_;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace lockstep
