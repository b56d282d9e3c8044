// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TFRecord framing, and
// TFRecord's masked form. Debian ships no CRC-32C library, so this is the one checksum lockstep
// computes itself; tests/tensorboard checks it against RFC 3720 B.4's vectors.
#pragma once

#include <cstdint>
#include <string_view>

namespace lockstep::tensorboard {

// CRC-32C of bytes, continuing from crc (the CRC of the bytes before them; 0 to start), as
// crc32c(a + b) == crc32c_extend(crc32c(a), b). crc32c("123456789") == 0xE3069283.
uint32_t crc32c_extend(uint32_t crc, std::string_view bytes);
inline uint32_t crc32c(std::string_view bytes) { return crc32c_extend(0, bytes); }

// TFRecord's masked CRC (tensorflow/core/lib/hash/crc32c.h, Mask): rotated right by 15 bits plus
// a constant, so a CRC stored inside checksummed data does not checksum to a fixed value.
inline uint32_t masked_crc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

}  // namespace lockstep::tensorboard
