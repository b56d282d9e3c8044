// The lockstep command. `lockstep train JOB` trains the job's model and prints per-epoch train
// loss, test loss and test accuracy; the same figures go to the metrics file and a TensorBoard
// events file beside it (--step-metrics: also every step's global loss, as lockstep launch writes
// it). Under mpirun every process is one data-parallel rank (batch_size is the global batch); only
// rank 0 prints and writes metrics. The only place an Error becomes an exit code; on more than one
// rank an error aborts every rank (Communicator::abort), so no peer hangs in its next collective.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#if LOCKSTEP_HAVE_CONTROL
#include "launcher/commands/commands.h"
#endif
#include "launcher/cli.h"
#include "launcher/job_builder.h"
#include "launcher/job_file.h"
#include "launcher/job_override.h"
#include "launcher/job_sampler.h"
#include "launcher/metrics_log.h"
#include "launcher/replica.h"
#include "launcher/tensorboard/metrics_events.h"
#include "launcher/trace_merge.h"
#include "launcher/trace_setup.h"
#include "launcher/train/loop.h"
#include "comm/factory.h"
#include "runtime/check.h"
#include "runtime/gemm.h"

namespace {

// A user error every rank found, or learned of, in the same agreement: no rank can be left waiting.
struct AgreedError : lockstep::Error {
  using lockstep::Error::Error;
};

// One rank of a run of `job` (one rank: the "self" communicator): see launcher/train/loop.h.
int train_distributed(const lockstep::proto::JobSpec& job, lockstep::Communicator& comm, bool step_lines);

constexpr const char* kUsage =
    "usage: lockstep train JOB.textproto [--epochs N] [--seed S] [--metrics FILE] [--data DIR] [--step-metrics]\n"
    "                      [--trace STEPS] (timeline of steps 1..N or A:B: RUN_DIR/trace.json, RUN_DIR the job's run_dir or .)\n"
    "                      [--set FIELD=VALUE]... (any job field, e.g. --set optimizer.lr=0.1; see README)\n";

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

int train(const std::vector<std::string>& args, std::unique_ptr<lockstep::Communicator>& comm) {
  std::string job_path, metrics, data;
  std::optional<int64_t> epochs;
  std::optional<uint64_t> seed;
  std::vector<std::string> sets;  // --set FIELD=VALUE, in order
  std::string trace;               // --trace STEPS
  bool step_lines = false;  // --step-metrics: every step's loss too, exact to the last bit
  lockstep::cli::CommandLine cl(kUsage, "; see lockstep train --help");
  cl.refuse_empty_values();
  cl.whole("--epochs", epochs, 1, lockstep::job_limits::kMaxEpochs);
  cl.value("--seed", [&](const std::string& option, const std::string& v) {
    seed = lockstep::cli::unsigned_number(option, v);
  });
  cl.text("--metrics", metrics);
  cl.text("--data", data);
  cl.flag("--step-metrics", step_lines);
  cl.texts("--set", sets);
  cl.text("--trace", trace);
  cl.positional("job", job_path);
  if (!cl.parse(args)) return 0;  // --help
  LOCKSTEP_FAIL_IF(job_path.empty()) << "no job file given; see lockstep train --help";

  lockstep::proto::JobSpec job = lockstep::parse_job(job_path);  // validated after the overrides
  lockstep::apply_overrides(job, sets);
  if (epochs) job.set_epochs(*epochs);
  if (seed) job.set_seed(*seed);
  if (!metrics.empty()) job.set_metrics_file(metrics);
  if (!data.empty()) job.mutable_data()->set_dir(data);
  if (!trace.empty()) lockstep::apply_trace_option(job, trace);
  // The job's name defaults to its file's stem, as lockstep launch names it.
  if (job.name().empty()) job.set_name(std::filesystem::path(job_path).stem().string());
  lockstep::check_with_overrides(sets, [&] {
    lockstep::validate_job(job, job_path);
    lockstep::remainder_policy(job, job_path);
  });
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
    error = lockstep::blame_override(e.what(), sets);
  }
  if (comm->size() > 1) {
    std::vector<double> failed{error.empty() ? 0.0 : 1.0};
    comm->all_reduce(std::span<double>(failed), lockstep::ReduceOp::kSum).wait();
    if (failed[0] > 0 && error.empty()) error = "another rank found the job invalid";
  }
  if (!error.empty()) throw AgreedError(error);
  // One rank or many, the same loop and the same sampler (launcher/job_sampler.h): one job file
  // means one training run, whatever command runs it.
  return train_distributed(job, *comm, step_lines);
}

