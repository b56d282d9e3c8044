// The lockstep command. `lockstep train JOB` trains the job's model and prints per-epoch train
// loss, test loss and test accuracy; the same figures go to the metrics file. Under mpirun every
// process is one data-parallel rank (batch_size is the global batch); only rank 0 prints and writes
// metrics. The only place an Error becomes an exit code; on more than one rank an error aborts
// every rank (Communicator::abort), so no peer hangs in its next collective.
#include <cstdio>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#if LOCKSTEP_HAVE_CONTROL
#include "launcher/commands/commands.h"
#endif
#include "launcher/cli_number.h"
#include "launcher/job_builder.h"
#include "launcher/job_file.h"
#include "launcher/job_sampler.h"
#include "launcher/metrics_log.h"
#include "comm/factory.h"
#include "layers/dropout.h"
#include "layers/loss.h"
#include "layers/sync_batch_norm.h"
#include "runtime/check.h"
#include "runtime/data/dataset.h"
#include "runtime/data/distributed_sampler.h"
#include "runtime/gemm.h"
#include "launcher/train/trainer.h"

namespace {

// One rank of a data-parallel run of `job` (comm->size() > 1): see launcher/train/trainer.h.
int train_distributed(const lockstep::proto::JobSpec& job, lockstep::Communicator& comm);

constexpr const char* kUsage =
    "usage: lockstep train JOB.textproto [--epochs N] [--seed S] [--metrics FILE] [--data DIR]\n";

std::string usage() {
  std::string u = kUsage;
#if LOCKSTEP_HAVE_CONTROL
  for (const auto& [name, c] : lockstep::commands::all()) u += "       " + c.usage + "\n";
#endif
  return u;
}

// The job's backend: distributed.backend, else "mpi" when mpirun started us, else "self".
std::string backend_of(const lockstep::proto::JobSpec& job) {
  if (!job.distributed().backend().empty()) return job.distributed().backend();
  return lockstep::default_backend();
}

int train(int argc, char** argv, std::unique_ptr<lockstep::Communicator>& comm) {
  std::string job_path, metrics, data;
  std::optional<int64_t> epochs;
  std::optional<uint64_t> seed;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      LOCKSTEP_FAIL_IF(i + 1 >= argc) << a << " needs a value";
      LOCKSTEP_FAIL_IF(argv[i + 1][0] == '\0') << a << ": the value is empty";
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (a == "--epochs") epochs = lockstep::cli::whole_number(a, value(), 1, lockstep::job_limits::kMaxEpochs);
    else if (a == "--seed") seed = lockstep::cli::unsigned_number(a, value());
    else if (a == "--metrics") metrics = value();
    else if (a == "--data") data = value();
    else if (!a.empty() && a[0] == '-') LOCKSTEP_FAIL_IF(true) << "unknown option " << a << "; see lockstep train --help";
    else if (job_path.empty()) job_path = a;
    else LOCKSTEP_FAIL_IF(true) << "unexpected argument " << a << "; see lockstep train --help";
  }
  LOCKSTEP_FAIL_IF(job_path.empty()) << "no job file given; see lockstep train --help";

  lockstep::proto::JobSpec job = lockstep::parse_job(job_path);  // validated after the overrides
  if (epochs) job.set_epochs(*epochs);
  if (seed) job.set_seed(*seed);
  if (!metrics.empty()) job.set_metrics_file(metrics);
  if (!data.empty()) job.mutable_data()->set_dir(data);
  lockstep::validate_job(job, job_path);
  lockstep::remainder_policy(job, job_path);
  lockstep::set_kernel_threads(job.threads() > 0 ? job.threads() : 1);

  const auto& dist = job.distributed();
  lockstep::CommSpec spec;
  spec.backend = backend_of(job);
  if (dist.has_collective_timeout_s())
    spec.options.timeout = std::chrono::milliseconds(static_cast<int64_t>(dist.collective_timeout_s() * 1000));
  comm = lockstep::make_communicator(spec);
  // The launch checks (world size, model shapes, data headers) before any data is loaded. The
  // ranks agree on the outcome before any throws, so each prints its own error before the abort.
  std::string error;
  try {
    lockstep::check_job_for_launch(job, job_path, comm->size());
  } catch (const lockstep::Error& e) {
    error = e.what();
  }
  if (comm->size() > 1) {
    std::vector<double> failed{error.empty() ? 0.0 : 1.0};
    comm->all_reduce(std::span<double>(failed), lockstep::ReduceOp::kSum).wait();
    if (failed[0] > 0 && error.empty()) error = "another rank found the job invalid";
  }
  LOCKSTEP_FAIL_IF(!error.empty()) << error;
  // One rank or many, the same loop and the same sampler (launcher/job_sampler.h): one job file
  // means one training run, whatever command runs it.
  return train_distributed(job, *comm);
}

