// Whole-process throughput benchmark: train samples/s at a given batch (train mode, full step) and
// eval samples/s (eval mode, no-grad) of a reference model on Fashion-MNIST already in memory,
// with peak resident memory, in fp32 or bf16 autocast (5th argument, default fp32). Prints one JSON
// object; bench/run.sh sets it beside the PyTorch peer. Inputs are channels_last, the Trainer's
// default; LOCKSTEP_BENCH_MEMORY_FORMAT=contiguous measures the NCHW path instead.
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "layers/init.h"
#include "layers/loss.h"
#include "layers/reference_models.h"
#include "runtime/data/dataset.h"
#include "runtime/data/loader.h"
#include "runtime/gemm.h"
#include "runtime/precision.h"
#include "runtime/optim/sgd.h"
#include "launcher/cli_number.h"
#include "launcher/train/trainer.h"

using namespace lockstep;

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of this process: on a busy machine it tells apart our cost from time spent descheduled.
static double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  const char* usage = "usage: train_bench [MODEL=fmnist-cnn] [STEPS=40] [REPEATS=3] [DATA_DIR] [fp32|bf16]\n";
  if (argc > 6 || (argc > 1 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h"))) {
    std::fputs(usage, argc > 6 ? stderr : stdout);
    return argc > 6 ? 2 : 0;
  }
  const std::string model_name = argc > 1 ? argv[1] : "fmnist-cnn";
  int steps = 40, repeats = 3;
  try {
    if (argc > 2) steps = static_cast<int>(cli::whole_number("STEPS", argv[2], 1, 1000000));
    if (argc > 3) repeats = static_cast<int>(cli::whole_number("REPEATS", argv[3], 1, 1000));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_bench: %s\n%s", e.what(), usage);
    return 2;
  }
  const std::string data_dir = argc > 4 ? argv[4] : "/usr/share/datasets/fashion-mnist";
  const std::string precision_arg = argc > 5 ? argv[5] : "fp32";  // "fp32" or "bf16"
  if (precision_arg != "fp32" && precision_arg != "bf16") {
    std::fprintf(stderr, "train_bench: precision must be fp32 or bf16, got %s\n", precision_arg.c_str());
    return 2;
  }
  const Precision precision = precision_arg == "bf16" ? Precision::kBF16 : Precision::kFP32;
  const int64_t batch = 128;
  set_kernel_threads(1);
  try {
    if (const std::string why = precision_unsupported(precision); !why.empty()) {
      std::fprintf(stderr, "train_bench: precision: %s\n", why.c_str());
      return 1;
    }
    Dataset train = load_fashion_mnist(data_dir, true);
    Dataset test = load_fashion_mnist(data_dir, false);
    auto model = make_reference_model(model_name);
    init_parameters(*model, 1);
    Sgd opt(model->parameters(), SgdOptions{.lr = 0.05f, .momentum = 0.9f});
    CrossEntropyLoss loss;
    const char* format_env = std::getenv("LOCKSTEP_BENCH_MEMORY_FORMAT");
    const bool contiguous = format_env && std::string(format_env) == "contiguous";
    Trainer trainer(*model, opt, loss, nullptr,
                    {.epochs = 1,
                     .eval_batch_size = batch,
                     .sample_shape = reference_model_input(model_name),
                     .memory_format = contiguous ? MemoryFormat::kContiguous : MemoryFormat::kChannelsLast,
                     .precision = precision});
    BatchLoader loader(train, batch, true, 1);
    Tensor x, y;
    for (int i = 0; i < 3; ++i) {  // warm-up
      loader.batch(i, x, y);
      trainer.train_step(x, y);
    }
    std::vector<double> train_rates, eval_rates, train_cpu_rates;
    for (int r = 0; r < repeats; ++r) {
      double t0 = now(), c0 = cpu_now();
      for (int i = 0; i < steps; ++i) {
        loader.batch(i % loader.num_batches(), x, y);
        trainer.train_step(x, y);
      }
      train_rates.push_back(steps * batch / (now() - t0));
      train_cpu_rates.push_back(steps * batch / (cpu_now() - c0));
      Dataset slice = test;
      const int64_t n = std::min<int64_t>(test.size(), steps * batch * 2);
      slice.pixels.resize(static_cast<size_t>(n * test.sample_numel()));
      slice.labels.resize(static_cast<size_t>(n));
      t0 = now();
      trainer.evaluate(slice);
      eval_rates.push_back(n / (now() - t0));
    }
    std::sort(train_rates.begin(), train_rates.end());
    std::sort(eval_rates.begin(), eval_rates.end());
    std::sort(train_cpu_rates.begin(), train_cpu_rates.end());
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    std::printf("{\"impl\":\"lockstep\",\"model\":\"%s\",\"precision\":\"%s\",\"train_samples_per_sec\":%.1f,"
                "\"eval_samples_per_sec\":%.1f,\"peak_rss_mb\":%.1f,\"train_samples_per_cpu_sec\":%.1f}\n",
                model_name.c_str(), precision_arg.c_str(), train_rates[train_rates.size() / 2],
                eval_rates[eval_rates.size() / 2], ru.ru_maxrss / 1024.0, train_cpu_rates[train_cpu_rates.size() / 2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
