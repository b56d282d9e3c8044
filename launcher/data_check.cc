// check_data: the data faults a worker would meet after minutes of start-up (and bury in MPI_ABORT
// output), found from the files' headers in the launcher instead.
#include "launcher/data_check.h"

#include <algorithm>
#include <filesystem>
#include <string>

#include "layers/reference_models.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

std::string shape_text(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Does one sample of (H, W) pixels feed a model taking `sample`? The trainer hands (1, H, W) to
// (C, H, W) models and H*W values to flat ones.
bool fits(const Shape& sample, int64_t h, int64_t w) {
  if (sample.size() == 3) return sample[0] == 1 && sample[1] == h && sample[2] == w;
  if (sample.size() == 2) return sample[0] == h && sample[1] == w;
  return sample.size() == 1 && sample[0] == h * w;
}

void check_split(const proto::JobSpec& job, const std::string& path, const DatasetInfo& d) {
  const int64_t outputs = model_outputs(job);
  const int64_t classes = outputs > 0 ? std::min<int64_t>(outputs, kNumClasses) : kNumClasses;
  LOCKSTEP_FAIL_IF(d.max_label >= classes)
      << path << ": data.dir: " << d.labels_path << ": label " << d.max_label << " at index " << d.max_label_index
      << " is out of range [0, " << classes << ")"
      << (outputs > 0 && outputs <= kNumClasses ? " (the model has " + std::to_string(outputs) + " outputs)"
                                                 : " (lockstep trains on up to " + std::to_string(kNumClasses) +
                                                       " classes)");
  const Shape sample = job.model().reference().empty()
                           ? Shape(job.model().input_shape().begin(), job.model().input_shape().end())
                           : reference_model_input(job.model().reference());
  if (fits(sample, d.height, d.width)) return;
  const std::string images = d.images_path + " holds " + std::to_string(d.height) + "x" + std::to_string(d.width) +
                             " images";
  LOCKSTEP_FAIL_IF(!job.model().reference().empty())
      << path << ": data.dir: " << images << ", but model " << job.model().reference() << " takes "
      << shape_text(sample);
  LOCKSTEP_FAIL_IF(true) << path << ": model.input_shape: " << shape_text(sample) << " does not fit the data: "
                         << images << " (input_shape [1, " << d.height << ", " << d.width << "] or ["
                         << d.height * d.width << "])";
}

}  // namespace

int64_t model_outputs(const proto::JobSpec& job) {
  const auto& m = job.model();
  if (!m.reference().empty()) return kNumClasses;
  for (int i = m.layers_size() - 1; i >= 0; --i)
    if (m.layers(i).has_linear()) return m.layers(i).linear().out_features();
  return 0;
}

DataFacts check_data(const proto::JobSpec& job, const std::string& path) {
  const std::string& dir = job.data().dir();
  std::error_code ec;
  const auto st = std::filesystem::status(dir, ec);
  LOCKSTEP_FAIL_IF(!std::filesystem::exists(st)) << path << ": data.dir: " << dir << " does not exist";
  LOCKSTEP_FAIL_IF(!std::filesystem::is_directory(st))
      << path << ": data.dir: " << dir << " is not a directory (it should hold the IDX files)";
  DataFacts f;
  try {
    f.train = inspect_fashion_mnist(dir, /*train=*/true);
    f.test = inspect_fashion_mnist(dir, /*train=*/false);
  } catch (const Error& e) {
    throw Error(path + ": data.dir: " + e.what());
  }
  check_split(job, path, f.train);
  check_split(job, path, f.test);
  LOCKSTEP_FAIL_IF(job.batch_size() > f.train.size)
      << path << ": batch_size: global batch " << job.batch_size() << " is larger than the training set ("
      << f.train.size << " samples in " << f.train.images_path << ")";
  return f;
}

}  // namespace lockstep
