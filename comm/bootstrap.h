// Bootstrap: where this process sits in the job, learnt from the launcher that started it. The one
// reader of launcher environment variables in lockstep (the launcher, the worker and the
// benchmarks ask here), so a new launcher is taught in one place:
//   mpirun (Open MPI)      OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK
//   a PMIx launcher        PMIX_RANK and PMI_SIZE (Slurm's SLURM_NTASKS when PMI_SIZE is absent)
//   srun (Slurm, no MPI)   SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID
// in that order of precedence. A malformed value is an Error naming the variable and its value.
#pragma once

#include <string>

namespace lockstep {

struct LaunchInfo {
  int rank = 0;
  int size = 1;
  int local_rank = 0;              // rank among this node's processes (0 when the launcher omits it)
  std::string launched_by = "none";  // "mpirun", "srun", "none" (started by hand: one process)
};

// Reads the environment on every call (cheap; tests change it).
LaunchInfo detect_launch();

// The communicator backend a job gets when it names none: "mpi" when a multi-process launcher
// (mpirun, srun) started this process, else "self".
std::string default_backend();

}  // namespace lockstep
