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

// A BatchNorm built with a communicator: the same layer as BatchNorm1d/2d after set_sync(&comm).
class SyncBatchNorm : public BatchNorm {
 public:
  // comm must outlive the layer.
  SyncBatchNorm(int spatial_dims, BatchNormOptions o, Communicator& comm) : BatchNorm(spatial_dims, o) {
    set_sync(&comm);
  }
};

// Makes every BatchNorm of the module tree (any depth, any module type) a SyncBatchNorm over comm,
// in place: parameters, gradients, buffers, mode and every reference to the layers are unchanged,
// and so are the state_dict names (torch.nn.SyncBatchNorm.convert_sync_batchnorm). Returns how many
// layers it converted.
int convert_sync_batchnorm(Module& model, Communicator& comm);

}  // namespace lockstep
