// 2x2 stride-2 max pooling rows: deinterleave even/odd columns, max, record the first position.
#include "layers/pool_kernels.h"

#include <algorithm>

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>
// GCC 12 flags the pass-through operand inside _mm512_max_ps as maybe-uninitialized (a known
// false positive of its intrinsic headers).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace lockstep {
namespace {

// Output j of a row by PyTorch's rule (pool_window_argmax).
inline void max_pool2x2_window(const float* r0, const float* r1, int64_t j, float* out, uint8_t* pos) {
  const float v[4] = {r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]};
  const int64_t at = pool_window_argmax(v, 4);
  out[j] = v[at];
  if (pos) pos[j] = static_cast<uint8_t>(at);
}

}  // namespace

#if defined(__AVX512F__) && defined(__AVX512BW__)

namespace {
// Masks for the first n lanes of 16.
inline __mmask16 first(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }
}  // namespace

void max_pool2x2_row(const float* r0, const float* r1, int64_t ow, float* out, uint8_t* pos) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int64_t j = 0; j < ow; j += 16) {
    const int64_t n = std::min<int64_t>(16, ow - j), in = 2 * n;
    const __mmask16 lo = first(in), hi = first(in - 16 > 0 ? in - 16 : 0), m_out = first(n);
    const __m512 x0l = _mm512_maskz_loadu_ps(lo, r0 + 2 * j), x0h = _mm512_maskz_loadu_ps(hi, r0 + 2 * j + 16);
    const __m512 x1l = _mm512_maskz_loadu_ps(lo, r1 + 2 * j), x1h = _mm512_maskz_loadu_ps(hi, r1 + 2 * j + 16);
    const __m512 a = _mm512_permutex2var_ps(x0l, even, x0h), b = _mm512_permutex2var_ps(x0l, odd, x0h);
    const __m512 c = _mm512_permutex2var_ps(x1l, even, x1h), d = _mm512_permutex2var_ps(x1l, odd, x1h);
    const __m512 m = _mm512_max_ps(_mm512_max_ps(a, b), _mm512_max_ps(c, d));
    _mm512_mask_storeu_ps(out + j, m_out, m);
    if (pos) {
      __m512i p = _mm512_set1_epi32(3);
      p = _mm512_mask_mov_epi32(p, _mm512_cmp_ps_mask(c, m, _CMP_EQ_OQ), _mm512_set1_epi32(2));
      p = _mm512_mask_mov_epi32(p, _mm512_cmp_ps_mask(b, m, _CMP_EQ_OQ), _mm512_set1_epi32(1));
      p = _mm512_mask_mov_epi32(p, _mm512_cmp_ps_mask(a, m, _CMP_EQ_OQ), _mm512_setzero_si512());
      _mm512_mask_cvtepi32_storeu_epi8(pos + j, m_out, p);
    }
    // vmaxps returns its second operand when either is NaN, so a NaN can be lost; windows holding
    // a NaN (rare) are redone by the scalar rule.
    __mmask16 has_nan = _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(c, d, _CMP_UNORD_Q);
    has_nan &= m_out;
    while (has_nan) {
      const int lane = __builtin_ctz(has_nan);
      has_nan &= static_cast<__mmask16>(has_nan - 1);
      max_pool2x2_window(r0, r1, j + lane, out, pos);
    }
  }
}

void max_pool2x2_backward_row(const uint8_t* pos, const float* g, int64_t ow, float* d0, float* d1) {
  const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (int64_t j = 0; j < ow; j += 16) {
    const int64_t n = std::min<int64_t>(16, ow - j), in = 2 * n;
    const __mmask16 m_out = first(n), lo = first(in), hi = first(in - 16 > 0 ? in - 16 : 0);
    const __m512i p = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m_out, pos + j));
    const __m512 gv = _mm512_maskz_loadu_ps(m_out, g + j);
    auto at = [&](int k) { return _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(p, _mm512_set1_epi32(k)), gv); };
    const __m512 e0 = at(0), o0 = at(1), e1 = at(2), o1 = at(3);
    _mm512_mask_storeu_ps(d0 + 2 * j, lo, _mm512_permutex2var_ps(e0, lo_idx, o0));
    _mm512_mask_storeu_ps(d0 + 2 * j + 16, hi, _mm512_permutex2var_ps(e0, hi_idx, o0));
    _mm512_mask_storeu_ps(d1 + 2 * j, lo, _mm512_permutex2var_ps(e1, lo_idx, o1));
    _mm512_mask_storeu_ps(d1 + 2 * j + 16, hi, _mm512_permutex2var_ps(e1, hi_idx, o1));
  }
}

#else

void max_pool2x2_row(const float* r0, const float* r1, int64_t ow, float* out, uint8_t* pos) {
  for (int64_t j = 0; j < ow; ++j) max_pool2x2_window(r0, r1, j, out, pos);
}

void max_pool2x2_backward_row(const uint8_t* pos, const float* g, int64_t ow, float* d0, float* d1) {
  for (int64_t j = 0; j < ow; ++j) {
    d0[2 * j] = pos[j] == 0 ? g[j] : 0.f;
    d0[2 * j + 1] = pos[j] == 1 ? g[j] : 0.f;
    d1[2 * j] = pos[j] == 2 ? g[j] : 0.f;
    d1[2 * j + 1] = pos[j] == 3 ? g[j] : 0.f;
  }
}

#endif

}  // namespace lockstep
