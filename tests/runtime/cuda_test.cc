// CUDA paths: host/device round trips and cuBLAS GEMM against the CPU GEMM. Skipped, with the
// reason, on machines without a CUDA device (and in builds without CUDA).
#include <gtest/gtest.h>

#include "runtime/check.h"
#include "runtime/device.h"
#include "runtime/gemm.h"
#include "runtime/philox.h"
#include "runtime/tensor.h"
#include "tests/golden_io.h"

namespace lockstep {
namespace {

// GTEST_SKIP returns from the test body, so this must be a macro.
#define LOCKSTEP_REQUIRE_GPU() \
  if (cuda_device_count() == 0) GTEST_SKIP() << "needs a GPU: " << cuda_unavailable_reason()

Tensor random(Shape s, uint32_t layer) {
  Tensor t = Tensor::empty(s);
  Philox(RngState{7, 0, RngStream::kTest, 0}).uniform(layer, t.data(), t.numel());
  for (float& v : t.span()) v = 2.f * v - 1.f;
  return t;
}

TEST(Cuda, CpuOnlyBuildRefusesDeviceTensors) {
  if (built_with_cuda()) GTEST_SKIP() << "a CUDA build";
  EXPECT_EQ(cuda_device_count(), 0);
  EXPECT_THROW(Tensor::empty({4}, Device::kCUDA), Error);
}

TEST(Cuda, RoundTripIsExact) {
  LOCKSTEP_REQUIRE_GPU();
  Tensor x = random({3, 1000}, 0);
  Tensor d = x.to(Device::kCUDA);
  EXPECT_EQ(d.device(), Device::kCUDA);
  Tensor back = d.to(Device::kCPU);
  ASSERT_EQ(back.shape(), x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(back[i], x[i]) << i;
}

TEST(Cuda, GemmMatchesCpuGemm) {
  LOCKSTEP_REQUIRE_GPU();
  for (auto [ta, tb] : {std::pair{false, false}, {true, false}, {false, true}, {true, true}}) {
    const int m = 37, n = 53, k = 129;
    Tensor a = ta ? random({k, m}, 1) : random({m, k}, 1);
    Tensor b = tb ? random({n, k}, 2) : random({k, n}, 2);
    Tensor c = random({m, n}, 3), want = c.clone();
    const int lda = ta ? m : k, ldb = tb ? k : n;
    gemm(ta, tb, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, 2.f, want.data(), n);
    Tensor da = a.to(Device::kCUDA), db = b.to(Device::kCUDA), dc = c.to(Device::kCUDA);
    cuda_gemm(ta, tb, m, n, k, 0.5f, da.data(), lda, db.data(), ldb, 2.f, dc.data(), n);
    EXPECT_ALLCLOSE(dc.to(Device::kCPU), want, 1e-4, 1e-4) << "trans_a=" << ta << " trans_b=" << tb;
  }
}

}  // namespace
}  // namespace lockstep
