// `lockstep launch -n N JOB`: one command for a whole job. Checks the job before anything starts,
// creates the run directory and a per-job token, serves the coordinator in-process, runs N
// workers through mpirun (a hostfile spreads them over machines, started through `lockstep
// agent`) or, inside a Slurm allocation, through srun (commands/slurm_place.h), supervises them
// (launch/supervisor.h) with a live progress line, restarts from the last checkpoint up to
// --max-restarts times (then, with --min-ranks, on fewer ranks), and ends with a summary table.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "launcher/cli.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/slurm_place.h"
#include "launcher/coordinator/client.h"
#include "launcher/coordinator/run_files.h"
#include "launcher/coordinator/server.h"
#include "launcher/job_file.h"
#include "launcher/job_sampler.h"
#include "launcher/job_override.h"
#include "launcher/resume_check.h"
#include "launcher/trace_merge.h"
#include "launcher/trace_setup.h"
#include "launcher/launch/exit_status.h"
#include "launcher/launch/trace_outcome.h"
#include "launcher/launch/progress.h"
#include "launcher/launch/run_dir.h"
#include "launcher/launch/supervisor.h"
#include "runtime/check.h"

namespace lockstep::commands {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxRanks = 1 << 20;
constexpr int64_t kMaxRestarts = 1000;

constexpr const char* kUsage =
    "lockstep launch -n N JOB.textproto [--hostfile F --bind ADDR] [--run-dir D] [--resume | --overwrite] [--max-restarts K] [--min-ranks M] "
    "[--epochs E] [--data DIR] [--trace STEPS] [--port P] [--tls-cert F --tls-key F] [--mpirun-arg ARG]... [--srun-arg ARG]... [--set FIELD=VALUE]...";

constexpr const char* kSlurm =
    "inside a Slurm allocation (salloc/sbatch: SLURM_JOB_ID set, no --hostfile) the workers start through\n"
    "srun --mpi=pmix on the allocation's nodes, -n defaults to its tasks, and --srun-arg passes srun options\n";

constexpr const char* kExitStatuses =
    "exit status: 0 done; 1 a rank failed (restarts spent); 2 bad input, nothing started; 3 stopped on request\n"
    "(SIGINT/SIGTERM/SIGUSR1 to the launcher or a worker, or lockstep ctl stop) after a checkpoint, --resume\n"
    "continues (a preempted Slurm job: requeue it); 4 killed by a second signal\n";

struct LaunchArgs {
  int ranks = 0;
  std::string job_path, hostfile, run_dir, data, tls_cert, tls_key;
  std::string bind = "127.0.0.1";
  int port = 0;
  bool resume = false;
  bool overwrite = false;
  int max_restarts = 0;
  int min_ranks = 0;   // 0: never fewer than -n
  int64_t epochs = 0;  // 0: the job's
  std::vector<std::string> mpirun_args, srun_args;
  std::vector<std::string> sets;  // --set FIELD=VALUE (launcher/job_override.h), in order
  std::string trace;              // --trace STEPS (launcher/trace_setup.h)
};

// The command line into `a`; false when --help was asked for (printed). Throws Error for bad input.
bool parse(int argc, char** argv, LaunchArgs& a) {
  cli::CommandLine cl(std::string("usage: ") + kUsage + "\n" + kSlurm + kExitStatuses, std::string("; usage: ") + kUsage);
  cl.refuse_empty_values();
  cl.whole("-n,--ranks", a.ranks, 1, kMaxRanks);
  cl.text("--hostfile", a.hostfile);
  cl.text("--bind", a.bind);
  cl.whole("--port", a.port, 0, 65535);
  cl.text("--run-dir", a.run_dir);
  cl.flag("--resume", a.resume);
  cl.flag("--overwrite", a.overwrite);
  cl.whole("--max-restarts", a.max_restarts, 0, kMaxRestarts);
  cl.whole("--min-ranks", a.min_ranks, 1, kMaxRanks);
  cl.whole("--epochs", a.epochs, 1, job_limits::kMaxEpochs);
  cl.text("--data", a.data);
  cl.text("--tls-cert", a.tls_cert);
  cl.text("--tls-key", a.tls_key);
  cl.texts("--mpirun-arg", a.mpirun_args);
  cl.texts("--set", a.sets);
  cl.texts("--srun-arg", a.srun_args);
  cl.text("--trace", a.trace);
  cl.positional("job", a.job_path);
  if (!cl.parse(argc, argv)) return false;
  LOCKSTEP_FAIL_IF(a.job_path.empty()) << "no job file given; usage: " << kUsage;
  LOCKSTEP_FAIL_IF(!a.hostfile.empty() && (a.bind == "127.0.0.1" || a.bind == "localhost"))
      << "--hostfile " << a.hostfile << ": workers on other hosts cannot reach a coordinator on " << a.bind
      << "; give --bind ADDR, an address of this host they can reach";
  LOCKSTEP_FAIL_IF(!a.hostfile.empty() && !fs::exists(a.hostfile)) << "--hostfile " << a.hostfile << ": no such file";
  LOCKSTEP_FAIL_IF(a.tls_cert.empty() != a.tls_key.empty()) << "--tls-cert and --tls-key go together";
  return true;
}

std::string self_exe() {
  char buf[PATH_MAX] = {};
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  LOCKSTEP_FAIL_IF(n <= 0) << "cannot find the lockstep binary (/proc/self/exe)";
  return std::string(buf, static_cast<size_t>(n));
}

// A directory of this launch alone (mode 0700), removed with everything in it at the end.
struct PrivateDirectory {
  std::string path;
  ~PrivateDirectory() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

// Elastic scale-down (--min-ranks): the most ranks below `world`, at least `min_ranks`, that the
// global batch divides by (every rank needs the same share); 0 when there is none.
int fewer_ranks(int world, int min_ranks, int64_t batch_size) {
  for (int w = world - 1; w >= std::max(min_ranks, 1); --w)
    if (batch_size % w == 0) return w;
  return 0;
}

// The workers' own command line, after mpirun's or srun's.
std::vector<std::string> worker_argv(const LaunchArgs& a, const std::string& address) {
  std::vector<std::string> v{self_exe(), "worker", "--coordinator", address};
  if (!a.tls_cert.empty()) v.insert(v.end(), {"--tls-ca", fs::absolute(a.tls_cert).string()});
  return v;
}

// Inside a Slurm allocation and without --hostfile: the allocation's placement; -n defaults to its
// tasks and may not exceed them; workers on other nodes need a coordinator address they can reach.
std::optional<SlurmPlace> slurm_of(LaunchArgs& a) {
  if (!a.hostfile.empty()) return std::nullopt;
  std::optional<SlurmPlace> p = slurm_place();
  if (!p) return p;
  if (a.ranks == 0) a.ranks = p->alloc.tasks;
  LOCKSTEP_FAIL_IF(a.ranks > p->alloc.tasks)
      << "-n " << a.ranks << ": the Slurm allocation (job " << p->alloc.job_id << ", nodes " << p->alloc.nodelist
      << ") has " << p->alloc.tasks << " task" << (p->alloc.tasks > 1 ? "s" : "")
      << "; give -n at most that, or allocate more (salloc/sbatch -n)";
  LOCKSTEP_FAIL_IF(!p->local_only && (a.bind == "127.0.0.1" || a.bind == "localhost"))
      << "the Slurm allocation (job " << p->alloc.job_id << ") spans nodes " << p->alloc.nodelist
      << ": workers there cannot reach a coordinator on " << a.bind << "; give --bind ADDR, an address of this host "
      << "they can reach";
  return p;
}

std::vector<std::string> mpirun_argv(const LaunchArgs& a, int ranks, const std::string& address) {
  const std::string exe = self_exe();
  std::vector<std::string> v{"mpirun", "-np", std::to_string(ranks), "-x", "LOCKSTEP_WORKER_SECRET"};
  if (::geteuid() == 0) v.push_back("--allow-run-as-root");
  if (a.hostfile.empty()) {
    // No core binding: the ranks share the machine with whatever else runs on it. One host: the
    // ranks talk through shared memory only (no TCP listener of theirs), and mpirun's out-of-band
    // channel stays on loopback. Open MPI 4.1's mpirun still opens its PMIx tool listener on every
    // interface (no setting of 4.1 confines it): the Supervisor starts mpirun in a network
    // namespace that holds only loopback, so that listener is reachable from nowhere.
    v.insert(v.end(), {"--oversubscribe", "--bind-to", "none", "--mca", "btl", "self,vader", "--mca",
                       "oob_tcp_if_include", "lo", "--mca", "btl_tcp_if_include", "lo"});
  } else {
    v.insert(v.end(), {"--hostfile", a.hostfile, "--mca", "plm_rsh_agent", exe + " agent"});
  }
  v.insert(v.end(), a.mpirun_args.begin(), a.mpirun_args.end());
  const std::vector<std::string> w = worker_argv(a, address);
  v.insert(v.end(), w.begin(), w.end());
  return v;
}

int launch_main(int argc, char** argv) {
  // Everything is checked before anything is written or started; bad input exits kExitBadInput.
  std::unique_ptr<RunDirectory> dir;
  proto::JobSpec job;
  LaunchArgs a;
  std::string token, worker_secret;
  PrivateDirectory socket_dir;  // declared before the server: removed after it stopped
  CoordinatorFiles coordinator_files;  // RUN_DIR/coordinator.json: likewise removed after the server stopped
  std::unique_ptr<CoordinatorServer> server_ptr;
  std::optional<SlurmPlace> slurm;
  try {
    if (!parse(argc, argv, a)) return kExitDone;  // --help
    slurm = slurm_of(a);
    LOCKSTEP_FAIL_IF(a.ranks < 1) << "-n N (the number of ranks) is required outside a Slurm allocation; usage: "
                                  << kUsage;
    LOCKSTEP_FAIL_IF(a.min_ranks > a.ranks)
        << "--min-ranks: " << a.min_ranks << " is more than the job's ranks (-n " << a.ranks << ")";
    job = parse_job(a.job_path);  // validated after the overrides, by check_job_for_launch
    apply_overrides(job, a.sets);
    if (a.epochs > 0) job.set_epochs(a.epochs);
    if (!a.data.empty()) job.mutable_data()->set_dir(a.data);
    if (!a.trace.empty()) apply_trace_option(job, a.trace);
    check_with_overrides(a.sets, [&] {
      job.set_name(checked_job_name(job, a.job_path));
      job.set_metrics_file(checked_metrics_file(job, a.job_path));
    });
    const std::string run_dir =
        !a.run_dir.empty() ? a.run_dir : !job.run_dir().empty() ? job.run_dir() : "runs/" + job.name();
    // A checkpoint of another world size: its ranks named before the batch check refuses -n.
    if (a.resume) check_resume_world_size(job, run_dir, a.ranks);
    check_with_overrides(a.sets, [&] {
      check_job_for_launch(job, a.job_path, a.ranks);  // every check before any worker starts
      remainder_policy(job, a.job_path);
    });
    dir = std::make_unique<RunDirectory>(
        run_dir, job.name(), RunDirOptions{.resume = a.resume, .overwrite = a.overwrite, .metrics_file = job.metrics_file()});
    // names every field an edited job (or a --set) changed
    if (a.resume) check_with_overrides(a.sets, [&] { check_resume(job, dir->path(), a.ranks); });
    token = new_token();
    worker_secret = new_token();  // the workers' own credential (Register only), through mpirun's environment alone
    ServerOptions so;
    so.bind = a.bind;
    so.port = a.port;
    so.token = token;
    so.worker_secret = worker_secret;
    so.tls_cert = a.tls_cert;
    so.tls_key = a.tls_key;
    so.run_dir = dir->path();
    so.resume = a.resume;
    const Heartbeat hb = heartbeat_of(job);
    so.heartbeat_interval_s = hb.interval_s;
    so.coordinator_timeout_s = hb.timeout_s;
    if (a.hostfile.empty() && a.tls_cert.empty() && (!slurm || slurm->local_only)) {
      // One host: the ranks run in a network namespace of their own (Supervisor; not under srun,
      // which must reach slurmctld) and reach the coordinator through a Unix-domain socket in a
      // private directory.
      char tmpl[] = "/tmp/lockstep-XXXXXX";
      LOCKSTEP_FAIL_IF(::mkdtemp(tmpl) == nullptr) << "cannot create a private directory in /tmp: " << std::strerror(errno);
      socket_dir.path = tmpl;
      so.unix_socket = socket_dir.path + "/coordinator.sock";
    }
    server_ptr = std::make_unique<CoordinatorServer>(job, a.ranks, so);  // binds --port, or fails
    dir->write_token(token);
    dir->write_job(job);  // for lockstep report
    coordinator_files.started(dir->path(), address_record(server_ptr->address(), !a.tls_cert.empty(), job.name(),
                                                          dir->path() + "/token"));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lockstep: error: %s\n", e.what());
    return kExitBadInput;
  }
  dir->commit();
  const std::string& run_dir = dir->path();
  // The timeline: whatever the ranks wrote, merged into RUN_DIR/trace.json when the launch ends,
  // however it ends (a failed job's trace shows where it was; the ranks that wrote nothing, such as
  // one killed, are named).
  struct MergeTraceAtExit {
    std::string run_dir;
    int world = 0;  // the ranks of the last attempt
    ~MergeTraceAtExit() {
      if (run_dir.empty()) return;
      try {
        report_merged_trace(run_dir, world);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "lockstep launch: warning: timeline not merged: %s\n", e.what());
      }
    }
  } merge_trace_at_exit{job.trace().last_step() > 0 ? run_dir : std::string(), a.ranks};
  if (job.trace().last_step() > 0) {  // a new timeline: no rank file of an earlier launch is merged into it
    std::error_code ec;
    fs::remove_all(trace_dir(run_dir), ec);
    // A resume's, or a fresh launch's in a directory an earlier traced launch left its timeline
    // in, is kept as trace.N.json; --overwrite removed it.
    if (!a.overwrite) keep_previous_trace(run_dir);
  }
  ::setenv("LOCKSTEP_WORKER_SECRET", worker_secret.c_str(), 1);
  const Heartbeat hb = heartbeat_of(job);
  CoordinatorServer& server = *server_ptr;
  std::fprintf(stderr, "lockstep launch: job %s on %d rank%s, coordinator %s, run directory %s (token in %s/token)\n",
               job.name().c_str(), a.ranks, a.ranks > 1 ? "s" : "", server.address().c_str(), run_dir.c_str(),
               run_dir.c_str());
  if (slurm)
    std::fprintf(stderr, "lockstep launch: Slurm job %s: workers start through srun on %s\n",
                 slurm->alloc.job_id.c_str(), slurm->alloc.nodelist.c_str());
  ProgressLine progress(::isatty(STDERR_FILENO));
  Supervisor supervisor(server, SupervisorOptions{.heartbeat_deadline_s = hb.timeout_s, .startup_deadline_s = hb.startup_s, .log_path = run_dir + (slurm ? "/srun.log" : "/mpirun.log"),
                                          .private_network = !socket_dir.path.empty() && !slurm},
                        [&](const proto::JobStatus& st) { progress.update(st); });
  int world = a.ranks;
  // The workers' launcher command for `ranks` ranks: srun inside a Slurm allocation, else mpirun.
  const auto launcher_argv = [&](int ranks) {
    return slurm ? srun_argv(ranks, a.srun_args, worker_argv(a, server.worker_address()))
                 : mpirun_argv(a, ranks, server.worker_address());
  };
  std::string metrics = job.metrics_file().empty() ? "metrics.jsonl" : job.metrics_file();
  if (metrics[0] != '/') metrics = run_dir + "/" + metrics;

