// `lockstep worker --coordinator HOST:PORT`: one rank of a job, started by mpirun (from
// `lockstep launch`, or by a cluster's own mpirun/Slurm beside `lockstep coordinator`). It
// registers with the coordinator, receives the job spec and run directory from it, and trains
// (worker/run.h). SIGTERM/SIGINT/SIGUSR1 make the whole job checkpoint at an agreed step and stop
// cleanly (SIGUSR1: Slurm's preemption warning, `sbatch --signal=USR1@90`; SIGTERM: what Slurm
// sends before it kills or requeues a job).
// Exit status (launch/exit_status.h): 0 the job finished; 3 (kExitStopped) it stopped at a checkpoint
// before its end, `--resume` continues it: "requeue me"; 1 an error or a lost coordinator.
// An error ends every rank at once (Communicator::abort), with one line naming this rank.
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <utility>  // before Boost.Asio 1.74, which uses std::exchange without it
#include <boost/asio.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "comm/bootstrap.h"
#include "comm/factory.h"
#include "launcher/cli.h"
#include "launcher/commands/commands.h"
#include "launcher/coordinator/client.h"
#include "launcher/coordinator/grpc_util.h"
#include "launcher/launch/exit_status.h"
#include "launcher/worker/run.h"
#include "runtime/check.h"

namespace lockstep::commands {
namespace {

constexpr const char* kUsage =
    "lockstep worker --coordinator HOST:PORT [--secret-file F] [--tls-ca F [--tls-cert F --tls-key F]]";

std::string hostname() {
  char h[256] = {};
  gethostname(h, sizeof h - 1);
  return h;
}

// SIGTERM/SIGINT/SIGUSR1 set the flag the step loop reads at every boundary (Boost.Asio, on its own
// thread: the process's signal handler only wakes it).
class SignalWatch {
 public:
  // On the signal the timeline so far is written too: a stop that cannot reach a step boundary (a
  // peer is dead) ends in mpirun's SIGKILL, and a failed job's trace shows where it was.
  SignalWatch(std::atomic<bool>& flag, std::shared_ptr<TraceHandle> trace)
      : signals_(io_, SIGTERM, SIGINT, SIGUSR1) {
    signals_.async_wait([&flag, trace](const boost::system::error_code& ec, int) {
      if (ec) return;
      flag = true;
      trace->snapshot();
    });
    thread_ = std::thread([this] { io_.run(); });
  }
  ~SignalWatch() {
    io_.stop();
    thread_.join();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  std::thread thread_;
};

int worker_main(int argc, char** argv) {
  ClientOptions copt;
  std::string secret_file;
  cli::CommandLine cl(std::string("usage: ") + kUsage + "\n", std::string("; usage: ") + kUsage);
  cl.text("--coordinator", copt.address);
  cl.text("--secret-file", secret_file);
  cl.text("--tls-ca", copt.tls_ca);
  cl.text("--tls-cert", copt.tls_cert);
  cl.text("--tls-key", copt.tls_key);
  if (!cl.parse(argc, argv)) return 0;  // --help
  LOCKSTEP_FAIL_IF(copt.address.empty()) << "--coordinator HOST:PORT is required; usage: " << kUsage;
  grpc_util::check_address(copt.address, "--coordinator");
  // If mpirun (or orted) is killed, this rank must not outlive it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  std::atomic<bool> terminate{false};
  auto trace = std::make_shared<TraceHandle>();  // this rank's timeline, once run_worker has one
  SignalWatch signals(terminate, trace);

  const LaunchInfo launch = detect_launch();
  check_mpi_can_start(launch);  // before registering: the coordinator must not wait for this rank
  const int rank = launch.rank;
  const int world = launch.size;
  copt.token = read_worker_secret(secret_file);
  CoordinatorClient client(copt);
  proto::RegisterRequest req;
  req.set_rank(rank);
  req.set_world_size(world);
  req.set_host(hostname());
  req.set_pid(::getpid());
  const proto::RegisterReply reg = client.register_worker(req);
  // Heartbeats from registration on, on the client's own thread, whatever this thread does next
  // (MPI start-up, data load, restore): a slow start is not a dead rank. They read only the board,
  // which they co-own (Note [heartbeat lifetime]).
  auto board = std::make_shared<StepMetricsBoard>();
  client.start_heartbeats(
      rank, reg.heartbeat_interval_s() > 0 ? reg.heartbeat_interval_s() : 0.5,
      reg.coordinator_timeout_s() > 0 ? reg.coordinator_timeout_s() : 10.0, [board] { return board->get(); },
      [rank, trace](const std::string& why) {
        trace->snapshot();
        const std::string line = "lockstep worker: rank " + std::to_string(rank) + ": " + why + "; stopping\n";
        std::fwrite(line.data(), 1, line.size(), stderr);
        std::fflush(stderr);
        std::_Exit(kExitFailed);
      });

  const auto& dist = reg.job().distributed();
  CommSpec spec;
  spec.backend = !dist.backend().empty() ? dist.backend() : default_backend();
  if (dist.has_collective_timeout_s())
    spec.options.timeout = std::chrono::milliseconds(static_cast<int64_t>(dist.collective_timeout_s() * 1000));
  std::unique_ptr<Communicator> comm = make_communicator(spec);
  LOCKSTEP_FAIL_IF(comm->size() != world || comm->rank() != rank)
      << "the " << spec.backend << " communicator says rank " << comm->rank() << " of " << comm->size()
      << ", the environment says " << rank << " of " << world;
  try {
    return run_worker(WorkerSetup{.reg = reg, .comm = comm.get(), .client = &client, .terminate = &terminate,
                                       .board = board, .trace = trace});
  } catch (const std::exception& e) {
    const std::string line = "lockstep worker: error on rank " + std::to_string(rank) + " of " +
                             std::to_string(world) + ": " + e.what() + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
    if (comm->size() > 1) comm->abort(kExitFailed);
    return kExitFailed;
  }
}

const Registrar reg("worker", kUsage, &worker_main);

}  // namespace
}  // namespace lockstep::commands
