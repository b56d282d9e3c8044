// bfloat16 as gradient all-reduce carries it (PyTorch DDP's bf16_compress_hook): the top 16 bits of
// an fp32 (sign, 8-bit exponent, 7 stored mantissa bits), so every fp32 range survives and about 3
// significant decimal digits do. Rounding is to nearest, ties to even, as torch's
// tensor.to(torch.bfloat16); a NaN stays a (quiet) NaN, so a poisoned gradient still poisons the
// sum (trainer's non-finite check).
#pragma once

#include <bit>
#include <cstdint>
#include <span>

namespace lockstep {

struct BFloat16 {
  uint16_t bits = 0;
};
static_assert(sizeof(BFloat16) == 2);

inline BFloat16 to_bf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {static_cast<uint16_t>((u >> 16) | 0x0040u)};  // NaN: quiet
  // Adding 0x7fff plus the lowest kept bit rounds to nearest, ties to even; overflow carries into
  // the exponent, up to infinity, as IEEE rounding does.
  return {static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)};
}

inline float from_bf16(BFloat16 h) { return std::bit_cast<float>(static_cast<uint32_t>(h.bits) << 16); }

// out[i] = to_bf16(in[i]); out.size() == in.size().
void compress_bf16(std::span<const float> in, std::span<BFloat16> out);
// out[i] = from_bf16(in[i]) * scale (scale 1: exact widening).
void decompress_bf16(std::span<const BFloat16> in, std::span<float> out, float scale = 1.f);
// inout[i] = to_bf16(from_bf16(in[i]) + from_bf16(inout[i])): one pairwise step of a bf16 sum,
// added in fp32 and rounded once (the reduction of the MPI backend's bf16 all-reduce).
void add_bf16(std::span<const BFloat16> in, std::span<BFloat16> inout);

}  // namespace lockstep
