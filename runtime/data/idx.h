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

// The dims of an IDX file from its header alone (no data is read), for checks before a job
// starts. Same errors as read_idx for the magic (naming the element type a foreign IDX file
// holds, e.g. float) and a truncated header; a plain (not gzipped) file is also checked to hold
// exactly the bytes its header describes.
std::vector<int64_t> read_idx_dims(const std::string& path);

}  // namespace lockstep
