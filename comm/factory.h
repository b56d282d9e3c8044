// make_communicator: the one place that names the communicator backends. A job picks one by name:
//   "mpi"  OpenMPI on CPU tensors (under mpirun, or a size-1 world without it);
//   "nccl" NCCL on device buffers, one rank per GPU (CUDA builds only), bootstrapped over MPI;
//   "self" a size-1 communicator for single-process runs without MPI.
// A job that names none gets default_backend() (comm/bootstrap.h, included for it).
#pragma once

#include <memory>
#include <string>

#include "comm/bootstrap.h"
#include "comm/communicator.h"

namespace lockstep {

struct CommSpec {
  std::string backend = "mpi";  // "mpi", "nccl", "self"
  CommOptions options;
};

// Throws Error for an unknown backend, or "nccl" in a build without CUDA.
std::unique_ptr<Communicator> make_communicator(const CommSpec& spec);

// Whether this build has the backend ("nccl" only in CUDA builds).
bool has_backend(const std::string& backend);

}  // namespace lockstep
