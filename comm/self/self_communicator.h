// SelfCommunicator: the size-1 Communicator for single-process runs without mpirun. Collectives
// are identities (all_gather copies in to out) that complete at once, but still take sequence
// numbers, so collectives_issued() counts them exactly as a multi-rank backend would.
#pragma once

#include "comm/communicator.h"

namespace lockstep {

class SelfCommunicator final : public Communicator {
 public:
  explicit SelfCommunicator(CommOptions options = {}) : options_(options) {}

  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "self"; }

  Work all_reduce(std::span<float> buf, ReduceOp op) override;
  Work all_reduce(std::span<double> buf, ReduceOp op) override;
  Work all_reduce_bf16(std::span<BFloat16> buf, ReduceOp op) override;
  Work broadcast(std::span<std::byte> buf, int root) override;
  Work all_gather(std::span<const float> in, std::span<float> out) override;
  Work all_gather(std::span<const std::byte> in, std::span<std::byte> out) override;
  Work barrier() override;

 private:
  CommOptions options_;
};

}  // namespace lockstep
