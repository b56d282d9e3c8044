// GEMM wrapper: the one place that names the kernel library's GEMM. oneDNN's sgemm dispatches on
// the CPU's instruction set at run time (AVX-512, AVX2, ...) rather than on a table of CPU models,
// so new processors get their fastest kernels; its threads come from the OpenMP runtime.
#include "runtime/gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include "runtime/check.h"

namespace lockstep {

void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
  if (m == 0 || n == 0) return;
  dnnl_status_t s = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb,
                               beta, c, ldc);
  LOCKSTEP_CHECK(s == dnnl_success) << "dnnl_sgemm(" << m << "x" << n << "x" << k << ") failed: " << s;
}

void set_kernel_threads(int n) { omp_set_num_threads(n); }

}  // namespace lockstep
