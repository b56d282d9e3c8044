// In-memory image classification data set (Fashion-MNIST and other IDX pairs): images as
// normalised floats, labels as class indices, checked once at load so training never sees bad input.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/data/idx.h"
#include "runtime/tensor.h"

namespace lockstep {

constexpr int32_t kNumClasses = 10;  // Fashion-MNIST and MNIST

struct Dataset {
  Tensor images;                // (N, 1, H, W) float, (x / 255 - mean) / stdv; (N, 1, 28, 28) here
  std::vector<int32_t> labels;  // N class indices in [0, kNumClasses)
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
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
