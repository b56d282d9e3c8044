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
  const int64_t off = kw * g.dil - g.pad;  // ix = x*stride + off
  x0 = off >= 0 ? 0 : (-off + g.stride - 1) / g.stride;
  x1 = g.w - off <= 0 ? 0 : std::min(ow, (g.w - off + g.stride - 1) / g.stride);
  x0 = std::min(x0, x1);
}


// "Same" convolution at stride 1 (OH = H, OW = W): row (c, kh, kw) of col is the image shifted by
// (kh*dil - pad) * W + (kw*dil - pad) elements, so it is one contiguous copy, after which the
// columns that wrapped around a row edge (and the rows past the top or bottom) are zeroed. Needs
// pad < W: a horizontal shift of a whole row or more would zero past the row.
bool is_same_stride1(const ConvGeometry& g) {
  return g.stride == 1 && g.pad < g.w && g.oh() == g.h && g.ow() == g.w;
}

void im2col_same(const float* image, const ConvGeometry& g, float* col, int64_t ld) {
  const int64_t hw = g.h * g.w;
  for (int64_t c = 0; c < g.c; ++c) {
    const float* src = image + c * hw;
    for (int64_t kh = 0; kh < g.k; ++kh)
      for (int64_t kw = 0; kw < g.k; ++kw) {
        float* dst = col + ((c * g.k + kh) * g.k + kw) * ld;
        const int64_t dx = kw * g.dil - g.pad, shift = (kh * g.dil - g.pad) * g.w + dx;
        const int64_t lo = std::max<int64_t>(0, -shift), hi = std::min<int64_t>(hw, hw - shift);
        std::fill(dst, dst + lo, 0.f);
        std::memcpy(dst + lo, src + lo + shift, sizeof(float) * std::max<int64_t>(0, hi - lo));
        std::fill(dst + std::max(lo, hi), dst + hw, 0.f);
        if (dx < 0)
          for (int64_t y = 0; y < g.h; ++y) std::fill(dst + y * g.w, dst + y * g.w - dx, 0.f);
        else if (dx > 0)
          for (int64_t y = 0; y < g.h; ++y) std::fill(dst + (y + 1) * g.w - dx, dst + (y + 1) * g.w, 0.f);
      }
  }
}

// col2im of the same layout: the wrapped columns of col (scratch, owned by the caller) are zeroed,
// then each row adds into the shifted image in one contiguous run.
void col2im_same_add(float* col, const ConvGeometry& g, int64_t ld, float* image) {
  const int64_t hw = g.h * g.w;
  for (int64_t c = 0; c < g.c; ++c) {
    float* dst = image + c * hw;
    for (int64_t kh = 0; kh < g.k; ++kh)
      for (int64_t kw = 0; kw < g.k; ++kw) {
        float* src = col + ((c * g.k + kh) * g.k + kw) * ld;
        const int64_t dx = kw * g.dil - g.pad, shift = (kh * g.dil - g.pad) * g.w + dx;
        if (dx < 0)
          for (int64_t y = 0; y < g.h; ++y) std::fill(src + y * g.w, src + y * g.w - dx, 0.f);
        else if (dx > 0)
          for (int64_t y = 0; y < g.h; ++y) std::fill(src + (y + 1) * g.w - dx, src + (y + 1) * g.w, 0.f);
        const int64_t lo = std::max<int64_t>(0, -shift), hi = std::min<int64_t>(hw, hw - shift);
        float* d = dst + shift;
#pragma omp simd
        for (int64_t t = lo; t < hi; ++t) d[t] += src[t];
      }
  }
}

}  // namespace

void im2col(const float* image, const ConvGeometry& g, float* col, int64_t ld) {
  if (is_same_stride1(g)) return im2col_same(image, g, col, ld);
  const int64_t oh = g.oh(), ow = g.ow();
  for (int64_t c = 0; c < g.c; ++c) {
    const float* src = image + c * g.h * g.w;
    for (int64_t kh = 0; kh < g.k; ++kh) {
      for (int64_t kw = 0; kw < g.k; ++kw) {
        float* dst = col + ((c * g.k + kh) * g.k + kw) * ld;
        int64_t x0, x1;
        valid_range(g, kw, ow, x0, x1);
        const int64_t off = kw * g.dil - g.pad;
        for (int64_t y = 0; y < oh; ++y) {
          const int64_t iy = y * g.stride - g.pad + kh * g.dil;
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

void col2im_add(float* col, const ConvGeometry& g, int64_t ld, float* image) {
  if (is_same_stride1(g)) return col2im_same_add(col, g, ld, image);
  const int64_t oh = g.oh(), ow = g.ow();
  for (int64_t c = 0; c < g.c; ++c) {
    float* dst = image + c * g.h * g.w;
    for (int64_t kh = 0; kh < g.k; ++kh) {
      for (int64_t kw = 0; kw < g.k; ++kw) {
        const float* src = col + ((c * g.k + kh) * g.k + kw) * ld;
        int64_t x0, x1;
        valid_range(g, kw, ow, x0, x1);
        const int64_t off = kw * g.dil - g.pad;
        for (int64_t y = 0; y < oh; ++y) {
          const int64_t iy = y * g.stride - g.pad + kh * g.dil;
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
