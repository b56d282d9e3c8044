// MpiCommunicator: the Communicator on OpenMPI, for CPU tensors. Rank and size come from
// MPI_COMM_WORLD (mpirun on one machine or with a hostfile, or Slurm). Collectives are queued to
// a dedicated communication thread (CollectiveQueue) that runs them in issue order: fingerprint
// check across ranks (FingerprintExchange, honouring CommOptions::timeout), then the MPI collective
// on the communicator's own duplicate of MPI_COMM_WORLD. MPI ownership: see mpi_runtime.h.
#pragma once

#include <memory>

#include "comm/collective_queue.h"

namespace lockstep {

class MpiCommunicator final : public QueuedCommunicator {
 public:
  explicit MpiCommunicator(CommOptions options = {});
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  Work all_reduce(std::span<float> buf, ReduceOp op) override;
  Work all_reduce(std::span<double> buf, ReduceOp op) override;
  // Over MPI_UINT16_T with a user-defined commutative op (MPI has no bf16 type): add_bf16.
  Work all_reduce_bf16(std::span<BFloat16> buf, ReduceOp op) override;
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
  int rank_ = 0, size_ = 1;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep
