// Bootstrap: where this process sits in the job, learnt from the launcher that started it. The one
// reader of launcher environment variables in lockstep (the launcher, the worker and the
// benchmarks ask here), so a new launcher is taught in one place:
//   mpirun (Open MPI)      OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK
//   a PMIx launcher        PMIX_RANK and PMI_SIZE (Slurm's SLURM_NTASKS when PMI_SIZE is absent)
//   srun (Slurm, no MPI)   SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID
// in that order of precedence. A malformed value is an Error naming the variable and its value.
// `srun --mpi=pmix` sets PMIX_RANK and the SLURM_* variables (no PMI_SIZE): size and local rank
// then come from SLURM_NTASKS and SLURM_LOCALID. Open MPI 4.1 initialises under srun only through
// PMIx (Debian 12: slurm-wlm 22.05's mpi/pmix_v4 plugin); `--mpi=none` or `--mpi=pmi2` leave every
// task a world of one, which check_mpi_can_start refuses by name.
//
// Also read here: the Slurm allocation this process runs in (SLURM_JOB_ID and friends), for
// `lockstep launch` inside `salloc`/`sbatch`.
#pragma once

#include <optional>
#include <string>

namespace lockstep {

struct LaunchInfo {
  int rank = 0;
  int size = 1;
  int local_rank = 0;              // rank among this node's processes (0 when the launcher omits it)
  std::string launched_by = "none";  // "mpirun", "srun", "none" (started by hand: one process)
  bool pmix = false;               // PMIX_RANK is set: Open MPI can initialise from the launcher
};

// Reads the environment on every call (cheap; tests change it).
LaunchInfo detect_launch();

// Throws, in one line naming the task, when `info` is a launch MPI cannot start from: srun without
// PMIx (`--mpi=none`, `--mpi=pmi2`) for more than one task. Called before MPI_Init, and by the
// worker before it registers, so a coordinator never waits for ranks that cannot start.
void check_mpi_can_start(const LaunchInfo& info);

// The communicator backend a job gets when it names none: "mpi" when a multi-process launcher
// (mpirun, srun) started this process, else "self".
std::string default_backend();

// A Slurm allocation (salloc, sbatch) this process runs in; Slurm's own variables, strictly parsed.
struct SlurmAllocation {
  std::string job_id;    // SLURM_JOB_ID
  std::string nodelist;  // SLURM_JOB_NODELIST, compressed ("node[01-04],gpu7"); expand with
                         // `scontrol show hostnames`
  int tasks = 0;         // SLURM_NTASKS when set (sbatch -n), else the sum of SLURM_TASKS_PER_NODE
                         // ("2(x3),1" = 7): the tasks the allocation may start at once
};

// nullopt outside an allocation (SLURM_JOB_ID unset). An Error names a malformed variable and value.
std::optional<SlurmAllocation> detect_slurm_allocation();

}  // namespace lockstep
