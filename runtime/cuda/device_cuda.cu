// CUDA build: device count, allocation, copies (CUDA runtime) and GEMM (cuBLAS). cuBLAS is opened
// with dlopen at the first GEMM on a device: linked, its libraries alone add about 150 MB of
// resident memory to every process, CPU-only runs included.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <mutex>
#include <string>

#include "runtime/check.h"
#include "runtime/device.h"

namespace lockstep {
namespace {

void check_cuda(cudaError_t e, const char* what) {
  LOCKSTEP_FAIL_IF(e != cudaSuccess) << what << ": " << cudaGetErrorString(e);
}

// The two cuBLAS entry points used, from the library of the major version compiled against.
struct Cublas {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  cublasHandle_t handle = nullptr;
};

// Opened, resolved and given one handle (for the process's current device) on first use.
const Cublas& cublas() {
  static std::once_flag once;
  static Cublas api;
  std::call_once(once, [] {
    const std::string lib = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    void* h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    LOCKSTEP_FAIL_IF(!h) << "cannot load " << lib << " for GEMM on the GPU: " << dlerror();
    api.create = reinterpret_cast<decltype(&cublasCreate_v2)>(dlsym(h, "cublasCreate_v2"));
    api.sgemm = reinterpret_cast<decltype(&cublasSgemm_v2)>(dlsym(h, "cublasSgemm_v2"));
    LOCKSTEP_FAIL_IF(!api.create || !api.sgemm) << lib << " lacks cublasCreate_v2 or cublasSgemm_v2";
    LOCKSTEP_FAIL_IF(api.create(&api.handle) != CUBLAS_STATUS_SUCCESS) << "cublasCreate failed";
  });
  return api;
}

}  // namespace

bool built_with_cuda() { return true; }

int cuda_device_count() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

std::string cuda_unavailable_reason() {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) return std::string("no usable CUDA device: ") + cudaGetErrorString(e);
  return n == 0 ? "no CUDA device on this machine" : "";
}

void* cuda_alloc(size_t bytes) {
  void* p = nullptr;
  check_cuda(cudaMalloc(&p, bytes), "cudaMalloc");
  return p;
}

void cuda_free(void* p) { cudaFree(p); }

void cuda_copy_to_device(void* dst, const void* src, size_t bytes) {
  check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
}

void cuda_copy_to_host(void* dst, const void* src, size_t bytes) {
  check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to host");
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
void cuda_gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
               const float* b, int ldb, float beta, float* c, int ldc) {
  if (m == 0 || n == 0) return;
  const Cublas& api = cublas();
  cublasStatus_t s = api.sgemm(api.handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 n, m, k, &alpha, b, ldb, a, lda, &beta, c, ldc);
  LOCKSTEP_FAIL_IF(s != CUBLAS_STATUS_SUCCESS) << "cublasSgemm(" << m << "x" << n << "x" << k << ") failed: " << s;
}

}  // namespace lockstep
