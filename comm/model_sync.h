// Keeping replicas identical: parameters and buffers are broadcast from rank 0 when training
// starts (every rank may have initialised differently), and BatchNorm buffers are broadcast from
// rank 0 (or averaged) when an eval phase begins, so every rank evaluates the same model.
// comm/ sits below layers/, so these take tensors; the trainer passes model.state_dict() etc.
// Tensors are packed into one flat buffer: one collective per call, whatever the model size.
#pragma once

#include <vector>

#include "comm/communicator.h"
#include "runtime/tensor.h"

namespace lockstep {

enum class BufferSync {
  kBroadcast,  // rank 0's running statistics everywhere (the default, as PyTorch DDP)
  kAverage,    // the mean over ranks (num_batches_tracked is equal on every rank anyway)
};

// Every rank passes the same tensors (same count and sizes, checked by the collective's
// fingerprint through the element count) and ends with root's values.
void broadcast_tensors(Communicator& comm, const std::vector<Tensor*>& tensors, int root = 0);
// Every tensor becomes its mean over ranks.
void average_tensors(Communicator& comm, const std::vector<Tensor*>& tensors);
void sync_buffers(Communicator& comm, const std::vector<Tensor*>& buffers, BufferSync how);

}  // namespace lockstep
