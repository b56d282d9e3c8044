// CRC-32C, one table lookup per byte (reflected, as RFC 3720 and TFRecord compute it). Event files
// checksum a few hundred bytes per step, so a byte-wise table is fast enough; no SSE4.2 path.
#include "launcher/tensorboard/crc32c.h"

#include <array>

namespace lockstep::tensorboard {
namespace {

constexpr uint32_t kPolynomial = 0x82F63B78u;  // 0x1EDC6F41 bit-reversed

constexpr std::array<uint32_t, 256> make_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int b = 0; b < 8; ++b) c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
    t[i] = c;
  }
  return t;
}

constexpr std::array<uint32_t, 256> kTable = make_table();

}  // namespace

uint32_t crc32c_extend(uint32_t crc, std::string_view bytes) {
  uint32_t c = ~crc;
  for (unsigned char b : bytes) c = kTable[(c ^ b) & 0xFFu] ^ (c >> 8);
  return ~c;
}

}  // namespace lockstep::tensorboard
