// SyncBatchNorm: BatchNorm whose train-mode statistics are those of the GLOBAL batch, the union of
// every rank's shard (torch.nn.SyncBatchNorm semantics).
//   train forward:  each rank's per-channel (count, mean, M2) are all-gathered and merged with
//                   Chan's count-weighted merge in rank order, so every rank normalises with the
//                   same bits; shards may be uneven and a rank may hold zero samples (it still
//                   issues every collective and returns an empty output). running_var's unbiased
//                   correction uses the global count.
//   train backward: one all-reduce of the 2C per-channel sums [sum(dy), sum(dy * xhat)]; the input
//                   gradient uses the global count. weight/bias gradients stay this rank's sums:
//                   the gradient reducer averages them over ranks, as PyTorch DDP does.
//   eval:           exactly BatchNorm's eval (running statistics), no collective at all. With
//                   track_running_stats=false eval uses this rank's batch alone, as PyTorch does.
// The caller declares phase and mode on the communicator (Communicator::set_phase); this layer
// only issues collectives. x: as BatchNorm1d (spatial_dims 1) or BatchNorm2d (spatial_dims 2).
#pragma once

#include <cstdint>
#include <vector>

#include "comm/communicator.h"
#include "layers/batch_norm.h"

namespace lockstep {

class Sequential;

class SyncBatchNorm : public BatchNorm {
 public:
  // comm must outlive the layer.
  SyncBatchNorm(int spatial_dims, BatchNormOptions o, Communicator& comm);
  std::string describe() const override;

 protected:
  void batch_stats(const float* x, int64_t n, int64_t s, int64_t& count, std::vector<double>& mean,
                   std::vector<double>& var) override;
  void reduce_backward_sums(std::vector<double>& sum_dy, std::vector<double>& sum_dy_xhat,
                            int64_t& count) override;

 private:
  Communicator* comm_;
  // Set by the last forward: whether its statistics were merged across ranks, and the global
  // count they cover (backward divides by it).
  bool synced_ = false;
  int64_t global_count_ = 0;
};

// Replaces every BatchNorm1d / BatchNorm2d of model (nested Sequentials included) by a
// SyncBatchNorm with the same options, carrying parameters, gradients, buffers and mode over
// exactly; state_dict names are unchanged. Layers that already are SyncBatchNorm stay.
void convert_sync_batchnorm(Sequential& model, Communicator& comm);

}  // namespace lockstep
