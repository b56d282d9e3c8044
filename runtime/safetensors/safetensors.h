// The safetensors file format (huggingface/safetensors, "Format"): an 8-byte little-endian
// unsigned header size N, N bytes of UTF-8 JSON
//   {"KEY": {"dtype": "F32", "shape": [d0, d1, ..], "data_offsets": [begin, end]}, ..,
//    "__metadata__": {"STRING": "STRING", ..}}
// (which may end in spaces, 0x20, for alignment), then the byte buffer: every tensor's raw
// little-endian, row-major bytes at [begin, end) counted from the buffer's first byte. The reader
// checks every rule the format states and treats the file as hostile: header size at most
// kMaxHeaderBytes and inside the file; valid JSON object starting with '{'; no duplicate key; a
// known dtype; end - begin == numel * dtype size (with overflow checks); ranges that tile the buffer
// exactly (no overlap, no hole, ending at the end of the file); metadata values strings only.
// Errors are one line naming the file, the key and the value at fault:
//   "w.safetensors: key \"fc.weight\": data_offsets [0, 100] hold 100 bytes, F32 shape [10, 64] needs 2560".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tensor.h"

namespace lockstep::safetensors {

// The reference implementation refuses headers above 100 MB (SafeTensorError::HeaderTooLarge).
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct Entry {
  std::string name;
  std::string dtype;  // "F32", "I64", .. (the format's names)
  Shape shape;        // () for a scalar
  std::string bytes;  // numel * dtype_size(dtype) bytes, little-endian, row-major
};

struct File {
  std::vector<Entry> tensors;  // reading: in the order of their data in the buffer
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

// Bytes per element of a dtype of the format (F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL
// F8_E4M3 F8_E5M2); 0 for a name the format does not define.
int dtype_size(std::string_view dtype);

// File bytes: the header padded with spaces to a multiple of 8 bytes (as the reference writer
// does), then the tensors' bytes in `tensors` order. Throws Error naming `file` and the key for an
// entry whose bytes do not match its dtype and shape, an unknown dtype, or a duplicate key.
std::string encode(const File& f, const std::string& file);
// Parses and checks file bytes; `file` names the file in errors.
File decode(std::string_view bytes, const std::string& file);

// Writes `path` atomically: a temporary file beside it, fsynced, renamed over `path`, directory
// fsynced. On failure the temporary file is removed and `path` is untouched; Error names the path
// and the OS error.
void write_file(const std::string& path, const File& f);
// Reads and decodes `path`; Error names it ("cannot open: No such file or directory").
File read_file(const std::string& path);

}  // namespace lockstep::safetensors
