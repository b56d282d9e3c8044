// Builds a Dataset from IDX arrays: validates shapes and labels, and normalises pixels through a
// 256-entry table computed as torchvision does (x / 255 first, then (x - mean) / std, in float).
#include "runtime/data/dataset.h"

#include <array>
#include <filesystem>

#include "runtime/check.h"

namespace lockstep {
namespace {

// dir/name.gz if it exists, else dir/name if it exists; otherwise an error naming both.
std::string find_file(const std::string& dir, const std::string& name) {
  const std::string plain = (std::filesystem::path(dir) / name).string();
  const std::string gz = plain + ".gz";
  std::error_code ec;
  if (std::filesystem::exists(gz, ec)) return gz;
  LOCKSTEP_FAIL_IF(!std::filesystem::exists(plain, ec)) << "cannot open " << gz << " or " << plain;
  return plain;
}

}  // namespace

DatasetInfo inspect_fashion_mnist(const std::string& dir, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  DatasetInfo info;
  info.images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  info.labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  const std::vector<int64_t> dims = read_idx_dims(info.images_path);
  LOCKSTEP_FAIL_IF(dims.size() != 3)
      << info.images_path << ": images have " << dims.size() << " dimensions; expected 3 (N, H, W)";
  const std::vector<int64_t> label_dims = read_idx_dims(info.labels_path);
  LOCKSTEP_FAIL_IF(label_dims.size() != 1)
      << info.labels_path << ": labels have " << label_dims.size() << " dimensions; expected 1 (N)";
  LOCKSTEP_FAIL_IF(label_dims[0] != dims[0])
      << info.images_path << " + " << info.labels_path << ": " << dims[0] << " images but " << label_dims[0]
      << " labels";
  LOCKSTEP_FAIL_IF(dims[0] == 0) << info.images_path << ": holds no samples";
  LOCKSTEP_FAIL_IF(dims[1] == 0 || dims[2] == 0)
      << info.images_path << ": images are " << dims[1] << "x" << dims[2] << " pixels";
  const IdxArray labels = read_idx(info.labels_path);
  info.size = dims[0];
  info.height = dims[1];
  info.width = dims[2];
  for (size_t i = 0; i < labels.data.size(); ++i)
    if (labels.data[i] > info.max_label) {
      info.max_label = labels.data[i];
      info.max_label_index = static_cast<int64_t>(i);
    }
  return info;
}

Dataset make_dataset(const IdxArray& images, const IdxArray& labels, float mean, float stdv,
                     const std::string& what) {
  LOCKSTEP_FAIL_IF(images.dims.size() != 3)
      << what << ": images have " << images.dims.size() << " dimensions; expected 3 (N, H, W)";
  LOCKSTEP_FAIL_IF(labels.dims.size() != 1)
      << what << ": labels have " << labels.dims.size() << " dimensions; expected 1 (N)";
  const int64_t n = images.dims[0], h = images.dims[1], w = images.dims[2];
  LOCKSTEP_FAIL_IF(labels.dims[0] != n) << what << ": " << n << " images but " << labels.dims[0] << " labels";
  LOCKSTEP_FAIL_IF(n == 0) << what << ": holds no samples";
  LOCKSTEP_FAIL_IF(!(stdv > 0.f)) << what << ": normalisation std must be positive, got " << stdv;

  Dataset ds;
  ds.labels.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t y = labels.data[static_cast<size_t>(i)];
    LOCKSTEP_FAIL_IF(y >= kNumClasses) << what << ": label " << y << " at index " << i
                                       << " is out of range [0, " << kNumClasses << ")";
    ds.labels[static_cast<size_t>(i)] = y;
  }
  for (int b = 0; b < 256; ++b) ds.table[b] = (static_cast<float>(b) / 255.f - mean) / stdv;
  ds.pixels = images.data;
  ds.height = h;
  ds.width = w;
  return ds;
}

void Dataset::copy_sample(int64_t i, float* out) const {
  const int64_t per = sample_numel();
  const uint8_t* src = pixels.data() + i * per;
  for (int64_t p = 0; p < per; ++p) out[p] = table[src[p]];
}

Tensor Dataset::images(int64_t start, int64_t count) const {
  LOCKSTEP_CHECK(start >= 0 && count >= 0 && start + count <= size())
      << "samples [" << start << ", " << start + count << ") of " << size();
  Tensor t = Tensor::empty({count, 1, height, width});
  for (int64_t i = 0; i < count; ++i) copy_sample(start + i, t.data() + i * sample_numel());
  return t;
}

Dataset load_fashion_mnist(const std::string& dir, bool train, float mean, float stdv) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  return make_dataset(read_idx(images_path), read_idx(labels_path), mean, stdv,
                      images_path + " + " + labels_path);
}

}  // namespace lockstep
