// Shared helpers for the comm suites (run under mpirun by mpi_test_main.cc).
#pragma once

#include <chrono>
#include <memory>

#include "comm/factory.h"

namespace lockstep::test {

// The MPI backend with a timeout generous enough for 4 oversubscribed ranks on 2 busy cores.
inline std::unique_ptr<Communicator> make_mpi(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  CommSpec spec;
  spec.backend = "mpi";
  spec.options.timeout = timeout;
  return make_communicator(spec);
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace lockstep::test
