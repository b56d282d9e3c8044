// Mixed precision: which dtype the compute-bound kernels (convolution, GEMM) run in, as
// torch.autocast("cpu", dtype=torch.bfloat16) chooses it. Thread-local like grad mode, because it
// belongs to the calling thread's computation. Under kBF16 a convolution or Linear converts its
// inputs and weights to bf16 at its edge, accumulates in fp32 and writes an fp32 output; master
// weights, optimizer state, BatchNorm statistics, the loss and softmax stay fp32, and every
// lockstep::Tensor holds fp32. Kernels may keep the bf16 copy of an input for backward.
#pragma once

#include <string>

namespace lockstep {

enum class Precision { kFP32, kBF16 };

const char* precision_name(Precision p);  // "FP32", "BF16" (the job file's spelling)

// The precision kernels run in on this thread: kFP32 outside any AutocastGuard.
Precision autocast_precision();

// Sets the autocast precision for a scope and restores the previous one on exit
// (torch.autocast(device_type="cpu", dtype=...) as a context manager).
class AutocastGuard {
 public:
  explicit AutocastGuard(Precision p);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  Precision previous_;
};

}  // namespace lockstep
