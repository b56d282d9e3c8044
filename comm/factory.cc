// make_communicator: backend choice by name; the only file that includes backend headers.
#include "comm/factory.h"

#include "comm/mpi/mpi_communicator.h"
#include "comm/self/self_communicator.h"
#include "runtime/check.h"
#if LOCKSTEP_WITH_NCCL
#include "comm/nccl/nccl_communicator.h"
#endif

namespace lockstep {

bool has_backend(const std::string& backend) {
  if (backend == "mpi" || backend == "self") return true;
  return backend == "nccl" && LOCKSTEP_WITH_NCCL;
}

std::unique_ptr<Communicator> make_communicator(const CommSpec& spec) {
  if (spec.backend == "mpi") return std::make_unique<MpiCommunicator>(spec.options);
  if (spec.backend == "self") return std::make_unique<SelfCommunicator>(spec.options);
  if (spec.backend == "nccl") {
#if LOCKSTEP_WITH_NCCL
    return std::make_unique<NcclCommunicator>(spec.options);
#else
    LOCKSTEP_FAIL_IF(true) << "communicator backend \"nccl\" needs a CUDA build: this lockstep was "
                              "built without nvcc and NCCL (LOCKSTEP_CUDA=OFF); use \"mpi\"";
#endif
  }
  LOCKSTEP_FAIL_IF(true) << "unknown communicator backend \"" << spec.backend
                         << "\" (known: mpi, nccl, self)";
  return nullptr;
}

}  // namespace lockstep
