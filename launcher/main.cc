// The lockstep command. `lockstep train JOB` trains the job's model in this process and prints
// per-epoch train loss, test loss and test accuracy; the same figures go to the metrics file.
// The only place an Error becomes an exit code.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "launcher/job_builder.h"
#include "launcher/job_file.h"
#include "launcher/metrics_log.h"
#include "layers/loss.h"
#include "runtime/check.h"
#include "runtime/data/dataset.h"
#include "runtime/data/loader.h"
#include "runtime/gemm.h"
#include "runtime/trainer/trainer.h"

namespace {

constexpr const char* kUsage =
    "usage: lockstep train JOB.textproto [--epochs N] [--seed S] [--metrics FILE] [--data DIR]\n";

int train(int argc, char** argv) {
  std::string job_path, metrics, data;
  long long epochs = -1, seed = -1;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      LOCKSTEP_FAIL_IF(i + 1 >= argc) << a << " needs a value";
      return argv[++i];
    };
    if (a == "--epochs") epochs = std::stoll(value());
    else if (a == "--seed") seed = std::stoll(value());
    else if (a == "--metrics") metrics = value();
    else if (a == "--data") data = value();
    else if (!a.empty() && a[0] == '-') LOCKSTEP_FAIL_IF(true) << "unknown option " << a << "\n" << kUsage;
    else if (job_path.empty()) job_path = a;
    else LOCKSTEP_FAIL_IF(true) << "unexpected argument " << a << "\n" << kUsage;
  }
  LOCKSTEP_FAIL_IF(job_path.empty()) << "no job file given\n" << kUsage;

  lockstep::proto::JobSpec job = lockstep::load_job(job_path);
  if (epochs >= 0) job.set_epochs(epochs);
  if (seed >= 0) job.set_seed(static_cast<uint64_t>(seed));
  if (!metrics.empty()) job.set_metrics_file(metrics);
  if (!data.empty()) job.mutable_data()->set_dir(data);
  lockstep::validate_job(job, job_path);
  lockstep::set_kernel_threads(job.threads() > 0 ? job.threads() : 1);

  const auto& d = job.data();
  const float mean = d.has_mean() ? d.mean() : 0.2860f, stdv = d.has_std() ? d.std() : 0.3530f;
  lockstep::Dataset train_set = lockstep::load_fashion_mnist(d.dir(), true, mean, stdv);
  lockstep::Dataset test_set = lockstep::load_fashion_mnist(d.dir(), false, mean, stdv);

  lockstep::BuiltModel built = lockstep::build_model(job);
  auto opt = lockstep::build_optimizer(job, *built.model);
  auto schedule = lockstep::build_schedule(job);
  lockstep::CrossEntropyLoss loss;
  lockstep::BatchLoader loader(train_set, job.batch_size(), !d.has_shuffle() || d.shuffle(), job.seed(),
                               d.drop_last());
  lockstep::Trainer trainer(*built.model, *opt, loss, schedule.get(),
                            {.epochs = job.epochs(),
                             .eval_batch_size = job.eval_batch_size() ? job.eval_batch_size() : 1000,
                             .sample_shape = built.sample_shape});
  lockstep::MetricsLog log(job.metrics_file().empty() ? "metrics.jsonl" : job.metrics_file());

  std::printf("job %s: model %s, %lld train / %lld test samples, batch %lld, %lld epochs, seed %llu\n",
              job.name().c_str(), job.model().reference().empty() ? "(layers)" : job.model().reference().c_str(),
              static_cast<long long>(train_set.size()), static_cast<long long>(test_set.size()),
              static_cast<long long>(job.batch_size()), static_cast<long long>(job.epochs()),
              static_cast<unsigned long long>(job.seed()));
  std::printf("%5s %11s %10s %9s %10s\n", "epoch", "train_loss", "test_loss", "test_acc", "samples/s");
  std::fflush(stdout);
  trainer.fit(loader, test_set, [&](const lockstep::EpochMetrics& m) {
    std::printf("%5lld %11.4f %10.4f %9.4f %10.0f\n", static_cast<long long>(m.epoch), m.train_loss,
                m.test_loss, m.test_accuracy, m.train_samples_per_sec);
    std::fflush(stdout);
    log.write(m);
  });
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  try {
    std::string cmd = argv[1];
    if (cmd == "train") return train(argc - 2, argv + 2);
    std::cerr << "lockstep: unknown command \"" << cmd << "\"\n" << kUsage;
    return 2;
  } catch (const lockstep::Error& e) {
    std::cerr << "lockstep: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "lockstep: error: " << e.what() << "\n";
    return 1;
  }
}
