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

// The instruction set oneDNN runs on this CPU (dnnl::get_effective_cpu_isa(), which the
// ONEDNN_MAX_CPU_ISA environment variable caps): "avx2", "avx512_core", "avx512_core_amx", ...
std::string cpu_isa_name();

// Empty where this CPU runs `p`; else one line saying why not, e.g. "BF16 needs a CPU with AVX-512
// (oneDNN ISA avx512_core or newer); this CPU's is avx2". oneDNN 2.6 has bf16 convolution and
// matmul on avx512_core (emulated: converted to f32 in registers), avx512_core_bf16 (native dot
// products) and avx512_core_amx (tiles), and none below AVX-512, so BF16 is allowed exactly where
// it can create them. Job start refuses BF16 with this line; AutocastGuard itself does not check
// (kernels without a bf16 implementation run in fp32).
std::string precision_unsupported(Precision p);

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
