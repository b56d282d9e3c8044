// Communicator: the collective interface every data-parallel piece talks to. Collectives are in
// place and asynchronous: wait() on the returned Work. Every collective carries a fingerprint
// (op, element count, sequence number, train/eval mode, phase) that the backend checks across
// ranks before moving data, so ranks that disagree fail with an error naming them instead of
// hanging; a collective that waits past the timeout fails naming the ranks that never arrived.
// Backends live in subfolders (mpi/, nccl/); only comm/factory.cc knows which exist.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>

#include "comm/bf16.h"
#include "runtime/check.h"

namespace lockstep {

enum class ReduceOp { kSum, kAverage, kMax, kMin };

// What the caller is doing when it issues a collective; part of every fingerprint.
enum class CommMode : uint8_t { kNone = 0, kTrain = 1, kEval = 2 };

class WorkHandle {
 public:
  virtual ~WorkHandle() = default;
  virtual void wait() = 0;  // throws lockstep::Error on mismatch or timeout
};

class Work {
 public:
  Work() = default;
  explicit Work(std::unique_ptr<WorkHandle> h) : handle_(std::move(h)) {}
  void wait() {
    if (handle_) handle_->wait();
    handle_.reset();
  }
  bool pending() const { return handle_ != nullptr; }

 private:
  std::unique_ptr<WorkHandle> handle_;
};

struct CommOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(300)};  // per collective
  bool check_fingerprints = true;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "mpi", "nccl", "self"

  // Collectives, in place and asynchronous. Every rank must issue the same collectives in the
  // same order. Buffers must stay alive and untouched until wait() returns.
  virtual Work all_reduce(std::span<float> buf, ReduceOp op) = 0;
  virtual Work all_reduce(std::span<double> buf, ReduceOp op) = 0;
  // bfloat16 all-reduce (kSum or kAverage) for compressed gradients (comm/bf16.h): each pairwise
  // sum is added in fp32 and rounded once to bf16, as NCCL's ncclBfloat16 reductions; kAverage
  // divides the rounded sum by size() (exact for a power of two). Backends without it throw Error.
  virtual Work all_reduce_bf16(std::span<BFloat16> /*buf*/, ReduceOp /*op*/) {
    throw Error("the " + backend() + " communicator has no bfloat16 all-reduce (comm_hook BF16_COMPRESS_HOOK)");
  }
  virtual Work broadcast(std::span<std::byte> buf, int root) = 0;
  // out holds size() * in.size() elements: rank r's block at r * in.size(). `in` may be this
  // rank's own block of `out`. The byte form carries any trivially copyable record (every rank
  // runs the same binary): gather std::as_bytes of a span into std::as_writable_bytes of another.
  virtual Work all_gather(std::span<const float> in, std::span<float> out) = 0;
  virtual Work all_gather(std::span<const std::byte> in, std::span<std::byte> out) = 0;
  virtual Work barrier() = 0;

  // Ends every rank of the job at once after a fatal error (MPI_Abort for MPI-based backends), so
  // no peer hangs in its next collective. For main() only: library code throws Error instead.
  [[noreturn]] virtual void abort(int code) { std::_Exit(code); }

  // Declared in the fingerprint of every following collective.
  void set_phase(uint32_t phase, CommMode mode) {
    phase_ = phase;
    mode_ = mode;
  }
  uint32_t phase() const { return phase_; }
  CommMode mode() const { return mode_; }
  // Collectives issued so far by this rank (also the next sequence number).
  uint64_t collectives_issued() const { return seq_; }

 protected:
  uint64_t next_seq() { return seq_++; }

 private:
  uint32_t phase_ = 0;
  CommMode mode_ = CommMode::kNone;
  uint64_t seq_ = 0;
};

}  // namespace lockstep
