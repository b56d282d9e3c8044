// Reads golden fixtures written by tests/golden/golden_io.py (safetensors files of F32 tensors), and
// compares tensors against them.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>

#include "runtime/safetensors/safetensors.h"
#include "runtime/tensor.h"

namespace lockstep::testing {

inline std::string fixture_path(const std::string& name) {
  return std::string(LOCKSTEP_FIXTURE_DIR) + "/" + name;
}

// Every tensor of a safetensors fixture (F32 only), by name.
inline std::map<std::string, Tensor> load_golden(const std::string& name) {
  const safetensors::File f = safetensors::read_file(fixture_path(name));
  std::map<std::string, Tensor> out;
  for (const safetensors::Entry& e : f.tensors) {
    if (e.dtype != "F32") throw std::runtime_error(fixture_path(name) + ": " + e.name + " is " + e.dtype + ", not F32");
    Tensor t = Tensor::empty(e.shape);
    std::memcpy(t.data(), e.bytes.data(), e.bytes.size());
    out.emplace(e.name, std::move(t));
  }
  return out;
}

inline const Tensor& at(const std::map<std::string, Tensor>& g, const std::string& key) {
  auto it = g.find(key);
  if (it == g.end()) throw std::runtime_error("golden has no tensor " + key);
  return it->second;
}

// |a - b| <= atol + rtol * |b| elementwise, like torch.allclose, with the first offender reported.
inline ::testing::AssertionResult allclose(const Tensor& a, const Tensor& b, double atol, double rtol) {
  if (a.numel() != b.numel())
    return ::testing::AssertionFailure() << "numel " << a.numel() << " vs " << b.numel() << " (shapes "
                                         << shape_str(a.shape()) << " vs " << shape_str(b.shape()) << ")";
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < a.numel(); ++i) {
    double d = std::fabs(double(a[i]) - double(b[i]));
    if (!(d <= atol + rtol * std::fabs(double(b[i])))) {
      if (first < 0) first = i;
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << a.numel() << " elements differ; first at "
                                       << first << ": " << a[first] << " vs " << b[first];
}

}  // namespace lockstep::testing

#define EXPECT_ALLCLOSE(a, b, atol, rtol) EXPECT_TRUE(::lockstep::testing::allclose((a), (b), (atol), (rtol)))
