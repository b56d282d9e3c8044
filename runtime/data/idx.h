// IDX file reader (the MNIST / Fashion-MNIST format), gzipped or plain: a big-endian header
// (magic 0x000008NN for unsigned bytes in NN dimensions, then NN u32 sizes) followed by the bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lockstep {

struct IdxArray {
  std::vector<int64_t> dims;  // e.g. (60000, 28, 28) for images, (60000) for labels
  std::vector<uint8_t> data;  // product(dims) bytes, C order
};

// Throws lockstep::Error with one line naming path when the file is missing, its magic is not
// unsigned-byte IDX, it is shorter than its header says, or it holds more than its header says.
IdxArray read_idx(const std::string& path);

}  // namespace lockstep
