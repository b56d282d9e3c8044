// What prefetching saves: STEPS training steps of fmnist-cnn (or MODEL) on the "self"
// communicator, each batch taken from a BatchPrefetcher as the training loop takes it, with random
// crop and flip, prefetch 0 (gathered on the training thread) against 2 (a background thread).
// Reports per step: the input time the training thread sees (inside next(): gathering, or waiting
// for the thread), which is what prefetching removes; the wall time; the process CPU time (the
// thread's work included); minor page faults; and the gather + augmentation alone. The two runs
// alternate order per repeat, so a machine that slows down over the run favours neither; medians
// of REPEATS. Prints one JSON object. Wall-clock figures need a quiet machine with a core free for
// the thread.
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "comm/factory.h"
#include "launcher/cli_number.h"
#include "launcher/train/trainer.h"
#include "layers/init.h"
#include "layers/loss.h"
#include "layers/reference_models.h"
#include "runtime/data/augment.h"
#include "runtime/data/prefetcher.h"
#include "runtime/gemm.h"
#include "runtime/optim/sgd.h"

using namespace lockstep;
using Clock = std::chrono::steady_clock;

// CPU time of this process, every thread.
static double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Minor page faults of this process so far.
static double minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_minflt);
}

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

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

    std::vector<double> f0s, f2s;  // minor page faults per run
    // `steps` steps with a fresh model; appends seconds of wall, CPU and input time.
    auto run = [&](int64_t prefetch, std::vector<double>& wall, std::vector<double>& cpu, std::vector<double>& input) {
      auto model = make_reference_model(model_name);
      init_parameters(*model, 1);
      Sgd opt(model->parameters(), SgdOptions{.lr = 0.05f, .momentum = 0.9f});
      CrossEntropyLoss loss;
      Trainer trainer(*model, opt, loss, nullptr,
                      {.epochs = 1, .sample_shape = reference_model_input(model_name)}, {.comm = comm.get()});
      trainer.begin_phase(CommMode::kTrain);
      const auto t0 = Clock::now();
      const double c0 = cpu_now(), f0 = minor_faults();
      double in = 0;
      {
        BatchPrefetcher batches(train, sampler, 0, {.augment = augment, .prefetch_batches = prefetch});
        Tensor x, y;
        for (int64_t s = 0; s < steps; ++s) {
          const auto i0 = Clock::now();
          batches.next(s, x, y);
          in += std::chrono::duration<double>(Clock::now() - i0).count();
          trainer.train_step(x, y, sampler.first_global_row());
        }
      }
      wall.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      cpu.push_back(cpu_now() - c0);
      input.push_back(in);
      (prefetch ? f2s : f0s).push_back(minor_faults() - f0);
    };
    std::vector<double> t0s, t2s, c0s, c2s, i0s, i2s, gathers, unused, unused_in;
    sampler.set_epoch(0);
    run(0, unused, unused, unused_in);  // warm-up: page in the data set and the kernels
    for (int64_t r = 0; r < repeats; ++r) {
      if (r % 2 == 0) {
        run(0, t0s, c0s, i0s);
        run(2, t2s, c2s, i2s);
      } else {
        run(2, t2s, c2s, i2s);
        run(0, t0s, c0s, i0s);
      }
      Tensor x, y;
      const auto g0 = Clock::now();
      for (int64_t s = 0; s < steps; ++s) gather_augmented(train, sampler.shard(s), augment, 0, x, y);
      gathers.push_back(std::chrono::duration<double>(Clock::now() - g0).count());
    }
    const double a = median(t0s), b = median(t2s), g = median(gathers);
    std::printf(
        "{\"model\": \"%s\", \"batch\": %ld, \"steps\": %ld, \"repeats\": %ld, \"crop_padding\": %ld, "
        "\"horizontal_flip\": true, \"input_ms_per_step_prefetch0\": %.3f, \"input_ms_per_step_prefetch2\": %.3f, "
        "\"ms_per_step_prefetch0\": %.3f, \"ms_per_step_prefetch2\": %.3f, "
        "\"saved_percent\": %.2f, \"cpu_ms_per_step_prefetch0\": %.3f, \"cpu_ms_per_step_prefetch2\": %.3f, "
        "\"ms_gather_augment_per_step\": %.3f, \"page_faults_per_step_prefetch0\": %.1f, "
        "\"page_faults_per_step_prefetch2\": %.1f}\n",
        model_name.c_str(), static_cast<long>(batch), static_cast<long>(steps), static_cast<long>(repeats),
        static_cast<long>(padding), 1e3 * median(i0s) / steps, 1e3 * median(i2s) / steps, 1e3 * a / steps, 1e3 * b / steps, 100.0 * (a - b) / a, 1e3 * median(c0s) / steps,
        1e3 * median(c2s) / steps, 1e3 * g / steps, median(f0s) / steps, median(f2s) / steps);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "prefetch_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
