// Data-parallel throughput for bench/scaling.sh: trains a reference model on Fashion-MNIST with a
// fixed per-rank batch (weak scaling, as DDP benchmarks do) and prints one JSON line from rank 0:
// global train samples/s (median of repeats), and on several ranks what the overlap of gradient
// all-reduce with backward buys. The same steps also run with every bucket started only after
// backward (DistributedOptions::overlap = false); finalize's wait per step is measured in both, and
// a bare all-reduce of the buckets is timed, so
//   hidden share = (finalize wait without overlap - finalize wait with overlap) / bare all-reduce
// (clamped to [0, 1]) is the share of gradient communication that backward covered. Both waits
// also hold the wait for a slower peer, alike in both modes, so it cancels in the difference (the
// step-time difference does not resolve sub-millisecond communication on a busy machine).
// Where a step's time goes: wall ms per step, CPU ms per step of the training thread (forward,
// backward, optimizer, and its share of the collectives' conversions) and of every other thread
// of the process (the communication thread: fingerprint checks and MPI's copies and sums), which
// on a machine with one core per rank is taken from the training thread's core.
// usage: ddp_bench MODEL [STEPS=40] [PER_RANK_BATCH=128] [REPEATS=3] [BUCKET_MB=25] [DATA_DIR]
//                  [COMM_HOOK=allreduce|bf16_compress] [CHUNK_MB=0]
// CHUNK_MB: the most one all-reduce moves (ReducerOptions::chunk_bytes, Note [chunks] in
// comm/reducer.h); 0, the default, sends each bucket whole, as PyTorch DDP does.
// One rank (no mpirun): the single-process Trainer, no communicator at all.
#include <algorithm>
#include <sys/resource.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "comm/bootstrap.h"
#include "comm/factory.h"
#include "layers/dropout.h"
#include "layers/init.h"
#include "layers/loss.h"
#include "layers/reference_models.h"
#include "runtime/data/dataset.h"
#include "runtime/data/distributed_sampler.h"
#include "runtime/gemm.h"
#include "runtime/optim/sgd.h"
#include "launcher/cli_number.h"
#include "launcher/train/trainer.h"

using namespace lockstep;

namespace {
double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}
double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}
}  // namespace