int train_distributed(const lockstep::proto::JobSpec& job, lockstep::Communicator& comm) {
  using namespace lockstep;
  const auto& d = job.data();
  const auto& dist = job.distributed();
  const bool lead = comm.rank() == 0;
  const float mean = d.has_mean() ? d.mean() : 0.2860f, stdv = d.has_std() ? d.std() : 0.3530f;
  Dataset train_set = load_fashion_mnist(d.dir(), true, mean, stdv);
  Dataset test_set = load_fashion_mnist(d.dir(), false, mean, stdv);

  BuiltModel built = build_model(job);
  check_model_input(built, train_set);
  if (comm.size() > 1 && dist.sync_batchnorm()) convert_sync_batchnorm(*built.model, comm);  // before the optimizer
  const bool per_sample = dist.dropout_keying() == proto::DistributedSpec::PER_SAMPLE;
  seed_dropout(*built.model, job.seed(), static_cast<uint32_t>(comm.rank()),
               per_sample ? DropoutKeying::kPerSample : DropoutKeying::kPerRank);
  auto opt = build_optimizer(job, *built.model);
  auto schedule = build_schedule(job);
  CrossEntropyLoss loss;
  DistributedSampler sampler(train_set.size(), sampler_options(job, comm.rank(), comm.size()));
  DistributedOptions dopt{.comm = &comm,
                          .eval_buffers = dist.eval_buffers() == proto::DistributedSpec::AVERAGE
                                              ? BufferSync::kAverage
                                              : BufferSync::kBroadcast,
                          .per_sample_dropout = per_sample};
  if (dist.has_bucket_mb()) dopt.reducer.bucket_bytes = static_cast<int64_t>(dist.bucket_mb() * (1 << 20));
  Trainer trainer(*built.model, *opt, loss, schedule.get(),
                  {.epochs = job.epochs(),
                   .eval_batch_size = job.eval_batch_size() ? job.eval_batch_size() : 1000,
                   .sample_shape = built.sample_shape,
                   .on_nonfinite = job.on_nonfinite() == proto::JobSpec::NONFINITE_SKIP_STEP
                                       ? NonFiniteAction::kSkipStep
                                       : NonFiniteAction::kStop},
                  dopt);
  std::unique_ptr<MetricsLog> log;
  if (lead) {
    log = std::make_unique<MetricsLog>(job.metrics_file().empty() ? "metrics.jsonl" : job.metrics_file());
    std::printf("job %s: model %s, %lld train / %lld test samples, %d ranks (%s), %lld epochs, seed %llu\n",
                job.name().c_str(), job.model().reference().empty() ? "(layers)" : job.model().reference().c_str(),
                static_cast<long long>(train_set.size()), static_cast<long long>(test_set.size()), comm.size(),
                comm.backend().c_str(), static_cast<long long>(job.epochs()),
                static_cast<unsigned long long>(job.seed()));
    std::printf("sampler: %s\n", sampler.describe().c_str());
    std::printf("sync_batchnorm %s, dropout %s, gradient buckets %zu of <= %.1f MiB, eval buffers %s\n",
                dist.sync_batchnorm() ? "on" : "off", per_sample ? "per-sample" : "per-rank",
                trainer.reducer()->num_buckets(), static_cast<double>(dopt.reducer.bucket_bytes) / (1 << 20),
                dopt.eval_buffers == BufferSync::kAverage ? "averaged" : "from rank 0");
    std::printf("%5s %11s %10s %9s %10s %8s\n", "epoch", "train_loss", "test_loss", "test_acc", "samples/s",
                "exposed");
    std::fflush(stdout);
  }
  trainer.fit(sampler, train_set, test_set, [&](const EpochMetrics& m) {
    Reducer& r = *trainer.reducer();
    if (lead) {
      // exposed: seconds this rank sat in finalize waiting for gradient all-reduces this epoch.
      std::printf("%5lld %11.4f %10.4f %9.4f %10.0f %7.2fs\n", static_cast<long long>(m.epoch), m.train_loss,
                  m.test_loss, m.test_accuracy, m.train_samples_per_sec, r.stats().finalize_wait_seconds);
      std::fflush(stdout);
      log->write(m);
    }
    r.reset_stats();
  });
  comm.barrier().wait();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(usage().c_str(), argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::unique_ptr<lockstep::Communicator> comm;
  // On several ranks one rank's error must end them all: the others would wait in their next
  // collective until the timeout.
  auto fail = [&](const char* what) {
    if (comm && comm->size() > 1) {
      // One write, so ranks' messages do not interleave mid-line.
      const std::string line = "lockstep: error on rank " + std::to_string(comm->rank()) + " of " +
                               std::to_string(comm->size()) + ": " + what + "\n";
      std::fwrite(line.data(), 1, line.size(), stderr);
      std::fflush(stderr);
      comm->abort(1);
    }
    std::cerr << "lockstep: error: " << what << "\n";
    return 1;
  };
  try {
    std::string cmd = argv[1];
    if (cmd == "train") return train(argc - 2, argv + 2, comm);
#if LOCKSTEP_HAVE_CONTROL
    const auto& table = lockstep::commands::all();
    if (auto it = table.find(cmd); it != table.end()) return it->second.run(argc - 2, argv + 2);
#endif
    std::cerr << "lockstep: unknown command \"" << cmd << "\"\n" << usage();
    return 2;
  } catch (const lockstep::Error& e) {
    return fail(e.what());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}