  // Every end of the job: RUN_DIR/result.json, then FINISHED to every Watch (waiting up to 2 s for
  // them to be sent it), then the server stops and coordinator.json goes.
  const auto end_job = [&](int rc, const std::string& failure = "") {
    const proto::JobResult result = server.result(rc, failure);
    try {
      coordinator_files.ended(result);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "lockstep launch: warning: %s\n", e.what());
    }
    server.finish(result);
    return rc;
  };
  for (int restarts = 0;;) {  // restarts on `world` ranks
    const std::vector<std::string> argv_launcher = launcher_argv(world);
    const AttemptResult r = supervisor.run(argv_launcher);
    progress.finish();
    const proto::JobStatus st = server.status();
    // finished: the last phase ran, either the plan's end or a STOP (a signal or `lockstep ctl stop`),
    // after which every worker exits kExitStopped.
    if (st.finished() && (r.exit_code == kExitDone || r.exit_code == kExitStopped) && !r.killed) {
      std::fputs(summary_table(metrics, st).c_str(), stdout);
      const bool complete = st.history_size() > 0 && st.history(st.history_size() - 1).finished();
      if (complete) {
        // A directive queued after the job's last step boundary had no boundary left to run at.
        for (const proto::Directive& d : st.pending())
          std::fprintf(stderr,
                       "lockstep launch: directive %llu (%s) was not run: it came after the job's last step "
                       "boundary, and the job completed\n",
                       static_cast<unsigned long long>(d.id()), proto::PhaseKind_Name(d.kind()).c_str());
        return end_job(kExitDone);
      }
      std::fprintf(stderr, "lockstep launch: stopped on request; continue with --resume (checkpoint %s)\n",
                   st.last_checkpoint().c_str());
      return end_job(kExitStopped);
    }
    const std::string why = !r.failure.empty() ? r.failure : argv_launcher[0] + " exited with status " + std::to_string(r.exit_code);
    server.note_failure(why);
    std::fprintf(stderr, "lockstep launch: job %s failed: %s\n", job.name().c_str(), why.c_str());
    if (r.killed) return end_job(kExitKilled, why);
    if (r.stop_requested) return end_job(kExitFailed, why);
    if (restarts < a.max_restarts) {
      ++restarts;
      std::fprintf(stderr, "lockstep launch: restarting from the last checkpoint (restart %d of %d)\n", restarts,
                   a.max_restarts);
      server.new_attempt(/*resume=*/true);
      continue;
    }
    // The restarts on `world` ranks are spent: a rank is lost for good. With --min-ranks the job
    // goes on from the last checkpoint on the ranks that remain (Note [elastic resume] in
    // launcher/worker/worker_state.cc), with --max-restarts restarts again.
    if (a.min_ranks == 0) return end_job(kExitFailed, why);
    const int next = fewer_ranks(world, a.min_ranks, job.batch_size());
    if (next == 0) {
      if (a.min_ranks < world)
        std::fprintf(stderr,
                     "lockstep launch: no number of ranks in [--min-ranks %d, %d] divides batch_size %lld; giving up\n",
                     a.min_ranks, world - 1, static_cast<long long>(job.batch_size()));
      return end_job(kExitFailed, why);
    }
    std::fprintf(stderr,
                 "lockstep launch: %d restart%s on %d ranks spent; continuing on %d rank%s from the last "
                 "checkpoint (--min-ranks %d)\n",
                 a.max_restarts, a.max_restarts == 1 ? "" : "s", world, next, next > 1 ? "s" : "", a.min_ranks);
    world = next;
    merge_trace_at_exit.world = world;
    restarts = 0;
    server.new_attempt(/*resume=*/true, world);
  }
}

const Registrar reg("launch", kUsage, &launch_main);

}  // namespace
}  // namespace lockstep::commands
