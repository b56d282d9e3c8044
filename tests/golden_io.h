// Reads golden fixtures written by tests/golden/golden_io.py, and compares tensors against them.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>

#include "runtime/tensor.h"

namespace lockstep::testing {

inline std::string fixture_path(const std::string& name) {
  return std::string(LOCKSTEP_FIXTURE_DIR) + "/" + name;
}

inline std::map<std::string, Tensor> load_golden(const std::string& name) {
  std::string path = fixture_path(name);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open golden fixture " + path);
  char magic[8];
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "LSGOLD1\n", 8) != 0) throw std::runtime_error("bad magic in " + path);
  std::map<std::string, Tensor> out;
  uint32_t len;
  while (in.read(reinterpret_cast<char*>(&len), 4)) {
    std::string key(len, '\0');
    in.read(key.data(), len);
    uint32_t ndim;
    in.read(reinterpret_cast<char*>(&ndim), 4);
    Shape shape(ndim);
    if (ndim) in.read(reinterpret_cast<char*>(shape.data()), 8 * ndim);
    Tensor t = Tensor::empty(shape);
    in.read(reinterpret_cast<char*>(t.data()), 4 * t.numel());
    if (!in) throw std::runtime_error("truncated golden fixture " + path + " at " + key);
    out.emplace(key, std::move(t));
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