int main(int argc, char** argv) {
  const char* usage =
      "usage: ddp_bench MODEL [STEPS=40] [PER_RANK_BATCH=128] [REPEATS=3] [BUCKET_MB=25] [DATA_DIR] "
      "[COMM_HOOK=allreduce|bf16_compress] [CHUNK_MB=0]\n";
  if (argc < 2 || argc > 9 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    const bool help = argc >= 2 && argc <= 9;
    std::fputs(usage, help ? stdout : stderr);
    return help ? 0 : 2;
  }
  const std::string name = argv[1];
  int64_t steps = 40, per_rank = 128;
  int repeats = 3;
  double bucket_mb = 25.0, chunk_mb = 0;  // 0: whole buckets
  constexpr double kMinMb = 0.001, kMaxMb = 65536;  // the job file's range of distributed.bucket_mb, chunk_mb
  try {
    if (argc > 2) steps = cli::whole_number("STEPS", argv[2], 1, 1000000);
    if (argc > 3) per_rank = cli::whole_number("PER_RANK_BATCH", argv[3], 1, 1000000);
    if (argc > 4) repeats = static_cast<int>(cli::whole_number("REPEATS", argv[4], 1, 1000));
    if (argc > 5) bucket_mb = cli::real_number("BUCKET_MB", argv[5], kMinMb, kMaxMb);
    if (argc > 8 && std::string(argv[8]) != "0") chunk_mb = cli::real_number("CHUNK_MB", argv[8], kMinMb, kMaxMb);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ddp_bench: %s\n%s", e.what(), usage);
    return 2;
  }
  const std::string dir = argc > 6 && *argv[6] ? argv[6] : "/usr/share/datasets/fashion-mnist";  // "": default
  const std::string hook = argc > 7 ? argv[7] : "allreduce";
  try {
    set_kernel_threads(1);
    std::unique_ptr<Communicator> comm;
    if (default_backend() == "mpi") {
      CommSpec spec;
      spec.backend = "mpi";
      comm = make_communicator(spec);
    }
    const int world = comm ? comm->size() : 1, rank = comm ? comm->rank() : 0;
    const Dataset data = load_fashion_mnist(dir, true);
    auto model = make_reference_model(name);
    init_parameters(*model, 1);
    seed_dropout(*model, 1, static_cast<uint32_t>(rank));
    Sgd opt(model->parameters(), SgdOptions{.lr = 0.05f, .momentum = 0.9f});
    CrossEntropyLoss loss;
    DistributedOptions d{.comm = world > 1 ? comm.get() : nullptr};
    d.reducer.bucket_bytes = static_cast<int64_t>(bucket_mb * (1 << 20));
    d.reducer.chunk_bytes = static_cast<int64_t>(chunk_mb * (1 << 20));
    if (hook != "allreduce" && hook != "bf16_compress") {
      std::fprintf(stderr, "ddp_bench: COMM_HOOK must be allreduce or bf16_compress, got %s\n", hook.c_str());
      return 2;
    }
    if (hook == "bf16_compress") d.reducer.comm_hook = CommHook::kBf16Compress;
    Trainer trainer(*model, opt, loss, nullptr, TrainerOptions{.sample_shape = reference_model_input(name)}, d);
    std::unique_ptr<Trainer> serial;  // same model and optimizer, all-reduce after backward
    if (d.comm) {
      DistributedOptions ds = d;
      ds.overlap = false;
      serial = std::make_unique<Trainer>(*model, opt, loss, nullptr,
                                         TrainerOptions{.sample_shape = reference_model_input(name)}, ds);
      trainer.reducer()->attach_hooks();  // the serial reducer took the hooks over when built
    }
    DistributedSampler sampler(data.size(), {.global_batch = per_rank * world, .rank = rank, .world = world,
                                             .seed = 1});
    Tensor x, y;
    int64_t step = 0;
    auto run_with = [&](Trainer& t, int64_t n) {
      for (int64_t i = 0; i < n; ++i, ++step) {
        DistributedSampler::gather(data, sampler.shard(step % sampler.num_steps()), x, y);
        t.train_step(x, y, sampler.first_global_row());
      }
    };
    auto run = [&](int64_t n) { run_with(trainer, n); };
    if (d.comm) d.comm->set_phase(1, CommMode::kTrain);
    run(3);  // warm-up: caches, allocator, first collectives
    // Each serial-trainer round is timed right before its overlapped round, so drifting machine
    // load hits both alike. Each trainer's reducer takes the gradient hooks over for its rounds.
    std::vector<double> rates, serial_waits, overlap_waits, step_ms, main_cpu_ms, other_cpu_ms;
    for (int r = 0; r < repeats; ++r) {
      if (serial) {
        serial->reducer()->attach_hooks();
        d.comm->barrier().wait();
        serial->reducer()->reset_stats();
        run_with(*serial, steps);
        serial_waits.push_back(serial->reducer()->stats().finalize_wait_seconds / static_cast<double>(steps));
        trainer.reducer()->attach_hooks();
      }
      if (trainer.reducer()) {
        d.comm->barrier().wait();
        trainer.reducer()->reset_stats();
      }
      const auto t0 = std::chrono::steady_clock::now();
      const double main0 = thread_cpu_seconds(), proc0 = process_cpu_seconds();
      run(steps);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double main_cpu = thread_cpu_seconds() - main0, proc_cpu = process_cpu_seconds() - proc0;
      rates.push_back(static_cast<double>(steps * per_rank * world) / secs);
      step_ms.push_back(1e3 * secs / double(steps));
      main_cpu_ms.push_back(1e3 * main_cpu / double(steps));
      other_cpu_ms.push_back(1e3 * (proc_cpu - main_cpu) / double(steps));
      if (trainer.reducer())
        overlap_waits.push_back(trainer.reducer()->stats().finalize_wait_seconds / static_cast<double>(steps));
    }
    std::sort(rates.begin(), rates.end());
    double bare = 0, wait = 0, serial_wait = 0;
    size_t buckets = 0, chunks = 0;
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    if (trainer.reducer()) {
      bare = trainer.reducer()->time_bare_allreduce(10);
      buckets = trainer.reducer()->num_buckets();
      chunks = trainer.reducer()->num_chunks();
      wait = median(overlap_waits);
      serial_wait = median(serial_waits);
    }
    const double gain = serial_wait - wait;
    const double hidden = bare > 0 ? std::clamp(gain / bare, 0.0, 1.0) : 0.0;
    if (rank == 0) {
      std::printf("{\"impl\":\"lockstep\",\"model\":\"%s\",\"ranks\":%d,\"per_rank_batch\":%lld,"
                  "\"train_samples_per_sec\":%.1f,\"bucket_mb\":%g,\"chunk_mb\":%g,\"buckets\":%zu,\"chunks\":%zu,\"exposed_wait_ms_per_step\":%.3f,"
                  "\"serial_wait_ms_per_step\":%.3f,\"bare_allreduce_ms_per_step\":%.3f,\"overlap_gain_ms_per_step\":%.3f,"
                  "\"hidden_share\":%.3f,\"comm_hook\":\"%s\",\"step_ms\":%.3f,\"train_thread_cpu_ms_per_step\":%.3f,"
                  "\"other_threads_cpu_ms_per_step\":%.3f}\n",
                  name.c_str(), world, static_cast<long long>(per_rank), rates[rates.size() / 2], bucket_mb, chunk_mb, buckets, chunks,
                  wait * 1e3, serial_wait * 1e3, bare * 1e3, gain * 1e3, hidden, hook.c_str(), median(step_ms),
                  median(main_cpu_ms), median(other_cpu_ms));
    }
    if (comm) comm->barrier().wait();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ddp_bench: error: %s\n", e.what());
    return 1;
  }
}
