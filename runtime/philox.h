// Philox4x32-10 counter-based RNG (Salmon et al., SC'11; the generator behind PyTorch's CUDA RNG).
// A draw is a pure function of (key, counter): no hidden sequence state, so any element of any step
// can be drawn independently on any rank, and a rerun reproduces it bit for bit.
//   key     = (seed, rank << 8 | stream)
//   counter = (element block, layer, step low, step high); each counter yields 4 uint32 draws.
#pragma once

#include <array>
#include <cstdint>

namespace lockstep {

// Streams keep independent uses of one seed apart.
enum class RngStream : uint32_t { kInit = 1, kDropout = 2, kShuffle = 3, kAugment = 4, kTest = 255 };

using PhiloxKey = std::array<uint32_t, 2>;
using PhiloxCounter = std::array<uint32_t, 4>;

std::array<uint32_t, 4> philox4x32_10(PhiloxCounter ctr, PhiloxKey key);

// Maps 24 random bits to a float uniform on [0, 1).
inline float uniform01(uint32_t bits) { return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f); }

// The saved and restorable state of one consumer of random numbers: its key and its step.
struct RngState {
  uint64_t seed = 0;
  uint32_t rank = 0;
  RngStream stream = RngStream::kTest;
  uint64_t step = 0;
};

class Philox {
 public:
  explicit Philox(RngState state) : state_(state) {}
  PhiloxKey key() const;
  // Four draws for element block `block` of `layer` at the current step.
  std::array<uint32_t, 4> draw(uint32_t layer, uint64_t block) const;
  // Fills out[0..n) with uniforms on [0,1) for `layer` at the current step (element i -> draw i).
  void uniform(uint32_t layer, float* out, int64_t n) const;
  void advance() { ++state_.step; }
  const RngState& state() const { return state_; }
  void set_state(const RngState& s) { state_ = s; }

 private:
  RngState state_;
};

}  // namespace lockstep
