// im2col / col2im for one image, so convolution becomes a GEMM.
// image: (C, H, W); col: (C*K*K, OH*OW), rows `ld` floats apart (ld >= OH*OW), row (c*K + kh)*K + kw.
// Kernel tap (kh, kw) of output (y, x) reads input (y*stride - pad + kh*dil, x*stride - pad + kw*dil).
#pragma once

#include <cstdint>

namespace lockstep {

struct ConvGeometry {
  int64_t c, h, w;       // input channels and size
  int64_t k, stride, pad;
  int64_t dil = 1;
  int64_t span() const { return dil * (k - 1) + 1; }  // the dilated kernel's extent
  int64_t oh() const { return (h + 2 * pad - span()) / stride + 1; }
  int64_t ow() const { return (w + 2 * pad - span()) / stride + 1; }
};

void im2col(const float* image, const ConvGeometry& g, float* col, int64_t ld);
// image += col2im(col); image must be zeroed by the caller first. col is scratch: it may be
// overwritten.
void col2im_add(float* col, const ConvGeometry& g, int64_t ld, float* image);

}  // namespace lockstep
