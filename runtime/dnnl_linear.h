// A fully connected layer's three GEMMs in bf16 through oneDNN's matmul primitive, built once per
// shape: bf16 inputs, f32 accumulation and f32 outputs, as torch.autocast("cpu",
// dtype=torch.bfloat16) runs torch.nn.functional.linear (on AMX oneDNN picks
// avx512_core_amx_bf16; on AVX-512 without it, bf16 emulated in f32 registers). The caller's tensors
// are plain row-major float32; reorders convert them to bf16 at the edge.
#pragma once

#include <cstdint>
#include <memory>

namespace lockstep {

struct DnnlLinearShape {
  int64_t n, in, out;  // x: (N, in), weight: (out, in), y: (N, out)
  bool bias = false;
  bool operator==(const DnnlLinearShape&) const = default;
};

// x in bf16, (N, in) row-major: what forward keeps for backward (half the bytes of fp32).
struct Bf16Matrix {
  std::shared_ptr<uint16_t[]> data;
  int64_t rows = 0, cols = 0;
  bool defined() const { return data != nullptr; }
};

class DnnlLinear {
 public:
  // Null where oneDNN has no bf16 matmul (a CPU below AVX-512).
  static std::unique_ptr<DnnlLinear> create(const DnnlLinearShape& s);
  explicit DnnlLinear(const DnnlLinearShape& s);  // throws (LOCKSTEP_CHECK) where oneDNN has none
  ~DnnlLinear();
  DnnlLinear(const DnnlLinear&) = delete;
  DnnlLinear& operator=(const DnnlLinear&) = delete;

  const DnnlLinearShape& shape() const;

  // y (N, out) f32 = bf16(x) (N, in) bf16(w)^T (in, out) + b (out, f32), accumulated in f32.
  // x: (N, in) f32; w: (out, in) f32; b: null without bias. Returns bf16(x) when keep_input (for
  // backward), else an empty matrix.
  Bf16Matrix forward(const float* x, const float* w, const float* b, float* y, bool keep_input);
  // x: forward's kept bf16 input (N, in); dy: (N, out) f32, rounded to bf16 once for both GEMMs.
  // dx (N, in) = bf16(dy) bf16(w), overwritten, skipped if null; dw (out, in) += bf16(dy)^T x, in f32.
  // The bias gradient is the caller's (an f32 sum over dy's rows).
  void backward(const Bf16Matrix& x, const float* dy, const float* w, float* dx, float* dw);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep
