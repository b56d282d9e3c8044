// CUDA build: device count, allocation, copies (CUDA runtime) and GEMM (cuBLAS).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <mutex>

#include "runtime/check.h"
#include "runtime/device.h"

namespace lockstep {
namespace {

void check_cuda(cudaError_t e, const char* what) {
  LOCKSTEP_FAIL_IF(e != cudaSuccess) << what << ": " << cudaGetErrorString(e);
}

// One cuBLAS handle for the process's current device, created on first use.
cublasHandle_t blas() {
  static std::once_flag once;
  static cublasHandle_t handle = nullptr;
  std::call_once(once, [] {
    LOCKSTEP_FAIL_IF(cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) << "cublasCreate failed";
  });
  return handle;
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
  cublasStatus_t s = cublasSgemm(blas(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 n, m, k, &alpha, b, ldb, a, lda, &beta, c, ldc);
  LOCKSTEP_FAIL_IF(s != CUBLAS_STATUS_SUCCESS) << "cublasSgemm(" << m << "x" << n << "x" << k << ") failed: " << s;
}

}  // namespace lockstep
