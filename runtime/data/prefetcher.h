// BatchPrefetcher: gathers (and augments) the next training batches of an epoch on a background
// thread while the training thread computes, into a bounded queue. Batches are a pure function of
// (dataset, sampler epoch, step, augmentation), so the batches, and the training, are bit for bit
// the ones gathered on the training thread (prefetch_batches 0).
//
// Note [prefetch lifetime]: one prefetcher serves one epoch from a given step (a resumed run starts
// mid-epoch). Its destructor stops the thread and joins it, so leaving the epoch any way (its end,
// a hook stopping the loop, an exception from a step) leaves no thread behind; the thread finishes
// at most the batch it is gathering first. An error while gathering is rethrown by next() at the
// step whose batch failed, on the training thread.
//
// Note [batch buffers]: the thread gathers into at most prefetch_batches + 1 batch buffers of its
// own, reused from step to step; next() copies a ready batch into the caller's x and y (reused when
// shaped right, as a gather on the training thread does) and hands the buffer back. A memcpy of
// the batch (about 0.03 ms for (128, 1, 28, 28)) is all the training thread does. Handing the
// thread's tensors to the training thread instead cost more than it saved: freeing them there
// (glibc returns them to the thread's arena) took about 0.15 ms a step, and a new input buffer
// every few steps slowed fmnist-cnn's training step by over 10% (measured, cause not traced).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/data/augment.h"
#include "runtime/data/dataset.h"
#include "runtime/data/distributed_sampler.h"
#include "runtime/tensor.h"

namespace lockstep {

// How a training batch is made (job field data.augment and data.prefetch_batches).
struct InputOptions {
  AugmentOptions augment{};
  // Ready batches held ahead of the training thread (memory: this many x (b, 1, H, W) floats); 0
  // gathers each batch on the training thread when it is asked for, with no thread at all.
  int64_t prefetch_batches = 2;
};

// One line for the job log, e.g. "random crop (padding 2), horizontal flip; prefetch 2 batches".
std::string describe(const InputOptions& o);

class BatchPrefetcher {
 public:
  // Batches first_step, first_step + 1, ... of the sampler's current epoch (a copy of the sampler
  // is kept: the caller may move on). ds must outlive the prefetcher.
  BatchPrefetcher(const Dataset& ds, const DistributedSampler& sampler, int64_t first_step, InputOptions o);
  ~BatchPrefetcher();
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // x: (b, 1, H, W) images and y: (b) labels of this rank's shard of `step`, which must be the
  // next step in order; x and y are overwritten in place when they already have that shape, else
  // reallocated. Rethrows an error the thread met gathering that batch.
  void next(int64_t step, Tensor& x, Tensor& y);

 private:
  struct Batch {
    int64_t step = 0;
    Tensor x{}, y{};
    std::exception_ptr error{};
  };
  void gather(int64_t step, Tensor& x, Tensor& y) const;
  void run(int64_t first_step);  // the thread: gathers steps [first_step, num_steps) while the queue has room

  const Dataset& ds_;
  const DistributedSampler sampler_;
  const InputOptions o_;
  int64_t next_;  // the step next() serves next (the training thread's alone)

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> ready_;  // at most o_.prefetch_batches, counting the one being gathered
  std::vector<Batch> spare_;  // buffers handed back by next(), for the thread to gather into
  bool stop_ = false;
  std::thread thread_;  // last: starts after everything it reads
};

}  // namespace lockstep
