// Overflow-checked size arithmetic for shape inference. Sizes come from users (a job's layer fields,
// its input shape) and may be anything up to 2^63, so products and sums are checked, never wrapped
// (a wrapped product once turned an input of 2^96 values into "(1, 0)").
#pragma once

#include <cstdint>
#include <optional>

#include "runtime/tensor.h"

namespace lockstep {

// The most elements one tensor of a model may hold: a parameter, or one sample's activation.
constexpr int64_t kMaxTensorElements = int64_t{1} << 31;

inline std::optional<int64_t> checked_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<int64_t> checked_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// Product of dims[from..], nullopt when it overflows int64 (dims must be non-negative).
inline std::optional<int64_t> checked_numel(const Shape& dims, size_t from = 0) {
  int64_t n = 1;
  for (size_t i = from; i < dims.size(); ++i) {
    const auto p = checked_mul(n, dims[i]);
    if (!p) return std::nullopt;
    n = *p;
  }
  return n;
}

}  // namespace lockstep
