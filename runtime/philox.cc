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

void Philox::uniform(uint32_t layer, float* out, int64_t n) const {
  const PhiloxKey k = key();
  const uint32_t s0 = static_cast<uint32_t>(state_.step);
  const uint32_t s1 = static_cast<uint32_t>(state_.step >> 32);
  for (int64_t base = 0; base < n; base += 4) {
    auto r = philox4x32_10({static_cast<uint32_t>(base / 4), layer, s0, s1}, k);
    for (int j = 0; j < 4 && base + j < n; ++j) out[base + j] = uniform01(r[j]);
  }
}

}  // namespace lockstep
