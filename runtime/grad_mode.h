// Grad mode: whether forward records what backward needs. Thread-local, like torch.no_grad, because
// it belongs to the calling thread's computation, not to any model. NoGradGuard turns recording off
// for a scope; layers then keep nothing, and backward() is an error.
#pragma once

namespace lockstep {

bool grad_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace lockstep
