// im2col/col2im loops: the only convolution code not in the kernel library (it is a gather).
#include "layers/im2col.h"

#include <cstring>

namespace lockstep {

void im2col(const float* image, const ConvGeometry& g, float* col) {
  const int64_t oh = g.oh(), ow = g.ow();
  for (int64_t c = 0; c < g.c; ++c) {
    const float* src = image + c * g.h * g.w;
    for (int64_t kh = 0; kh < g.k; ++kh) {
      for (int64_t kw = 0; kw < g.k; ++kw) {
        float* dst = col + ((c * g.k + kh) * g.k + kw) * oh * ow;
        for (int64_t y = 0; y < oh; ++y) {
          const int64_t iy = y * g.stride - g.pad + kh;
          float* row = dst + y * ow;
          if (iy < 0 || iy >= g.h) {
            std::memset(row, 0, sizeof(float) * ow);
            continue;
          }
          const float* srow = src + iy * g.w;
          for (int64_t x = 0; x < ow; ++x) {
            const int64_t ix = x * g.stride - g.pad + kw;
            row[x] = (ix >= 0 && ix < g.w) ? srow[ix] : 0.f;
          }
        }
      }
    }
  }
}

void col2im_add(const float* col, const ConvGeometry& g, float* image) {
  const int64_t oh = g.oh(), ow = g.ow();
  for (int64_t c = 0; c < g.c; ++c) {
    float* dst = image + c * g.h * g.w;
    for (int64_t kh = 0; kh < g.k; ++kh) {
      for (int64_t kw = 0; kw < g.k; ++kw) {
        const float* src = col + ((c * g.k + kh) * g.k + kw) * oh * ow;
        for (int64_t y = 0; y < oh; ++y) {
          const int64_t iy = y * g.stride - g.pad + kh;
          if (iy < 0 || iy >= g.h) continue;
          float* drow = dst + iy * g.w;
          const float* row = src + y * ow;
          for (int64_t x = 0; x < ow; ++x) {
            const int64_t ix = x * g.stride - g.pad + kw;
            if (ix >= 0 && ix < g.w) drow[ix] += row[x];
          }
        }
      }
    }
  }
}

}  // namespace lockstep
