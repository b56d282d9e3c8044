// DistributedSampler: which samples each rank trains on. The whole data set is shuffled with
// (seed, epoch) by the same Philox Fisher-Yates permutation as BatchLoader, cut into global batches
// of B samples, and global batch s is split into `world` consecutive shards of B / world samples:
// rank r holds positions [s*B + r*B/world, s*B + (r+1)*B/world) of the permutation. Concatenating
// the ranks' shards in rank order gives back the global batch, so an N-rank step sees exactly what a
// 1-rank step on the whole global batch sees.
//
// Every rank takes the same number of steps (collectives must match). A final partial global batch
// (N % B != 0) follows the job's RemainderPolicy:
//   kDropLast: dropped; steps = floor(N / B); up to B - 1 samples unseen this epoch (a different
//              set each epoch, since the permutation changes);
//   kPad:      filled up to B with the first positions of the permutation (PyTorch
//              DistributedSampler's padding); steps = ceil(N / B); up to B - 1 samples seen twice.
// B must be a multiple of world, so every shard has the same size and an average of the ranks'
// mean-reduced gradients is the gradient of the global batch's mean loss.
//
// Pure index math: no communicator, no shared state; every rank derives its shard on its own.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "runtime/data/dataset.h"
#include "runtime/tensor.h"

namespace lockstep {

enum class RemainderPolicy { kDropLast, kPad };

struct DistributedSamplerOptions {
  int64_t global_batch = 0;  // B, a multiple of world
  int rank = 0;
  int world = 1;
  bool shuffle = true;
  uint64_t seed = 0;
  RemainderPolicy remainder = RemainderPolicy::kDropLast;
};

class DistributedSampler {
 public:
  // Throws (user error) when B is not positive or not a multiple of world, or the set is smaller
  // than one global batch under kDropLast.
  DistributedSampler(int64_t dataset_size, DistributedSamplerOptions o);

  void set_epoch(int64_t epoch);  // recomputes the permutation; call before each epoch
  int64_t epoch() const { return epoch_; }
  int64_t num_steps() const { return steps_; }         // same on every rank
  int64_t shard_size() const { return o_.global_batch / o_.world; }
  // Row of this rank's first sample within the global batch: rank * B / world (for per-sample
  // dropout keying, the same on every step).
  int64_t first_global_row() const { return o_.rank * shard_size(); }
  // Sample indices of this rank's shard of global batch `step`.
  std::vector<int64_t> shard(int64_t step) const;
  // Every rank's shards concatenated in rank order: the whole global batch (for reference runs).
  std::vector<int64_t> global_batch(int64_t step) const;
  // Samples of the epoch that no rank trains on (kDropLast) or that are trained twice (kPad).
  int64_t dropped_samples() const;
  int64_t padded_samples() const;
  // One line for the job log, e.g. "global batch 128 = 2 x 64, drop_last: 468 steps, 96 samples dropped".
  std::string describe() const;

  // x: (b, 1, H, W) images, y: (b) labels as floats, for `indices` (reused when shaped right).
  static void gather(const Dataset& ds, std::span<const int64_t> indices, Tensor& x, Tensor& y);
  // As gather, with each sample's (C*H*W) values written by fill(sample index, destination) instead
  // of copied as stored (augmentation: runtime/data/augment.h).
  static void gather(const Dataset& ds, std::span<const int64_t> indices, Tensor& x, Tensor& y,
                     const std::function<void(int64_t, float*)>& fill);

 private:
  int64_t n_;
  DistributedSamplerOptions o_;
  int64_t steps_ = 0;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
};

// Distributed eval: rank r of world evaluates the contiguous slice [begin, end) of a set of n
// samples; slices are disjoint, in rank order, and cover [0, n) exactly once (the first n % world
// ranks take one extra sample), so summed counts are exact for any world size.
struct EvalSlice {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
EvalSlice eval_slice(int64_t n, int rank, int world);

}  // namespace lockstep
