// The newest StepMetrics of this rank, shared by the step loop (which publishes) and the heartbeat
// thread (which sends). Owned through a shared_ptr by both, so a heartbeat that fires while the
// step loop's objects are being torn down still reads live memory.
// Note [heartbeat lifetime]: the heartbeat thread belongs to the CoordinatorClient, which outlives
// the Worker; nothing the heartbeat callback touches may belong to the Worker.
#pragma once

#include <functional>
#include <mutex>

#include "proto/coordinator.pb.h"

namespace lockstep {

class StepMetricsBoard {
 public:
  proto::StepMetrics get() const {
    std::lock_guard<std::mutex> g(mu_);
    return m_;
  }
  // Applies f to the metrics under the lock.
  void update(const std::function<void(proto::StepMetrics&)>& f) {
    std::lock_guard<std::mutex> g(mu_);
    f(m_);
  }

 private:
  mutable std::mutex mu_;
  proto::StepMetrics m_;
};

}  // namespace lockstep
