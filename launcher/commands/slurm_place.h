// Where `lockstep launch` runs its workers inside a Slurm allocation (salloc, sbatch): the
// allocation's nodes, expanded by Slurm itself (`scontrol show hostnames`), and the `srun` command
// line that starts one task per rank on them. srun places the tasks on the allocation's nodes and
// gives them PMIx (`--mpi=pmix`), the one way Open MPI 4.1 initialises under srun.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "comm/bootstrap.h"

namespace lockstep::commands {

struct SlurmPlace {
  SlurmAllocation alloc;
  std::vector<std::string> hosts;  // the allocation's nodes, one name each
  bool local_only = false;         // every node is this machine (a one-node allocation here)
};

// nullopt outside an allocation. Throws naming the job id when scontrol cannot expand the nodelist.
std::optional<SlurmPlace> slurm_place();

// srun -n RANKS ... WORKER_ARGV: one task per rank through PMIx, the environment passed through
// (LOCKSTEP_WORKER_SECRET reaches the workers that way), no core binding. A task's non-zero exit
// does not kill the others: a stop exits 3 on every rank after the checkpoint, and a failing rank
// aborts the step itself (MPI_Abort) or is caught by the launcher's heartbeat deadline.
std::vector<std::string> srun_argv(int ranks, const std::vector<std::string>& srun_args,
                                   const std::vector<std::string>& worker_argv);

}  // namespace lockstep::commands
