// The MPI communicator shared by the syncbn and dropout_ranks suites (run by mpi_test_main.cc under
// mpirun). Created on first use; a gtest environment destroys it when the tests end, before main()'s
// MpiRuntime finalizes MPI. Timeout generous enough for 4 oversubscribed ranks on 2 busy cores.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "comm/factory.h"

namespace lockstep {
namespace test_comm_detail {

inline std::unique_ptr<Communicator>& slot() {
  static std::unique_ptr<Communicator> comm;
  return comm;
}

class Release : public ::testing::Environment {
 public:
  void TearDown() override { slot().reset(); }
};

inline ::testing::Environment* const kRelease = ::testing::AddGlobalTestEnvironment(new Release);

}  // namespace test_comm_detail

inline Communicator& test_comm() {
  auto& comm = test_comm_detail::slot();
  if (!comm) {
    CommSpec spec;
    spec.backend = "mpi";
    spec.options.timeout = std::chrono::seconds(60);
    comm = make_communicator(spec);
  }
  return *comm;
}

}  // namespace lockstep
