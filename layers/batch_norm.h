// BatchNorm1d / BatchNorm2d with torch.nn.BatchNorm semantics:
//   train: normalise with the batch mean and biased variance; update running_mean and the unbiased
//          running_var with momentum, or with a cumulative average when momentum is unset;
//   eval:  normalise with running_mean / running_var; nothing updated (unless
//          track_running_stats is false, in which case batch statistics are always used).
// x: (N, C) or (N, C, L) for 1d, (N, C, H, W) for 2d; viewed as (N, C, S). weight, bias: (C).
// A channels_last x (N, C, H, W) is read as its NHWC storage, (N*H*W, C), with no conversion; y
// and dx keep x's format (torch's rule); sums then run in another order (rounding differs).
// A BatchNorm given a communicator (set_sync: SyncBatchNorm's constructor, convert_sync_batchnorm)
// merges its train-mode statistics across ranks (layers/sync_batch_norm.h). Conversion happens in
// place, so references a model holds to its layers stay valid.
#pragma once

#include <tuple>
#include <utility>

#include <optional>
#include <vector>

#include "comm/communicator.h"
#include "layers/layer.h"

namespace lockstep {

struct BatchNormOptions {
  int64_t num_features = 0;
  float eps = 1e-5f;
  std::optional<float> momentum = 0.1f;  // nullopt: cumulative moving average
  bool affine = true;
  bool track_running_stats = true;
};

class BatchNorm : public Layer {
 public:
  BatchNorm(int spatial_dims, BatchNormOptions o);
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;  // dy in either format
  // relu(forward(x)) as one layer call (one autograd node): the ReLU is applied as y is written, and
  // backward masks dy where y <= 0 by recomputing y from x, so against relu(bn(x)) it spares a pass
  // over memory each way and the ReLU's saved output; values and gradients are bit-identical to it
  // (torch.relu: NaN stays NaN and passes its gradient). What oneDNN's fuse_norm_relu flag does,
  // kept on lockstep's kernels so SyncBatchNorm's merged statistics stay as they are. Same shapes,
  // modes and errors as forward.
  Tensor forward_relu(const Tensor& x);
  bool accepts_channels_last() const override { return true; }
  std::string describe() const override;
  // Checks the shape only: whether a batch has more than one value per channel is a property of
  // the data, checked by forward when it normalises with batch statistics.
  Shape output_shape(const Shape& in) const override;
  const BatchNormOptions& options() const { return o_; }
  int spatial_dims() const { return spatial_dims_; }
  // comm (outliving the layer) makes this a SyncBatchNorm; null makes it local again.
  void set_sync(Communicator* comm) { sync_ = comm; }
  Communicator* sync_comm() const { return sync_; }

 protected:
  // Per-channel statistics of the batch x viewed as (N, C, S): count, mean and biased variance.
  // Plain BatchNorm uses this rank's batch alone. forward checks the returned count (> 1) and uses
  // it for running_var's unbiased correction, so an override returns the count its statistics
  // cover (SyncBatchNorm: the global batch, even where this rank holds no sample).
  void batch_stats(const float* x, int64_t n, int64_t s, int64_t& count, std::vector<double>& mean,
                   std::vector<double>& var);
  // Backward reduction of per-channel sum(dy) and sum(dy * xhat) and the count they cover.
  void reduce_backward_sums(std::vector<double>& sum_dy, std::vector<double>& sum_dy_xhat, int64_t& count);

 protected:
  std::any take_saved() override { return std::make_tuple(std::exchange(x_, Tensor()), std::exchange(mean_, std::vector<float>()), std::exchange(invstd_, std::vector<float>()), std::exchange(used_batch_stats_, bool()), std::exchange(synced_, bool()), std::exchange(global_count_, int64_t()), std::exchange(fused_relu_, bool()), std::exchange(scale_, std::vector<float>()), std::exchange(shift_, std::vector<float>())); }
  void restore_saved(std::any s) override { std::tie(x_, mean_, invstd_, used_batch_stats_, synced_, global_count_, fused_relu_, scale_, shift_) = std::any_cast<std::tuple<Tensor, std::vector<float>, std::vector<float>, bool, bool, int64_t, bool, std::vector<float>, std::vector<float>>>(std::move(s)); }

 private:
  void local_batch_stats(const float* x, int64_t n, int64_t s, int64_t& count, std::vector<double>& mean,
                         std::vector<double>& var) const;
  // SyncBatchNorm's halves of the two hooks (layers/sync_batch_norm.cc).
  void sync_batch_stats(int64_t& count, std::vector<double>& mean, std::vector<double>& var);
  void sync_backward_sums(std::vector<double>& sum_dy, std::vector<double>& sum_dy_xhat, int64_t& count);

  int spatial_dims_;
  BatchNormOptions o_;
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
  Tensor* running_mean_ = nullptr;
  Tensor* running_var_ = nullptr;
  Tensor* num_batches_tracked_ = nullptr;  // an integer count held in a float (exact to 2^24)
  // Saved for backward: the input (shared, not copied) and the statistics it was normalised
  // with; xhat = (x - mean) * invstd is recomputed rather than stored.
  Tensor x_;
  std::vector<float> mean_, invstd_;
  bool used_batch_stats_ = false;
  // The call in flight is forward_relu's (read by forward_impl); the saved call was, and the
  // per-channel y = x * scale + shift it wrote (backward recomputes y <= 0 from them).
  bool relu_next_ = false;
  bool fused_relu_ = false;
  std::vector<float> scale_, shift_;
  Communicator* sync_ = nullptr;
  // Set by the last forward under sync: whether its statistics were merged across ranks, and the
  // global count they cover (backward divides by it).
  bool synced_ = false;
  int64_t global_count_ = 0;
};

class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(BatchNormOptions o) : BatchNorm(1, o) {}
};

class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(BatchNormOptions o) : BatchNorm(2, o) {}
};

}  // namespace lockstep
