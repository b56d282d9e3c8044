// GEMM through the kernel library (OpenBLAS cblas_sgemm), row-major:
//   C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C
#pragma once

namespace lockstep {

void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc);

// Threads the kernel library may use in this process (benchmarks and workers use 1).
void set_kernel_threads(int n);

}  // namespace lockstep
