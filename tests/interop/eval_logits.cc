// lockstep_eval_logits: a job's model in eval mode under no-grad over a data set's test split, its
// logits written as a safetensors file, so a test compares them with PyTorch's (roundtrip.py).
// Weights come from a checkpoint (the run's own state, independent of safetensors) or from a
// safetensors file through model.init_from's loader.
//   lockstep_eval_logits JOB.textproto DATA_DIR (--checkpoint DIR | --safetensors FILE) --out FILE
// Output: "logits" F32 (N, classes) for the test split's N samples, in file order.
#include <cstdio>
#include <string>

#include "launcher/init_weights.h"
#include "launcher/job_builder.h"
#include "launcher/job_file.h"
#include "runtime/check.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/data/dataset.h"
#include "runtime/grad_mode.h"
#include "runtime/safetensors/safetensors.h"

int main(int argc, char** argv) {
  using namespace lockstep;
  try {
    LOCKSTEP_FAIL_IF(argc != 7) << "usage: lockstep_eval_logits JOB DATA_DIR (--checkpoint DIR | --safetensors FILE) --out FILE";
    const std::string job_path = argv[1], data_dir = argv[2], kind = argv[3], weights = argv[4], out = argv[6];
    proto::JobSpec job = parse_job(job_path);
    job.mutable_data()->set_dir(data_dir);
    validate_job(job, job_path);
    BuiltModel built = build_model(job);
    Module& model = *built.model;
    if (kind == "--checkpoint") {
      copy_tensors(read_checkpoint(weights).model, model.state_dict(), "model");
    } else {
      LOCKSTEP_FAIL_IF(kind != "--safetensors") << "unknown weights option " << kind;
      job.mutable_model()->set_init_from(weights);
      load_init_from(job, model, [](const std::string& n) { std::fprintf(stderr, "%s\n", n.c_str()); });
    }
    const auto& d = job.data();
    const Dataset test = load_fashion_mnist(data_dir, false, d.has_mean() ? d.mean() : 0.2860f,
                                            d.has_std() ? d.std() : 0.3530f);
    model.eval();
    NoGradGuard no_grad;
    const bool channels_last = job.model().memory_format() == proto::ModelSpec::CHANNELS_LAST;
    std::string bytes;
    int64_t classes = 0;
    constexpr int64_t kBatch = 250;
    for (int64_t start = 0; start < test.size(); start += kBatch) {
      const int64_t b = std::min(kBatch, test.size() - start);
      Shape s{b};
      s.insert(s.end(), built.sample_shape.begin(), built.sample_shape.end());
      Tensor x = test.images(start, b).reshape(s);
      if (x.ndim() == 4 && channels_last) x = x.to_channels_last();  // as the Trainer feeds it
      const Tensor logits = model.forward(x).contiguous();
      classes = logits.dim(1);
      bytes.append(reinterpret_cast<const char*>(logits.data()), static_cast<size_t>(logits.numel()) * sizeof(float));
    }
    safetensors::File f;
    f.tensors.push_back({.name = "logits", .dtype = "F32", .shape = {test.size(), classes}, .bytes = bytes});
    safetensors::write_file(out, f);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lockstep_eval_logits: error: %s\n", e.what());
    return 1;
  }
}
