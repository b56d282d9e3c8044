// All-reduce on the MPI backend: every op, float and double, 1 element to 64 MiB, against the
// closed forms for x[i] = rank + i%7 over n ranks.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/comm/comm_test_util.h"

namespace lockstep {
namespace {

// sum = n(n-1)/2 + n*(i%7); average = sum/n; max = n-1 + i%7; min = i%7.
template <typename T>
double expected(ReduceOp op, int n, size_t i) {
  const double k = double(i % 7);
  switch (op) {
    case ReduceOp::kSum: return n * (n - 1) / 2.0 + n * k;
    case ReduceOp::kAverage: return (n - 1) / 2.0 + k;
    case ReduceOp::kMax: return n - 1 + k;
    case ReduceOp::kMin: return k;
  }
  return 0;
}

template <typename T>
void check_all_reduce(Communicator& comm, ReduceOp op, size_t count) {
  const int n = comm.size();
  std::vector<T> x(count);
  for (size_t i = 0; i < count; ++i) x[i] = T(comm.rank() + int(i % 7));
  comm.all_reduce(std::span<T>(x), op).wait();
  for (size_t i = 0; i < count; ++i) {
    const double want = expected<T>(op, n, i);
    // Exact for sum, max, min (small integers); average may round once (1/n).
    ASSERT_NEAR(double(x[i]), want, 1e-6 * std::abs(want))
        << "op " << int(op) << ", " << count << " elements, index " << i << ", " << n << " ranks";
  }
}

constexpr ReduceOp kOps[] = {ReduceOp::kSum, ReduceOp::kAverage, ReduceOp::kMax, ReduceOp::kMin};

TEST(AllReduce, FloatEveryOpSmallToOneMiB) {
  auto comm = test::make_mpi();
  for (ReduceOp op : kOps)
    for (size_t count : {size_t(1), size_t(7), size_t(1000), size_t(1) << 18})  // up to 1 MiB
      check_all_reduce<float>(*comm, op, count);
}

TEST(AllReduce, DoubleEveryOp) {
  auto comm = test::make_mpi();
  for (ReduceOp op : kOps)
    for (size_t count : {size_t(1), size_t(4097)}) check_all_reduce<double>(*comm, op, count);
}

TEST(AllReduce, Float64MiBSumAndAverage) {
  auto comm = test::make_mpi();
  const size_t count = (size_t(64) << 20) / sizeof(float);
  check_all_reduce<float>(*comm, ReduceOp::kSum, count);
  check_all_reduce<float>(*comm, ReduceOp::kAverage, count);
}

// Several collectives in flight at once complete in issue order whatever order they are waited in.
TEST(AllReduce, ManyInFlightWaitedInReverse) {
  auto comm = test::make_mpi();
  const int n = comm->size();
  std::vector<std::vector<float>> bufs(8);
  std::vector<Work> works;
  for (size_t b = 0; b < bufs.size(); ++b) {
    bufs[b].assign(1000 + b, float(comm->rank() + int(b)));
    works.push_back(comm->all_reduce(std::span<float>(bufs[b]), ReduceOp::kSum));
  }
  for (size_t b = bufs.size(); b-- > 0;) works[b].wait();
  for (size_t b = 0; b < bufs.size(); ++b)
    for (float v : bufs[b]) ASSERT_EQ(v, n * (n - 1) / 2.0f + n * float(b)) << "buffer " << b;
}

}  // namespace
}  // namespace lockstep
