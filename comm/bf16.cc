// The bf16 conversion loops (vectorisable: branch-free but for the NaN test).
#include "comm/bf16.h"

#include "runtime/check.h"

namespace lockstep {

void compress_bf16(std::span<const float> in, std::span<BFloat16> out) {
  LOCKSTEP_CHECK(in.size() == out.size()) << "compress_bf16: " << in.size() << " floats into " << out.size();
  for (size_t i = 0; i < in.size(); ++i) out[i] = to_bf16(in[i]);
}

void decompress_bf16(std::span<const BFloat16> in, std::span<float> out, float scale) {
  LOCKSTEP_CHECK(in.size() == out.size()) << "decompress_bf16: " << in.size() << " bf16 into " << out.size();
  for (size_t i = 0; i < in.size(); ++i) out[i] = from_bf16(in[i]) * scale;
}

void add_bf16(std::span<const BFloat16> in, std::span<BFloat16> inout) {
  LOCKSTEP_CHECK(in.size() == inout.size()) << "add_bf16: " << in.size() << " and " << inout.size();
  for (size_t i = 0; i < in.size(); ++i) inout[i] = to_bf16(from_bf16(in[i]) + from_bf16(inout[i]));
}

}  // namespace lockstep
