// What prefetching saves: wall time of STEPS training steps of the real loop (train_loop on the
// "self" communicator) with batches gathered and augmented on the training thread (prefetch 0)
// against a background thread (prefetch 2), runs interleaved, medians of REPEATS. Also times the
// gather + augmentation alone, the most prefetching can hide per step. Prints one JSON object.
// Wall-clock figures: run it on a quiet machine.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "comm/factory.h"
#include "launcher/cli_number.h"
#include "launcher/train/loop.h"
#include "layers/init.h"
#include "layers/loss.h"
#include "layers/reference_models.h"
#include "runtime/data/augment.h"
#include "runtime/gemm.h"
#include "runtime/optim/sgd.h"

using namespace lockstep;
using Clock = std::chrono::steady_clock;

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Stops the loop at the boundary after `steps` steps.
class StopAfter : public LoopHooks {
 public:
  explicit StopAfter(uint64_t steps) : steps_(steps) {}
  bool at_boundary(const TrainPosition& pos, const StepSums&, bool) override { return pos.step >= steps_; }

 private:
  uint64_t steps_;
};

int main(int argc, char** argv) {
  const char* usage = "usage: prefetch_bench [MODEL=fmnist-cnn] [STEPS=100] [REPEATS=3] [CROP_PADDING=2] [DATA_DIR]\n";
  if (argc > 6 || (argc > 1 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h"))) {
    std::fputs(usage, argc > 6 ? stderr : stdout);
    return argc > 6 ? 2 : 0;
  }
  const std::string model_name = argc > 1 ? argv[1] : "fmnist-cnn";
  int64_t steps = 100, repeats = 3, padding = 2;
  try {
    if (argc > 2) steps = cli::whole_number("STEPS", argv[2], 1, 1000000);
    if (argc > 3) repeats = cli::whole_number("REPEATS", argv[3], 1, 1000);
    if (argc > 4) padding = cli::whole_number("CROP_PADDING", argv[4], 0, 64);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prefetch_bench: %s\n%s", e.what(), usage);
    return 2;
  }
  const std::string data_dir = argc > 5 ? argv[5] : "/usr/share/datasets/fashion-mnist";
  const int64_t batch = 128;
  set_kernel_threads(1);
  try {
    const Dataset train = load_fashion_mnist(data_dir, true);
    CommSpec spec;
    spec.backend = "self";
    auto comm = make_communicator(spec);
    const AugmentOptions augment{.crop_padding = padding, .horizontal_flip = true, .seed = 1};
    DistributedSampler sampler(train.size(), {.global_batch = batch, .seed = 1});
    LOCKSTEP_FAIL_IF(steps > sampler.num_steps()) << "STEPS: at most " << sampler.num_steps() << " (one epoch)";

    // One loop of `steps` steps with a fresh model; seconds of wall time.
    auto run = [&](int64_t prefetch) {
      auto model = make_reference_model(model_name);
      init_parameters(*model, 1);
      Sgd opt(model->parameters(), SgdOptions{.lr = 0.05f, .momentum = 0.9f});
      CrossEntropyLoss loss;
      Trainer trainer(*model, opt, loss, nullptr,
                      {.epochs = 1, .sample_shape = reference_model_input(model_name),
                       .input = {.augment = augment, .prefetch_batches = prefetch}},
                      {.comm = comm.get()});
      StopAfter stop(static_cast<uint64_t>(steps));
      const auto t0 = Clock::now();
      train_loop(trainer, sampler, train, stop);
      return std::chrono::duration<double>(Clock::now() - t0).count();
    };
    run(0);  // warm-up: page in the data set and the kernels
    std::vector<double> t0s, t2s, gathers;
    for (int64_t r = 0; r < repeats; ++r) {
      t0s.push_back(run(0));
      t2s.push_back(run(2));
      sampler.set_epoch(0);
      Tensor x, y;
      const auto g0 = Clock::now();
      for (int64_t s = 0; s < steps; ++s) gather_augmented(train, sampler.shard(s), augment, 0, x, y);
      gathers.push_back(std::chrono::duration<double>(Clock::now() - g0).count());
    }
    const double a = median(t0s), b = median(t2s), g = median(gathers);
    std::printf(
        "{\"model\": \"%s\", \"batch\": %ld, \"steps\": %ld, \"repeats\": %ld, \"crop_padding\": %ld, "
        "\"horizontal_flip\": true, \"ms_per_step_prefetch0\": %.3f, \"ms_per_step_prefetch2\": %.3f, "
        "\"saved_percent\": %.2f, \"ms_gather_augment_per_step\": %.3f}\n",
        model_name.c_str(), static_cast<long>(batch), static_cast<long>(steps), static_cast<long>(repeats),
        static_cast<long>(padding), 1e3 * a / steps, 1e3 * b / steps, 100.0 * (a - b) / a, 1e3 * g / steps);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prefetch_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
