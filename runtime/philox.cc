// Philox4x32-10 rounds and the uniform fill used by dropout, shuffling and initialisation.
#include "runtime/philox.h"

namespace lockstep {
namespace {
constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // round multipliers
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // Weyl key increments

inline void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}
}  // namespace

std::array<uint32_t, 4> philox4x32_10(PhiloxCounter c, PhiloxKey k) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kM0, c[0], hi0, lo0);
    mulhilo(kM1, c[2], hi1, lo1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
    k[0] += kW0;
    k[1] += kW1;
  }
  return c;
}

PhiloxKey Philox::key() const {
  return {static_cast<uint32_t>(state_.seed) ^ static_cast<uint32_t>(state_.seed >> 32),
          (state_.rank << 8) | static_cast<uint32_t>(state_.stream)};
}

std::array<uint32_t, 4> Philox::draw(uint32_t layer, uint64_t block) const {
  return philox4x32_10({static_cast<uint32_t>(block), layer, static_cast<uint32_t>(state_.step),
                        static_cast<uint32_t>(state_.step >> 32)},
                       key());
}

// The same draws as draw() per block, computed for kLanes blocks at once in lane arrays so the
// compiler vectorises the rounds (32x32->64-bit multiplies): dropout masks are drawn every step.
void Philox::uniform(uint32_t layer, float* out, int64_t n) const {
  constexpr int kLanes = 16;
  const PhiloxKey k = key();
  const uint32_t s0 = static_cast<uint32_t>(state_.step);
  const uint32_t s1 = static_cast<uint32_t>(state_.step >> 32);
  const int64_t blocks = (n + 3) / 4;
  for (int64_t b0 = 0; b0 < blocks; b0 += kLanes) {
    uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
    for (int j = 0; j < kLanes; ++j) {
      c0[j] = static_cast<uint32_t>(b0 + j);
      c1[j] = layer;
      c2[j] = s0;
      c3[j] = s1;
    }
    uint32_t k0 = k[0], k1 = k[1];
    for (int round = 0; round < 10; ++round) {
#pragma omp simd
      for (int j = 0; j < kLanes; ++j) {
        const uint64_t p0 = static_cast<uint64_t>(kM0) * c0[j];
        const uint64_t p1 = static_cast<uint64_t>(kM1) * c2[j];
        const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1[j] ^ k0;
        const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3[j] ^ k1;
        c0[j] = n0;
        c1[j] = static_cast<uint32_t>(p1);
        c2[j] = n2;
        c3[j] = static_cast<uint32_t>(p0);
      }
      k0 += kW0;
      k1 += kW1;
    }
    const int64_t first = b0 * 4;
    if (first + 4 * kLanes <= n) {
#pragma omp simd
      for (int j = 0; j < kLanes; ++j) {
        out[first + 4 * j] = uniform01(c0[j]);
        out[first + 4 * j + 1] = uniform01(c1[j]);
        out[first + 4 * j + 2] = uniform01(c2[j]);
        out[first + 4 * j + 3] = uniform01(c3[j]);
      }
    } else {
      for (int j = 0; j < kLanes; ++j) {
        const uint32_t r[4] = {c0[j], c1[j], c2[j], c3[j]};
        for (int lane = 0; lane < 4 && first + 4 * j + lane < n; ++lane) out[first + 4 * j + lane] = uniform01(r[lane]);
      }
    }
  }
}

}  // namespace lockstep
