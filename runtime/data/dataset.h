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

// images: (N, H, W) bytes, N >= 1; labels: (N) bytes below kNumClasses. Errors start with `what` (the
// paths the arrays came from) and fit on one line.
Dataset make_dataset(const IdxArray& images, const IdxArray& labels, float mean, float stdv,
                     const std::string& what);

// What one split's files say, from the image file's header and the label bytes only (pixels are
// not read: fast enough for a check before a job starts).
struct DatasetInfo {
  std::string images_path, labels_path;
  int64_t size = 0, height = 0, width = 0;
  int32_t max_label = -1;       // largest label, and the first sample that has it
  int64_t max_label_index = -1;
};

// The checks make_dataset makes, but on headers: missing files, IDX magic and truncated headers,
// images (N, H, W) and labels (N), equal counts, at least one sample. Labels are not checked
// against a class count (the caller knows the model). Errors name the file and fit on one line.
DatasetInfo inspect_fashion_mnist(const std::string& dir, bool train);

// Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte from dir, preferring the .gz name over the
// plain one. The defaults are Fashion-MNIST's training-set pixel mean and standard deviation.
Dataset load_fashion_mnist(const std::string& dir, bool train, float mean = 0.2860f,
                           float stdv = 0.3530f);

}  // namespace lockstep