// `lockstep train`'s driver of the training loop: after every epoch an exact distributed eval,
// one printed line and one metrics line (rank 0); with --step-metrics also every step's global loss.
class TrainCommandHooks : public lockstep::LoopHooks {
 public:
  TrainCommandHooks(lockstep::Replica& r, lockstep::MetricsLog* log, bool step_lines)
      : r_(r), log_(log), step_lines_(step_lines) {}
  // samples/s of a step line: the step's global samples over the wall time since the previous
  // boundary (for the first step, since the loop started), eval and checkpoints excluded.
  bool at_boundary(const lockstep::TrainPosition& pos, const lockstep::StepSums& step, bool epoch_end) override {
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - last_).count();
    if (step_lines_ && log_ && step.count > 0)
      log_->write(lockstep::StepRecord{epoch_end ? pos.epoch : pos.epoch + 1, static_cast<int64_t>(pos.step),
                                       step.loss_sum / step.count, seconds > 0 ? step.count / seconds : 0.0,
                                       r_.trainer->last_lr(), r_.trainer->last_grad_norm()});
    last_ = std::chrono::steady_clock::now();
    return false;
  }
  bool at_epoch_end(lockstep::EpochMetrics& m) override {
    const lockstep::EvalResult e = r_.trainer->evaluate(r_.test_set);
    lockstep::check_eval_finite(e, m.epoch);
    m.test_loss = e.loss();
    m.test_accuracy = e.accuracy();
    m.test_classes = e.classes;
    last_eval_ = e.classes;
    lockstep::Reducer& red = *r_.trainer->reducer();
    if (log_) {
      // exposed: seconds this rank sat in finalize waiting for gradient all-reduces this epoch.
      std::printf("%5lld %11.4f %10.4f %9.4f %10.0f %7.2fs\n", static_cast<long long>(m.epoch), m.train_loss,
                  m.test_loss, m.test_accuracy, m.train_samples_per_sec, red.stats().finalize_wait_seconds);
      std::fflush(stdout);
      log_->write(m);
    }
    red.reset_stats();
    last_ = std::chrono::steady_clock::now();
    return false;
  }
  const lockstep::ClassCounts& last_eval() const { return last_eval_; }

 private:
  lockstep::Replica& r_;
  lockstep::ClassCounts last_eval_;  // the newest epoch's, for the summary
  lockstep::MetricsLog* log_;  // rank 0 only
  const bool step_lines_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

void report_trace_and_merge(const lockstep::TraceRecorder& trace, lockstep::Communicator& comm,
                            const std::string& run_dir);

