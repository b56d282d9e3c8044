// 2-D convolution through oneDNN's convolution primitives (forward, backward-data and
// backward-weights with bias), built once per shape and reused every step. The caller's weights are
// plain OIHW float32, its activations NCHW, or NHWC when channels_last (torch.channels_last). For
// NCHW, oneDNN picks its preferred (blocked) layouts and the object reorders at its edges; NHWC
// activations are oneDNN's nhwc, which its convolutions run as fast as blocked ones: no reorder.
// Faster than im2col + one GEMM per image for small channel counts (ResNet's 16-64), where the
// GEMMs are too thin to reach the kernel's peak.
//
// Under dtype kBF16 (torch.autocast("cpu", dtype=torch.bfloat16) semantics) the caller's tensors
// stay float32 and the edge reorders convert: forward reads bf16 src and weights and writes an f32
// dst (f32 bias); backward-data reads bf16 diff_dst and weights and writes f32 diff_src;
// backward-weights reads bf16 src and diff_dst and writes f32 diff_weights and diff_bias. Every
// kernel accumulates in f32 (on AMX oneDNN picks avx512_core_amx_bf16, on AVX-512 it emulates bf16).
#pragma once

#include <cstdint>
#include <memory>

#include "runtime/precision.h"

namespace lockstep {

struct DnnlConvShape {
  int64_t n, c_in, h, w;  // input (N, C_in, H, W)
  int64_t c_out, k;       // square kernel; weight (C_out, C_in/groups, K, K)
  int64_t stride = 1, pad = 0, dil = 1, groups = 1;
  bool bias = false;
  bool channels_last = false;  // activations (x, y, dx, dy) stored (N, H, W, C)
  Precision dtype = Precision::kFP32;  // kBF16: bf16 src/weights/diff_dst, f32 dst and gradients
  bool operator==(const DnnlConvShape&) const = default;
};

class DnnlConv {
 public:
  // Null where oneDNN has no implementation for the shape (and dtype: no bf16 below AVX-512).
  static std::unique_ptr<DnnlConv> create(const DnnlConvShape& s);
  // Throws (LOCKSTEP_CHECK) where oneDNN has no implementation for the shape.
  explicit DnnlConv(const DnnlConvShape& s);
  ~DnnlConv();
  DnnlConv(const DnnlConv&) = delete;
  DnnlConv& operator=(const DnnlConv&) = delete;

  const DnnlConvShape& shape() const;
  int64_t oh() const;
  int64_t ow() const;

  // x: (N, C_in, H, W), w: (C_out, C_in/G, K, K), b: (C_out) or null -> y: (N, C_out, OH, OW);
  // x, y, dx and dy below in the shape's activation format.
  // keep_input (fp32 only): keeps a copy of x in backward-weights' layout when that differs from
  // the caller's (NCHW), saving a reorder in backward. Under kBF16 no copy is kept: backward
  // converts x again, so bf16 training holds no more memory than fp32.
  void forward(const float* x, const float* w, const float* b, float* y, bool keep_input);
  // x: forward's input, still alive (converted to backward-weights' layout and dtype where they
  // differ, unless forward kept that copy, which is used and released); dy: (N, C_out, OH, OW). dx (N, C_in, H, W) =
  // conv_backward_data(dy, w), overwritten, skipped if null; dw += dL/dw, db += dL/db (with bias).
  void backward(const float* x, const float* dy, const float* w, float* dx, float* dw, float* db);
  bool has_kept_input() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep
