// In-memory image classification data set (Fashion-MNIST and other IDX pairs): images as
// normalised floats, labels as class indices, checked once at load so training never sees bad input.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/data/idx.h"
#include "runtime/tensor.h"

namespace lockstep {

constexpr int32_t kNumClasses = 10;  // Fashion-MNIST and MNIST

// Pixels stay bytes in memory (a quarter of the floats' size) and are normalised as batches are
// copied out, through a 256-entry table.
struct Dataset {
  std::vector<uint8_t> pixels;  // (N, H, W) bytes
  int64_t height = 0, width = 0;
  std::array<float, 256> table{};  // byte b -> (b / 255 - mean) / stdv
  std::vector<int32_t> labels;     // N class indices in [0, kNumClasses)

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t sample_numel() const { return height * width; }
  // out[0 .. H*W) = normalised pixels of sample i.
  void copy_sample(int64_t i, float* out) const;
  // (count, 1, H, W) normalised images of samples [start, start + count).
  Tensor images(int64_t start, int64_t count) const;
};

// images: (N, H, W) bytes; labels: (N) bytes below kNumClasses. Errors start with `what` (the
// paths the arrays came from) and fit on one line.
Dataset make_dataset(const IdxArray& images, const IdxArray& labels, float mean, float stdv,
                     const std::string& what);

// Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte from dir, preferring the .gz name over the
// plain one. The defaults are Fashion-MNIST's training-set pixel mean and standard deviation.
Dataset load_fashion_mnist(const std::string& dir, bool train, float mean = 0.2860f,
                           float stdv = 0.3530f);

}  // namespace lockstep
