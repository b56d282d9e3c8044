// Broadcast from every root, all-gather (separate and in-place output), barrier, and the
// collective count, on the MPI backend.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "tests/comm/comm_test_util.h"

namespace lockstep {
namespace {

TEST(Broadcast, FromEveryRoot) {
  auto comm = test::make_mpi();
  for (int root = 0; root < comm->size(); ++root) {
    std::vector<std::byte> buf(1001);
    for (size_t i = 0; i < buf.size(); ++i)
      buf[i] = std::byte(comm->rank() == root ? (i * 31 + root) & 0xff : 0);
    comm->broadcast(buf, root).wait();
    for (size_t i = 0; i < buf.size(); ++i)
      ASSERT_EQ(int(buf[i]), int((i * 31 + root) & 0xff)) << "root " << root << ", byte " << i;
  }
}

TEST(AllGather, RankBlocksInRankOrder) {
  auto comm = test::make_mpi();
  const int n = comm->size();
  const size_t m = 513;
  std::vector<float> in(m), out(n * m, -1.f);
  for (size_t i = 0; i < m; ++i) in[i] = float(comm->rank() * 1000 + int(i));
  comm->all_gather(in, out).wait();
  for (int r = 0; r < n; ++r)
    for (size_t i = 0; i < m; ++i) ASSERT_EQ(out[r * m + i], float(r * 1000 + int(i))) << r << "," << i;
}

TEST(AllGather, InPlaceBlock) {
  auto comm = test::make_mpi();
  const int n = comm->size();
  const size_t m = 64;
  std::vector<float> out(n * m, -1.f);
  for (size_t i = 0; i < m; ++i) out[comm->rank() * m + i] = float(comm->rank() + 10 * int(i));
  std::span<const float> mine(out.data() + comm->rank() * m, m);
  comm->all_gather(mine, out).wait();
  for (int r = 0; r < n; ++r)
    for (size_t i = 0; i < m; ++i) ASSERT_EQ(out[r * m + i], float(r + 10 * int(i)));
}

TEST(Barrier, EveryRankPasses) {
  auto comm = test::make_mpi();
  for (int i = 0; i < 5; ++i) comm->barrier().wait();
}

TEST(Count, CollectivesIssuedCountsEveryKind) {
  auto comm = test::make_mpi();
  EXPECT_EQ(comm->collectives_issued(), 0u);
  std::vector<float> f(3, 1.f), g(3 * comm->size());
  std::vector<double> d(3, 1.0);
  std::vector<std::byte> b(3);
  comm->set_phase(2, CommMode::kEval);
  comm->all_reduce(std::span<float>(f), ReduceOp::kSum).wait();
  comm->all_reduce(std::span<double>(d), ReduceOp::kMax).wait();
  comm->broadcast(b, 0).wait();
  comm->all_gather(f, g).wait();
  Work w = comm->barrier();
  EXPECT_EQ(comm->collectives_issued(), 5u);  // counted at issue, before completion
  w.wait();
  EXPECT_EQ(comm->phase(), 2u);
  EXPECT_EQ(comm->mode(), CommMode::kEval);
}

TEST(Backend, NameRankSize) {
  auto comm = test::make_mpi();
  EXPECT_EQ(comm->backend(), "mpi");
  EXPECT_GE(comm->size(), 1);
  EXPECT_GE(comm->rank(), 0);
  EXPECT_LT(comm->rank(), comm->size());
}

}  // namespace
}  // namespace lockstep

namespace lockstep {
namespace {

// Overlap is real: a collective completes while the caller is busy elsewhere (here asleep, never
// calling into the communicator), so wait() afterwards returns at once.
TEST(Overlap, CollectiveProgressesWhileCallerIsBusy) {
  auto comm = test::make_mpi();
  const int n = comm->size();
  std::vector<float> x(size_t(4) << 20, 1.f);  // 16 MiB
  comm->barrier().wait();
  Work w = comm->all_reduce(std::span<float>(x), ReduceOp::kSum);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  const auto t0 = std::chrono::steady_clock::now();
  w.wait();
  EXPECT_LT(test::seconds_since(t0), 0.05) << "the all-reduce did not progress in the background";
  EXPECT_EQ(x[12345], float(n));
}

}  // namespace
}  // namespace lockstep

namespace lockstep {
namespace {

// With fingerprint checks off (trusted jobs), collectives still move the right data.
TEST(Unchecked, CollectivesWithoutFingerprints) {
  CommSpec spec;
  spec.backend = "mpi";
  spec.options.check_fingerprints = false;
  auto comm = make_communicator(spec);
  const int n = comm->size();
  std::vector<float> x(100, float(comm->rank()));
  comm->all_reduce(std::span<float>(x), ReduceOp::kSum).wait();
  for (float v : x) ASSERT_EQ(v, n * (n - 1) / 2.0f);
  comm->barrier().wait();
  EXPECT_EQ(comm->collectives_issued(), 2u);
}

}  // namespace
}  // namespace lockstep
