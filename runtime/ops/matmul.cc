// matmul: 2-D, batched 3-D, and 3-D by a shared 2-D, forward and backward as oneDNN GEMMs.
#include <climits>

#include "runtime/autograd.h"
#include "runtime/gemm.h"
#include "runtime/ops.h"
#include "runtime/ops/op_util.h"

namespace lockstep {
namespace {

// C (m, n) = op(A) op(B) for `batch` matrices at strides sa, sb, sc (0: shared by the batch).
// Zero when k is 0 (the GEMM's leading dims must be at least 1).
void batched_gemm(int64_t batch, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t sa,
                  const float* b, int64_t sb, float* c, int64_t sc) {
  const int lda = static_cast<int>(ta ? m : k), ldb = static_cast<int>(tb ? k : n);
  for (int64_t i = 0; i < batch; ++i) {
    float* ci = c + i * sc;
    if (k == 0) {
      std::fill_n(ci, m * n, 0.f);
      continue;
    }
    gemm(ta, tb, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), 1.f, a + i * sa, std::max(lda, 1),
         b + i * sb, std::max(ldb, 1), 0.f, ci, std::max(static_cast<int>(n), 1));
  }
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  ops_detail::check_input("matmul", a);
  ops_detail::check_input("matmul", b);
  const Shape& as = a.shape();
  const Shape& bs = b.shape();
  const bool ok_rank = (a.ndim() == 2 && b.ndim() == 2) || (a.ndim() == 3 && (b.ndim() == 3 || b.ndim() == 2));
  LOCKSTEP_FAIL_IF(!ok_rank) << "matmul: shapes " << shape_str(as) << " and " << shape_str(bs)
                             << ": supported are (M, K) x (K, N), (B, M, K) x (B, K, N) and (B, M, K) x (K, N)";
  const int64_t K = a.dim(-1), Kb = b.dim(-2);
  LOCKSTEP_FAIL_IF(K != Kb) << "matmul: shapes " << shape_str(as) << " and " << shape_str(bs)
                            << " do not fit (inner sizes " << K << " and " << Kb << ")";
  LOCKSTEP_FAIL_IF(b.ndim() == 3 && a.dim(0) != b.dim(0))
      << "matmul: shapes " << shape_str(as) << " and " << shape_str(bs) << " have batch sizes " << a.dim(0)
      << " and " << b.dim(0);
  for (const Tensor* t : {&a, &b})
    for (int64_t d : t->shape())
      LOCKSTEP_FAIL_IF(d > INT_MAX) << "matmul: shapes " << shape_str(as) << " and " << shape_str(bs)
                                    << ": a dim exceeds the GEMM's int range";

  // Ranks 2 and 3 only: never channels_last (a 4-D format), so the storage is row-major.
  const int64_t B = a.ndim() == 3 ? a.dim(0) : 1, M = a.dim(-2), N = b.dim(-1);
  const bool shared_b = b.ndim() == 2;  // (B, M, K) x (K, N): one GEMM of (B*M, K) x (K, N)
  const int64_t gb = shared_b ? 1 : B, gm = shared_b ? B * M : M;
  LOCKSTEP_FAIL_IF(gm > INT_MAX) << "matmul: shapes " << shape_str(as) << " and " << shape_str(bs)
                                 << ": B*M exceeds the GEMM's int range";
  Shape out_shape = a.ndim() == 3 ? Shape{B, M, N} : Shape{M, N};
  Tensor out = Tensor::empty(out_shape);
  batched_gemm(gb, false, false, gm, N, K, a.data(), gm * K, b.data(), K * N, out.data(), gm * N);
  if (!should_record({&a, &b})) return out;

  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  Tensor keep_a = need_b ? a.detach() : Tensor(), keep_b = need_a ? b.detach() : Tensor();
  const Shape sa = as, sb = bs;
  return record("matmul", out, {a, b}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor ga, gbt;
    if (need_a) {  // dA (gm, K) = G (gm, N) B^T
      ga = Tensor::empty(sa);
      batched_gemm(gb, false, true, gm, K, N, g.data(), gm * N, keep_b.data(), K * N, ga.data(), gm * K);
    }
    if (need_b) {  // dB (K, N) = A^T (K, gm) G (gm, N)
      gbt = Tensor::empty(sb);
      batched_gemm(gb, true, false, K, N, gm, keep_a.data(), gm * K, g.data(), gm * N, gbt.data(), K * N);
    }
    return {ga, gbt};
  });
}

}  // namespace lockstep
