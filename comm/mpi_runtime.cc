// MpiRuntime: MPI_Init_thread / MPI_Finalize ownership and process-wide MPI queries.
#include "comm/mpi_runtime.h"

#include <mpi.h>

#include <cstdlib>

#include "comm/bootstrap.h"
#include "runtime/check.h"

namespace lockstep {

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  LOCKSTEP_FAIL_IF(finalized) << "MPI was already finalized in this process (an earlier "
                                 "communicator owned it); create an MpiRuntime in main() that "
                                 "outlives every communicator";
  if (!initialized) {
    // srun without PMIx: Open MPI 4.1 would abort in MPI_Init with a page about PMI support.
    check_mpi_can_start(detect_launch());
    // Note [idle MPI yields]: a blocking collective spins in Open MPI's progress loop while a peer
    // is late, or while its own communication thread waits for the core behind its training
    // thread. With one core per rank that spin is taken from this rank's backward and the peer's
    // comm thread alike, and on a loaded machine a 2 MB all-reduce took 48 ms instead of 0.5 ms
    // (bench/ddp_bench.cc, 2 ranks on 2 cores). Open MPI's mpi_yield_when_idle makes an idle
    // progress loop sched_yield; the all-reduce latency between ready peers is unchanged. It is
    // Open MPI's own default for oversubscribed nodes; a value the user set (mpirun --mca, the
    // environment) wins.
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", /*overwrite=*/0);
    int provided = 0;
    LOCKSTEP_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) == MPI_SUCCESS);
    owns_ = true;
  }
  int provided = 0;
  MPI_Query_thread(&provided);
  if (provided < MPI_THREAD_SERIALIZED) {
    if (owns_) MPI_Finalize();
    LOCKSTEP_FAIL_IF(true) << "MPI offers thread level " << provided
                           << "; lockstep needs at least MPI_THREAD_SERIALIZED";
  }
  // Collective errors must come back as codes we can turn into lockstep::Error, not abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

MpiRuntime::~MpiRuntime() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_ && !finalized) MPI_Finalize();
}

int MpiRuntime::world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int MpiRuntime::world_size() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

bool MpiRuntime::thread_multiple() {
  int provided = 0;
  MPI_Query_thread(&provided);
  return provided >= MPI_THREAD_MULTIPLE;
}

int MpiRuntime::max_over_ranks(int value) {
  int out = value;
  LOCKSTEP_CHECK(MPI_Allreduce(&value, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) == MPI_SUCCESS);
  return out;
}

void mpi_abort(int code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace lockstep
