// im2col/col2im loops: the only convolution code not in the kernel library (it is a gather).
// Per output row, the in-bounds columns form one contiguous run [x0, x1): edges are zeroed
// (im2col) or skipped (col2im) and the run is a strided copy, a plain memcpy at stride 1.
#include "layers/im2col.h"

#include <algorithm>
#include <cstring>

namespace lockstep {
namespace {

// Output columns x whose input column x*stride - pad + kw lies in [0, w).
inline void valid_range(const ConvGeometry& g, int64_t kw, int64_t ow, int64_t& x0, int64_t& x1) {
  const int64_t off = kw - g.pad;  // ix = x*stride + off
  x0 = off >= 0 ? 0 : (-off + g.stride - 1) / g.stride;
  x1 = g.w - off <= 0 ? 0 : std::min(ow, (g.w - off + g.stride - 1) / g.stride);
  x0 = std::min(x0, x1);
}

}  // namespace

void im2col(const float* image, const ConvGeometry& g, float* col, int64_t ld) {
  const int64_t oh = g.oh(), ow = g.ow();
  for (int64_t c = 0; c < g.c; ++c) {
    const float* src = image + c * g.h * g.w;
    for (int64_t kh = 0; kh < g.k; ++kh) {
      for (int64_t kw = 0; kw < g.k; ++kw) {
        float* dst = col + ((c * g.k + kh) * g.k + kw) * ld;
        int64_t x0, x1;
        valid_range(g, kw, ow, x0, x1);
        const int64_t off = kw - g.pad;
        for (int64_t y = 0; y < oh; ++y) {
          const int64_t iy = y * g.stride - g.pad + kh;
          float* row = dst + y * ow;
          if (iy < 0 || iy >= g.h) {
            std::memset(row, 0, sizeof(float) * ow);
            continue;
          }
          const float* srow = src + iy * g.w + off;
          std::fill(row, row + x0, 0.f);
          if (g.stride == 1) {
            std::memcpy(row + x0, srow + x0, sizeof(float) * (x1 - x0));
          } else {
            for (int64_t x = x0; x < x1; ++x) row[x] = srow[x * g.stride];
          }
          std::fill(row + x1, row + ow, 0.f);
        }
      }
    }
  }
}

void col2im_add(const float* col, const ConvGeometry& g, int64_t ld, float* image) {
  const int64_t oh = g.oh(), ow = g.ow();
  for (int64_t c = 0; c < g.c; ++c) {
    float* dst = image + c * g.h * g.w;
    for (int64_t kh = 0; kh < g.k; ++kh) {
      for (int64_t kw = 0; kw < g.k; ++kw) {
        const float* src = col + ((c * g.k + kh) * g.k + kw) * ld;
        int64_t x0, x1;
        valid_range(g, kw, ow, x0, x1);
        const int64_t off = kw - g.pad;
        for (int64_t y = 0; y < oh; ++y) {
          const int64_t iy = y * g.stride - g.pad + kh;
          if (iy < 0 || iy >= g.h) continue;
          float* drow = dst + iy * g.w + off;
          const float* row = src + y * ow;
          if (g.stride == 1) {
            for (int64_t x = x0; x < x1; ++x) drow[x] += row[x];
          } else {
            for (int64_t x = x0; x < x1; ++x) drow[x * g.stride] += row[x];
          }
        }
      }
    }
  }
}

}  // namespace lockstep
