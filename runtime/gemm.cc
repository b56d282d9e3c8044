// cblas_sgemm wrapper: the one place that names the kernel library's GEMM.
#include "runtime/gemm.h"

#include <cblas.h>

namespace lockstep {

void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void set_kernel_threads(int n) { openblas_set_num_threads(n); }

}  // namespace lockstep
