// CPU-only build: no CUDA device; every device operation is an error that says so.
#include "runtime/check.h"
#include "runtime/device.h"

namespace lockstep {

bool built_with_cuda() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_unavailable_reason() { return "lockstep was built without CUDA (no nvcc or NCCL found)"; }

namespace {
[[noreturn]] void no_cuda() { LOCKSTEP_FAIL_IF(true) << cuda_unavailable_reason(); }
}  // namespace

void* cuda_alloc(size_t) { no_cuda(); }
void cuda_free(void*) {}
void cuda_copy_to_device(void*, const void*, size_t) { no_cuda(); }
void cuda_copy_to_host(void*, const void*, size_t) { no_cuda(); }
void cuda_gemm(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int) {
  no_cuda();
}

}  // namespace lockstep
