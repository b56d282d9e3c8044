// The prefetch thread and its bounded queue (Note [prefetch lifetime] in prefetcher.h).
#include "runtime/data/prefetcher.h"

#include <pthread.h>

#include <csignal>
#include <cstring>
#include <utility>

#include "runtime/check.h"

namespace lockstep {

BatchPrefetcher::BatchPrefetcher(const Dataset& ds, const DistributedSampler& sampler, int64_t first_step,
                                 InputOptions o)
    : ds_(ds), sampler_(sampler), o_(o), next_(first_step) {
  LOCKSTEP_CHECK(o.prefetch_batches >= 0) << "prefetch_batches " << o.prefetch_batches;
  LOCKSTEP_CHECK(first_step >= 0 && first_step <= sampler.num_steps())
      << "first step " << first_step << " of " << sampler.num_steps();
  if (o_.prefetch_batches > 0 && first_step < sampler_.num_steps()) thread_ = std::thread([this, first_step] { run(first_step); });
}

BatchPrefetcher::~BatchPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BatchPrefetcher::gather(int64_t step, Tensor& x, Tensor& y) const {
  const std::vector<int64_t> indices = sampler_.shard(step);
  gather_augmented(ds_, indices, o_.augment, sampler_.epoch(), x, y);
}

void BatchPrefetcher::run(int64_t first_step) {
  // Asynchronous signals (SIGTERM, a preemption warning, ^C) go to the process's other threads,
  // whose handlers expect them, never to this one.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  const auto depth = static_cast<size_t>(o_.prefetch_batches);
  for (int64_t step = first_step; step < sampler_.num_steps(); ++step) {
    Batch b;  // a spare buffer when there is one (Note [batch buffers])
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || ready_.size() < depth; });
      if (stop_) return;
      if (!spare_.empty()) {
        b = std::move(spare_.back());
        spare_.pop_back();
      }
    }
    b.step = step;
    try {
      gather(step, b.x, b.y);
    } catch (...) {
      b.error = std::current_exception();
    }
    const bool failed = b.error != nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_.push_back(std::move(b));
    }
    cv_.notify_all();
    if (failed) return;  // next() rethrows it at this step; later batches are never asked for
  }
}

std::string describe(const InputOptions& o) {
  const AugmentOptions& a = o.augment;
  std::string s = a.enabled() ? "" : "no augmentation";
  if (a.crop_padding > 0) s += "random crop (padding " + std::to_string(a.crop_padding) + ")";
  if (a.horizontal_flip) s += std::string(a.crop_padding > 0 ? ", " : "") + "horizontal flip";
  return s + "; " + (o.prefetch_batches > 0 ? "prefetch " + std::to_string(o.prefetch_batches) + " batches"
                                            : "no prefetch (batches gathered on the training thread)");
}

// dst := src, in dst's storage when it has src's shape.
static void copy_into(const Tensor& src, Tensor& dst) {
  if (!dst.defined() || dst.shape() != src.shape()) dst = Tensor::empty(src.shape());
  if (src.numel()) std::memcpy(dst.data(), src.data(), static_cast<size_t>(src.numel()) * sizeof(float));
}

void BatchPrefetcher::next(int64_t step, Tensor& x, Tensor& y) {
  LOCKSTEP_CHECK(step == next_ && step < sampler_.num_steps())
      << "prefetcher: asked for step " << step << ", the next is " << next_ << " of " << sampler_.num_steps();
  ++next_;
  if (!thread_.joinable()) return gather(step, x, y);
  Batch b;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !ready_.empty(); });
    b = std::move(ready_.front());
    ready_.pop_front();
  }
  if (b.error) std::rethrow_exception(b.error);
  LOCKSTEP_CHECK(b.step == step) << "prefetcher: got step " << b.step << " for step " << step;
  copy_into(b.x, x);
  copy_into(b.y, y);
  {
    std::lock_guard<std::mutex> lock(mu_);
    spare_.push_back(std::move(b));
  }
  cv_.notify_all();
}

}  // namespace lockstep
