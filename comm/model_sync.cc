// Pack, one collective, unpack.
#include "comm/model_sync.h"

#include <cstring>

#include "runtime/check.h"

namespace lockstep {
namespace {

std::vector<float> pack(const std::vector<Tensor*>& tensors) {
  size_t n = 0;
  for (const Tensor* t : tensors) {
    LOCKSTEP_CHECK(t && t->defined() && t->device() == Device::kCPU) << "model sync: undefined or device tensor";
    n += static_cast<size_t>(t->numel());
  }
  std::vector<float> flat(n);
  size_t off = 0;
  for (const Tensor* t : tensors) {
    std::memcpy(flat.data() + off, t->data(), static_cast<size_t>(t->numel()) * sizeof(float));
    off += static_cast<size_t>(t->numel());
  }
  return flat;
}

void unpack(const std::vector<float>& flat, const std::vector<Tensor*>& tensors) {
  size_t off = 0;
  for (Tensor* t : tensors) {
    std::memcpy(t->data(), flat.data() + off, static_cast<size_t>(t->numel()) * sizeof(float));
    off += static_cast<size_t>(t->numel());
  }
}

}  // namespace

void broadcast_tensors(Communicator& comm, const std::vector<Tensor*>& tensors, int root) {
  std::vector<float> flat = pack(tensors);
  comm.broadcast(std::as_writable_bytes(std::span<float>(flat)), root).wait();
  if (comm.rank() != root) unpack(flat, tensors);
}

void average_tensors(Communicator& comm, const std::vector<Tensor*>& tensors) {
  std::vector<float> flat = pack(tensors);
  comm.all_reduce(std::span<float>(flat), ReduceOp::kAverage).wait();
  unpack(flat, tensors);
}

void sync_buffers(Communicator& comm, const std::vector<Tensor*>& buffers, BufferSync how) {
  if (how == BufferSync::kBroadcast) broadcast_tensors(comm, buffers, 0);
  else average_tensors(comm, buffers);
}

}  // namespace lockstep
