// MpiRuntime: RAII owner of MPI_Init_thread / MPI_Finalize. MPI may be initialised only once per
// process, so: create one MpiRuntime at the top of main() (it must outlive every communicator);
// an MpiCommunicator created without one initialises MPI itself and finalizes it when destroyed,
// after which MPI cannot be used again in that process. Requests MPI_THREAD_MULTIPLE (each
// communicator calls MPI from its own communication thread) and requires it when more than one
// communicator is alive. Public (a program that creates and destroys several communicators holds
// one in main()), so no MPI header here: only comm/*.cc include <mpi.h>.
#pragma once

namespace lockstep {

class MpiRuntime {
 public:
  // Initialises MPI unless it already is; finalizes in the destructor only if it initialised.
  // Throws Error if MPI was already finalized or offers less than MPI_THREAD_SERIALIZED.
  explicit MpiRuntime(int* argc = nullptr, char*** argv = nullptr);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  bool owns_mpi() const { return owns_; }
  static int world_rank();
  static int world_size();
  // MPI_THREAD_MULTIPLE granted: several communicators (threads) may call MPI at once.
  static bool thread_multiple();
  // Max of `value` over all ranks of MPI_COMM_WORLD (blocking): lets main() agree on an exit code.
  static int max_over_ranks(int value);

 private:
  bool owns_ = false;
};

// Fatal error in a multi-rank job: MPI_Abort on MPI_COMM_WORLD, so every rank ends instead of
// hanging in its next collective. Meant for main(), never for library code. Falls back to
// std::_Exit when MPI is not running.
[[noreturn]] void mpi_abort(int code);

}  // namespace lockstep