int train_distributed(const lockstep::proto::JobSpec& job, lockstep::Communicator& comm, bool step_lines) {
  using namespace lockstep;
  const auto& dist = job.distributed();
  const bool lead = comm.rank() == 0;
  const std::unique_ptr<Replica> r = build_replica(job, comm);
  std::unique_ptr<MetricsLog> log;
  if (lead) {
    const std::string metrics = job.metrics_file().empty() ? "metrics.jsonl" : job.metrics_file();
    log = std::make_unique<MetricsLog>(metrics);
    if (!job.has_tensorboard() || job.tensorboard()) {  // the events file beside the metrics file
      const std::string dir = std::filesystem::path(metrics).parent_path().string();
      log->add_sink(std::make_unique<tensorboard::MetricsEvents>(dir.empty() ? "." : dir, 1));
    }
    std::printf("job %s: model %s, %lld train / %lld test samples, %d ranks (%s), %lld epochs, seed %llu\n",
                job.name().c_str(), job.model().reference().empty() ? "(layers)" : job.model().reference().c_str(),
                static_cast<long long>(r->train_set.size()), static_cast<long long>(r->test_set.size()), comm.size(),
                comm.backend().c_str(), static_cast<long long>(job.epochs()),
                static_cast<unsigned long long>(job.seed()));
    std::printf("sampler: %s\n", r->sampler->describe().c_str());
    std::printf("input: %s\n", describe(r->trainer->options().input).c_str());
    if (const int64_t k = r->trainer->options().accumulate_steps; k > 1)
      std::printf("accumulate_steps %lld: effective global batch %lld, %lld optimizer steps per epoch\n",
                  static_cast<long long>(k), static_cast<long long>(k * job.batch_size()),
                  static_cast<long long>(r->sampler->num_steps() / k));
    // Chunks as they travel: half the bytes under the bf16 hook.
    const double chunk_kib = static_cast<double>(r->dopt.reducer.chunk_bytes) / 1024 /
                             (r->dopt.reducer.comm_hook == CommHook::kBf16Compress ? 2 : 1);
    char gradients[160];
    if (comm.size() > 1 && r->dopt.reducer.chunk_bytes > 0)
      std::snprintf(gradients, sizeof gradients, "gradient buckets %zu of <= %.1f MiB in %zu all-reduces of <= %.1f KiB",
                    r->trainer->reducer()->num_buckets(), static_cast<double>(r->dopt.reducer.bucket_bytes) / (1 << 20),
                    r->trainer->reducer()->num_chunks(), chunk_kib);
    else if (comm.size() > 1)
      std::snprintf(gradients, sizeof gradients, "gradient buckets %zu of <= %.1f MiB",
                    r->trainer->reducer()->num_buckets(), static_cast<double>(r->dopt.reducer.bucket_bytes) / (1 << 20));
    else
      std::snprintf(gradients, sizeof gradients, "no gradient all-reduce (one rank)");
    std::printf("sync_batchnorm %s, dropout %s, %s, eval buffers %s\n",
                dist.sync_batchnorm() ? "on" : "off", r->dopt.per_sample_dropout ? "per-sample" : "per-rank", gradients,
                r->dopt.eval_buffers == BufferSync::kAverage ? "averaged" : "from rank 0");
    std::printf("precision %s, memory format %s, comm hook %s\n",
                proto::JobSpec::Precision_Name(job.precision()).c_str(),
                proto::ModelSpec::MemoryFormat_Name(job.model().memory_format()).c_str(),
                proto::DistributedSpec::CommHook_Name(dist.comm_hook()).c_str());
    std::printf("%5s %11s %10s %9s %10s %8s\n", "epoch", "train_loss", "test_loss", "test_acc", "samples/s",
                "exposed");
    std::fflush(stdout);
  }
  // The timeline: in the job's run_dir, else the current directory (where the metrics go).
  const std::unique_ptr<TraceRecorder> trace = make_trace_recorder(job, comm.rank(), job.run_dir(), comm.size());
  r->trainer->set_trace(trace.get());
  TrainCommandHooks hooks(*r, log.get(), step_lines);
  if (trace && lead) {
    const uint64_t k = static_cast<uint64_t>(r->trainer->options().accumulate_steps);
    const std::string w = trace_range_warning(trace->options().first_step, trace->options().last_step, 1,
                                              static_cast<uint64_t>(r->sampler->num_steps()) / k *
                                                  static_cast<uint64_t>(job.epochs()));
    if (!w.empty()) std::fprintf(stderr, "lockstep: warning: %s\n", w.c_str());
  }
  try {
    train_loop(*r->trainer, *r->sampler, r->train_set, hooks);
  } catch (...) {
    if (trace) trace->finish();  // a failed run's rank file shows where it was (merge: lockstep trace-merge)
    throw;
  }
  if (trace) trace->finish();
  if (lead) {  // the last epoch's eval beyond top-1
    std::fputs(lockstep::eval_summary(hooks.last_eval()).c_str(), stdout);
    std::fflush(stdout);
  }
  comm.barrier().wait();  // every rank's trace file is written
  if (trace) report_trace_and_merge(*trace, comm, job.run_dir());
  return 0;
}

