// Broadcast from every root, all-gather of floats and of bytes (separate and in-place output),
// barrier, and the collective count, on the MPI backend.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "runtime/check.h"
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

// Byte r*m + i of the gathered buffer: rank r's i-th byte, a pattern that differs per rank and
// per position (m odd, so no block boundary lines up with a word).
int byte_pattern(int r, size_t i) { return int((r * 73 + i * 31 + i / 7) & 0xff); }

TEST(AllGatherBytes, RankBlocksInRankOrder) {
  auto comm = test::make_mpi();
  const int n = comm->size();
  for (size_t m : {size_t(0), size_t(1), size_t(13), size_t(4099)}) {
    std::vector<std::byte> in(m), out(n * m, std::byte{0xee});
    for (size_t i = 0; i < m; ++i) in[i] = std::byte(byte_pattern(comm->rank(), i));
    comm->all_gather(std::span<const std::byte>(in), std::span<std::byte>(out)).wait();
    for (int r = 0; r < n; ++r)
      for (size_t i = 0; i < m; ++i)
        ASSERT_EQ(int(out[r * m + i]), byte_pattern(r, i)) << m << " bytes per rank: rank " << r << ", byte " << i;
  }
}

TEST(AllGatherBytes, InPlaceBlockOfRecords) {
  struct Record {  // a trivially copyable record travels as its bytes
    uint64_t seed;
    uint32_t rank, stream;
  };
  auto comm = test::make_mpi();
  const int n = comm->size();
  const size_t m = 3;  // records per rank
  std::vector<Record> all(n * m, Record{0, 0, 0});
  for (size_t i = 0; i < m; ++i)
    all[comm->rank() * m + i] = Record{(uint64_t(1) << 40) + uint64_t(comm->rank()) * 1000 + i,
                                       uint32_t(comm->rank()), uint32_t(i)};
  std::span<const Record> mine(all.data() + comm->rank() * m, m);
  comm->all_gather(std::as_bytes(mine), std::as_writable_bytes(std::span<Record>(all))).wait();
  for (int r = 0; r < n; ++r)
    for (size_t i = 0; i < m; ++i) {
      const Record& x = all[r * m + i];
      ASSERT_EQ(x.seed, (uint64_t(1) << 40) + uint64_t(r) * 1000 + i) << r << "," << i;
      ASSERT_EQ(x.rank, uint32_t(r));
      ASSERT_EQ(x.stream, uint32_t(i));
    }
}

TEST(AllGatherBytes, WrongOutputSizeIsAnError) {
  auto comm = test::make_mpi();
  std::vector<std::byte> in(4), out(4 * comm->size() + 1);
  EXPECT_THROW(comm->all_gather(std::span<const std::byte>(in), std::span<std::byte>(out)), Error);
  EXPECT_EQ(comm->collectives_issued(), 0u);  // refused before it took a sequence number
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
  std::vector<std::byte> b(3), bg(3 * comm->size());
  comm->set_phase(2, CommMode::kEval);
  comm->all_reduce(std::span<float>(f), ReduceOp::kSum).wait();
  comm->all_reduce(std::span<double>(d), ReduceOp::kMax).wait();
  comm->broadcast(b, 0).wait();
  comm->all_gather(f, g).wait();
  comm->all_gather(std::span<const std::byte>(b), std::span<std::byte>(bg)).wait();
  Work w = comm->barrier();
  EXPECT_EQ(comm->collectives_issued(), 6u);  // counted at issue, before completion
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
