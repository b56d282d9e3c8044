// NcclCommunicator: the Communicator on NCCL for device (GPU) buffers, one rank per GPU (NCCL
// refuses two ranks on one GPU; ranks sharing a GPU use the MPI backend with CUDA-aware MPI).
// Bootstrap over MPI: rank 0's ncclUniqueId is broadcast on the communicator's own duplicate of
// MPI_COMM_WORLD, which then carries the fingerprint checks (FingerprintExchange), so NCCL
// collectives are checked and time out exactly like the MPI backend's. Collectives run in issue
// order on a CollectiveQueue, whose thread enqueues them on a private CUDA stream and polls it
// against the timeout (ncclCommAbort on expiry). Buffers are device pointers; the collective is
// ordered after work already issued on the legacy default stream when it is called. CUDA builds
// only.
#pragma once

#include <memory>

#include "comm/collective_queue.h"

namespace lockstep {

class NcclCommunicator final : public QueuedCommunicator {
 public:
  explicit NcclCommunicator(CommOptions options = {});
  ~NcclCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }
  int device() const { return device_; }

  Work all_reduce(std::span<float> buf, ReduceOp op) override;
  Work all_reduce(std::span<double> buf, ReduceOp op) override;
  Work broadcast(std::span<std::byte> buf, int root) override;
  Work all_gather(std::span<const float> in, std::span<float> out) override;
  Work all_gather(std::span<const std::byte> in, std::span<std::byte> out) override;
  Work barrier() override;
  [[noreturn]] void abort(int code) override;

 private:
  struct Impl;
  template <typename T>
  Work all_reduce_impl(std::span<T> buf, ReduceOp op);
  template <typename T>
  Work all_gather_impl(std::span<const T> in, std::span<T> out);

  CommOptions options_;
  int rank_ = 0, size_ = 1, device_ = 0;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep
