// Supervision of one attempt of a launched job (Boost.Asio): starts mpirun in its own process
// group (so a terminal's Ctrl-C reaches only the launcher, and mpirun dies with the launcher),
// then watches, on one io_context:
//   - SIGCHLD: mpirun's exit ends the attempt;
//   - SIGINT/SIGTERM/SIGUSR1 (Slurm's preemption warning): the first asks the coordinator for STOP (checkpoint at an agreed step, clean
//     exit); a second one at least 1 s later kills the job (the same signal delivered twice at once,
//     directly and through the process group, is one request);
//   - mpirun's output, through a pipe: lines from lockstep pass through, everything goes to the
//     attempt's log file, and mpirun's notice of a rank killed by a signal becomes one line naming
//     the rank, host and signal;
//   - a timer: the progress callback, the registered workers' processes on this host (a vanished
//     one is named: rank, pid, host), every rank's heartbeat deadline, and the registration
//     deadline. A dead or silent rank ends the attempt within seconds; nothing of it is left behind.
// Only processes this supervisor started are ever signalled: mpirun's process group, and registered
// worker pids that were seen to descend from that mpirun.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "launcher/coordinator/server.h"

namespace lockstep {

struct AttemptResult {
  int exit_code = 0;        // mpirun's exit status (128 + signal when killed)
  bool stop_requested = false;  // a signal asked for STOP during this attempt
  bool killed = false;      // a second signal killed the job
  std::string failure;      // why the attempt failed, naming the rank when known; empty if none seen
};

struct SupervisorOptions {
  double heartbeat_deadline_s = 10.0;  // a registered rank silent this long fails the attempt
  double register_deadline_s = 120.0;  // every rank must register within this
  double startup_deadline_s = 600.0;   // and finish its start-up (steps_per_epoch known) this long after
  double tick_s = 0.25;
  double mpirun_grace_s = 3.0;  // after a failure, mpirun may end the job itself before it is killed
  double repeat_signal_s = 1.0;  // a stop signal counts as a second one only this long after the first
  std::string log_path;          // mpirun's whole output (appended); empty: passed through unfiltered
  // Start mpirun in a network namespace of its own holding only loopback (needs CAP_SYS_ADMIN, as
  // root; without it mpirun starts in this one): whatever mpirun and the ranks listen on is
  // unreachable from any network. For one-host jobs whose workers reach the coordinator through a
  // Unix-domain socket.
  bool private_network = false;
};

class Supervisor {
 public:
  Supervisor(CoordinatorServer& server, SupervisorOptions o, std::function<void(const proto::JobStatus&)> on_tick);
  // Runs argv (mpirun ...) to its end. The process group is killed afterwards, as is any
  // registered worker process still alive on this host.
  AttemptResult run(const std::vector<std::string>& argv);

 private:
  CoordinatorServer& server_;
  SupervisorOptions o_;
  std::function<void(const proto::JobStatus&)> on_tick_;
};

}  // namespace lockstep
