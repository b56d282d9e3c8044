// CRC-32C against RFC 3720 B.4's test vectors and the check value of the CRC catalogue; TFRecord's
// mask as tensorflow/core/lib/hash/crc32c.h defines it.
#include <gtest/gtest.h>

#include <string>

#include "launcher/tensorboard/crc32c.h"

namespace lockstep::tensorboard {
namespace {

std::string bytes(int n, int (*at)(int)) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>(at(i)));
  return s;
}

TEST(Crc32c, Rfc3720Vectors) {
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  EXPECT_EQ(crc32c(bytes(32, [](int i) { return i; })), 0x46DD794Eu);       // 0x00, 0x01, ..., 0x1F
  EXPECT_EQ(crc32c(bytes(32, [](int i) { return 31 - i; })), 0x113FDB5Cu);  // 0x1F, 0x1E, ..., 0x00
}

TEST(Crc32c, CheckValue) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
}

TEST(Crc32c, ExtendContinuesAcrossPieces) {
  const std::string all = "The quick brown fox jumps over the lazy dog";
  for (size_t cut = 0; cut <= all.size(); ++cut)
    ASSERT_EQ(crc32c_extend(crc32c(all.substr(0, cut)), all.substr(cut)), crc32c(all)) << "cut at " << cut;
}

TEST(Crc32c, MaskRotatesRightBy15AndAddsTheConstant) {
  EXPECT_EQ(masked_crc32c(0), 0xa282ead8u);
  EXPECT_EQ(masked_crc32c(1u << 15), 1u + 0xa282ead8u);          // bit 15 rotates to bit 0
  EXPECT_EQ(masked_crc32c(1u), (1u << 17) + 0xa282ead8u);        // bit 0 rotates to bit 17
  EXPECT_EQ(masked_crc32c(0xFFFFFFFFu), 0xFFFFFFFFu + 0xa282ead8u);  // wraps modulo 2^32
}

}  // namespace
}  // namespace lockstep::tensorboard
