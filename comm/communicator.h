// Communicator: the collective interface every data-parallel piece talks to. Collectives are in
// place and asynchronous; wait() on the returned Work. Backends (MPI, NCCL) live in subfolders and
// only comm/ names them.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

namespace lockstep {

enum class ReduceOp { kSum, kAverage, kMax, kMin };

class WorkHandle {
 public:
  virtual ~WorkHandle() = default;
  virtual void wait() = 0;
};

class Work {
 public:
  Work() = default;
  explicit Work(std::unique_ptr<WorkHandle> h) : handle_(std::move(h)) {}
  void wait() {
    if (handle_) handle_->wait();
    handle_.reset();
  }

 private:
  std::unique_ptr<WorkHandle> handle_;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual Work all_reduce(std::span<float> buf, ReduceOp op) = 0;
  virtual Work broadcast(std::span<std::byte> buf, int root) = 0;
  virtual Work all_gather(std::span<const float> in, std::span<float> out) = 0;
  virtual Work barrier() = 0;
};

}  // namespace lockstep
