// Philox4x32-10 against the Random123 known-answer vectors (kat_vectors), and the uniform map.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "runtime/philox.h"

namespace lockstep {
namespace {

using Words = std::array<uint32_t, 4>;

// Word 2 is 0xbc57ac4c as in Random123's tests/kat_vectors (a copy reading ...ac4e is a typo; an
// independent implementation that reproduces the other two vectors also gives ...ac4c).
TEST(Philox, KnownAnswerZero) {
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}), (Words{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
}

TEST(Philox, KnownAnswerAllOnes) {
  const uint32_t f = 0xffffffffu;
  EXPECT_EQ(philox4x32_10({f, f, f, f}, {f, f}), (Words{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
}

TEST(Philox, KnownAnswerPi) {
  EXPECT_EQ(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (Words{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

// The counter layout documented in philox.h: (block, layer, step low, step high).
TEST(Philox, DrawUsesDocumentedCounter) {
  const uint64_t step = (uint64_t{7} << 32) | 9;
  Philox rng(RngState{.seed = 123, .rank = 2, .stream = RngStream::kDropout, .step = step});
  EXPECT_EQ(rng.draw(5, 11), philox4x32_10({11, 5, 9, 7}, rng.key()));
  EXPECT_EQ(rng.key(), (PhiloxKey{123, (2u << 8) | 2u}));
}

TEST(Philox, UniformInUnitIntervalWithMeanHalf) {
  EXPECT_EQ(uniform01(0), 0.f);
  EXPECT_LT(uniform01(0xffffffffu), 1.f);
  const int64_t n = int64_t{1} << 20;
  std::vector<float> u(n);
  Philox(RngState{.seed = 42, .stream = RngStream::kTest}).uniform(0, u.data(), n);
  double sum = 0;
  for (float x : u) {
    ASSERT_GE(x, 0.f);
    ASSERT_LT(x, 1.f);
    sum += x;
  }
  // A uniform on [0,1) has variance 1/12, so the mean of n draws has sigma sqrt(1 / (12 n)).
  const double sigma = std::sqrt(1.0 / (12.0 * double(n)));
  EXPECT_NEAR(sum / double(n), 0.5, 5 * sigma);
}

}  // namespace
}  // namespace lockstep
