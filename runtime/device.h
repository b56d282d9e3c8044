// Accelerator devices: how many there are and moving bytes to and from them. CUDA builds
// implement this in runtime/cuda/; CPU-only builds in runtime/device_none.cc, which reports no
// device. Nothing else in the tree names CUDA.
#pragma once

#include <cstddef>
#include <string>

namespace lockstep {

bool built_with_cuda();
// CUDA devices usable by this process; 0 without a driver or a GPU (never throws).
int cuda_device_count();
// Why cuda_device_count() is 0, for skip messages and errors.
std::string cuda_unavailable_reason();

void* cuda_alloc(size_t bytes);
void cuda_free(void* p);
void cuda_copy_to_device(void* dst, const void* src, size_t bytes);
void cuda_copy_to_host(void* dst, const void* src, size_t bytes);

// C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C, row-major, all pointers on the device
// (cuBLAS).
void cuda_gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
               const float* b, int ldb, float beta, float* c, int ldc);

}  // namespace lockstep
