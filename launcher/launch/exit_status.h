// The exit statuses of `lockstep launch` and `lockstep worker` (documented in the README and
// `lockstep launch --help`). kExitStopped is the "requeue me" status of a preempted Slurm job: the
// job stopped at a checkpoint every rank agreed on, and `--resume` continues it bit-exactly.
#pragma once

namespace lockstep {

constexpr int kExitDone = 0;      // every epoch trained; the last checkpoint holds the result
constexpr int kExitFailed = 1;    // a rank failed (died, went silent, or reported an error), restarts spent
constexpr int kExitBadInput = 2;  // the command line, job, data or run directory was refused; nothing started
constexpr int kExitStopped = 3;   // stopped on request (SIGINT/SIGTERM/SIGUSR1 or `lockstep ctl stop`)
                                  // after a checkpoint; `--resume` continues it
constexpr int kExitKilled = 4;    // a second signal killed the job before its stop checkpoint

}  // namespace lockstep