// After every rank wrote its trace file: one warning when some could not (rank 0 names the first
// error it saw, its own), else the merge by rank 0 of exactly this job's ranks.
void report_trace_and_merge(const lockstep::TraceRecorder& trace, lockstep::Communicator& comm,
                            const std::string& run_dir) {
  using namespace lockstep;
  const bool lead = comm.rank() == 0;
  std::vector<float> failed{trace.error().empty() ? 0.f : 1.f};
  comm.all_reduce(failed, ReduceOp::kSum).wait();
  if (failed[0] > 0) {
    if (lead)
      std::fprintf(stderr, "lockstep: warning: no timeline: %d of %d rank%s could not write its trace file%s\n",
                   static_cast<int>(failed[0]), comm.size(), comm.size() == 1 ? "" : "s",
                   trace.error().empty() ? "" : (" (rank 0: " + trace.error() + ")").c_str());
    else if (!trace.error().empty() && failed[0] == 1)  // only this rank failed: rank 0 cannot name the cause
      std::fprintf(stderr, "lockstep: warning: rank %d: %s\n", comm.rank(), trace.error().c_str());
    return;
  }
  if (lead) {
    try {
      const TraceMergeResult m = merge_trace(run_dir, comm.size());
      for (const std::string& w : merge_warnings(m)) std::fprintf(stderr, "lockstep: warning: %s\n", w.c_str());
      std::printf("timeline of %zu rank%s in %s (open it in ui.perfetto.dev or chrome://tracing)\n", m.ranks.size(),
                  m.ranks.size() == 1 ? "" : "s", m.path.c_str());
      if (m.dropped > 0)
        std::printf("timeline: %lld spans dropped past trace.max_events\n", static_cast<long long>(m.dropped));
    } catch (const Error& e) {  // the training is done; only the merged view is missing
      std::fprintf(stderr, "lockstep: warning: timeline not merged: %s\n", e.what());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Every command: a write to a closed stdout or stderr (`lockstep launch ... | head -1`) is an
  // ignored stdio error, never a SIGPIPE that kills a launcher or worker mid-job. The ignore is
  // inherited across exec, so mpirun and the workers a launch starts keep it too.
  std::signal(SIGPIPE, SIG_IGN);
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
    // The command is the first word; everything after it is the command's own (launcher/cli.h).
    const lockstep::cli::CommandWords w = lockstep::cli::split_command(argc, argv);
    const std::string first = argc > 1 ? argv[1] : "";
    if (argc < 2 || first == "--help" || first == "-h") {
      std::fputs(usage().c_str(), argc < 2 ? stderr : stdout);
      return argc < 2 ? 2 : 0;
    }
    if (w.command == first) {
      if (w.command == "train") return train(w.args, comm);
#if LOCKSTEP_HAVE_CONTROL
      const auto& table = lockstep::commands::all();
      if (auto it = table.find(w.command); it != table.end()) {
        std::vector<char*> args;
        for (const std::string& a : w.args) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        return it->second.run(static_cast<int>(w.args.size()), args.data());
      }
#endif
    }
    std::cerr << "lockstep: unknown command \"" << first << "\"\n" << usage();
    return 2;
  } catch (const AgreedError& e) {
    // Every rank has it: each prints its line and exits, with no abort that could kill a peer
    // before it printed its own.
    if (!comm || comm->size() == 1) return fail(e.what());
    const std::string line = "lockstep: error on rank " + std::to_string(comm->rank()) + " of " +
                             std::to_string(comm->size()) + ": " + e.what() + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    return 1;
  } catch (const lockstep::Error& e) {
    return fail(e.what());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}
