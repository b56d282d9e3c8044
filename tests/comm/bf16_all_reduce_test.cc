// bfloat16 rounding (comm/bf16.h) and the MPI backend's bf16 all-reduce (run under mpirun, np 1..4).
//
// Bound of the all-reduce: ranks' inputs x_r are first rounded, a_r = bf16(x_r); the n - 1 pairwise
// sums are each added in fp32 and rounded to bf16 (relative error at most u = 2^-8 each), and no
// partial sum exceeds A = sum_r |a_r| in magnitude, so
//   |result - sum_r a_r| <= (n - 1) * u * A        (sum_r a_r computed independently, in double);
// on 2 ranks there is one rounding: the result is exactly bf16(a_0 + a_1).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "comm/bf16.h"
#include "tests/comm/comm_test_util.h"

namespace lockstep {
namespace {

constexpr double kUnit = 1.0 / 256;  // bf16 unit roundoff: 2^-8 (7 stored mantissa bits + round to nearest)

// Rank r's element i: a mix of magnitudes and signs, most not representable in bf16.
float input(int rank, size_t i) {
  const double k = double(i % 97) - 48;
  return float((1 + 0.37 * rank) * k * std::pow(1.7, double(i % 13) - 6) + 0.001 * double(i % 5) * (rank + 1));
}

TEST(Bf16, RoundsToNearestTiesToEven) {
  EXPECT_EQ(to_bf16(1.0f).bits, 0x3f80);
  EXPECT_EQ(from_bf16(to_bf16(1.0f)), 1.0f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
  EXPECT_EQ(from_bf16(to_bf16(1.0f + 0x1p-8f)), 1.0f);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): up.
  EXPECT_EQ(from_bf16(to_bf16(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);
  // Just above the halfway point rounds up.
  EXPECT_EQ(from_bf16(to_bf16(1.0f + 0x1p-8f + 0x1p-20f)), 1.0f + 0x1p-7f);
  EXPECT_EQ(from_bf16(to_bf16(-2.5f)), -2.5f);
  EXPECT_TRUE(std::isinf(from_bf16(to_bf16(std::numeric_limits<float>::infinity()))));
  EXPECT_TRUE(std::isinf(from_bf16(to_bf16(std::numeric_limits<float>::max()))));  // rounds past the top
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload sits only in the low 16 bits must not become infinity.
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(std::bit_cast<float>(0x7f800001u)))));
  for (size_t i = 0; i < 10000; ++i) {
    const float x = input(1, i);
    ASSERT_LE(std::fabs(double(from_bf16(to_bf16(x))) - x), kUnit * std::fabs(x)) << "x = " << x;
  }
}

TEST(Bf16AllReduce, SumIsTheSumOfRoundedInputsWithinNMinusOneRoundings) {
  auto comm = test::make_mpi();
  const int n = comm->size();
  for (size_t count : {size_t(1), size_t(1000), size_t(1) << 19}) {  // up to 1 MiB of bf16
    std::vector<BFloat16> x(count);
    for (size_t i = 0; i < count; ++i) x[i] = to_bf16(input(comm->rank(), i));
    comm->set_phase(1, CommMode::kTrain);
    comm->all_reduce_bf16(x, ReduceOp::kSum).wait();
    for (size_t i = 0; i < count; ++i) {
      double exact = 0, magnitude = 0;
      for (int r = 0; r < n; ++r) {
        const double a = from_bf16(to_bf16(input(r, i)));
        exact += a;
        magnitude += std::fabs(a);
      }
      const double got = from_bf16(x[i]);
      if (n == 2) {
        const float pair = from_bf16(to_bf16(input(0, i))) + from_bf16(to_bf16(input(1, i)));
        ASSERT_EQ(got, double(from_bf16(to_bf16(pair)))) << count << " elements, index " << i;
      }
      ASSERT_LE(std::fabs(got - exact), (n - 1) * kUnit * magnitude)
          << count << " elements, index " << i << ", " << n << " ranks";
    }
  }
}

TEST(Bf16AllReduce, AverageDividesTheSum) {
  auto comm = test::make_mpi();
  const int n = comm->size();
  // Small integers are exact in bf16: sum = n(n-1)/2 + n * (i % 7), average = sum / n.
  std::vector<BFloat16> x(4097);
  for (size_t i = 0; i < x.size(); ++i) x[i] = to_bf16(float(comm->rank() + int(i % 7)));
  comm->all_reduce_bf16(x, ReduceOp::kAverage).wait();
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = (n - 1) / 2.0 + double(i % 7);
    ASSERT_LE(std::fabs(from_bf16(x[i]) - want), kUnit * want) << "index " << i << ", " << n << " ranks";
  }
}

TEST(Bf16AllReduce, MaxIsRefused) {
  auto comm = test::make_mpi();
  std::vector<BFloat16> x(3);
  EXPECT_THROW(comm->all_reduce_bf16(x, ReduceOp::kMax), Error);
}

}  // namespace
}  // namespace lockstep
