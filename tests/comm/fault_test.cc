// Failure scenarios: ranks that disagree on a collective's fingerprint, and a rank that skips a
// collective. Every involved rank must end with an Error naming the culprits within seconds, never
// hang. Each scenario breaks its communicator, so CTest runs each alone (lockstep_mpi_fault_test);
// the normal suite runs exclude Fault*.
#include <gtest/gtest.h>

#include <cstdio>

#include <string>
#include <thread>
#include <vector>

#include "runtime/check.h"
#include "tests/comm/comm_test_util.h"

namespace lockstep {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kTimeout{2000};

// The message each rank got, for the CTest log.
void show(const Communicator& comm, const Error& e) {
  std::fprintf(stderr, "[rank %d] Error: %s\n", comm.rank(), e.what());
}

// "rank 0" / "ranks 0,1,...,k-1": the ranks below `last`.
std::string ranks_below(int last) {
  std::string s = last == 1 ? "rank " : "ranks ";
  for (int r = 0; r < last; ++r) s += (r ? "," : "") + std::to_string(r);
  return s;
}

// Issues one all-reduce that the last rank issues differently; every rank must throw `want`.
// bf16_last: the last rank all-reduces bfloat16s instead of floats.
void expect_mismatch(int count_last, CommMode mode_last, const std::string& want_last, bool bf16_last = false) {
  auto comm = test::make_mpi(kTimeout);
  const int n = comm->size();
  if (n < 2) GTEST_SKIP() << "needs 2 ranks";
  comm->barrier().wait();  // collective #0 agrees
  const bool last = comm->rank() == n - 1;
  comm->set_phase(3, last ? mode_last : CommMode::kTrain);
  std::vector<float> x(last ? count_last : 128, 1.f);
  std::vector<BFloat16> h(x.size(), to_bf16(1.f));
  const auto t0 = std::chrono::steady_clock::now();
  try {
    if (last && bf16_last)
      comm->all_reduce_bf16(h, ReduceOp::kSum).wait();
    else
      comm->all_reduce(std::span<float>(x), ReduceOp::kSum).wait();
    FAIL() << "no error on rank " << comm->rank();
  } catch (const Error& e) {
    show(*comm, e);
    const std::string want = "collective #1 mismatch: " + ranks_below(n - 1) +
                             " all_reduce(sum, 128 floats, train, phase 3) but rank " +
                             std::to_string(n - 1) + " " + want_last;
    EXPECT_EQ(std::string(e.what()), want);
  }
  EXPECT_LT(test::seconds_since(t0), 5.0);
}

TEST(FaultMismatch, Count) {
  expect_mismatch(256, CommMode::kTrain, "all_reduce(sum, 256 floats, train, phase 3)");
}

TEST(FaultMismatch, Mode) {
  expect_mismatch(128, CommMode::kEval, "all_reduce(sum, 128 floats, eval, phase 3)");
}

// One rank compresses its gradients (comm_hook BF16_COMPRESS_HOOK) and the others do not.
TEST(FaultMismatch, Dtype) {
  expect_mismatch(128, CommMode::kTrain, "all_reduce(sum, 128 bfloat16s, train, phase 3)", /*bf16_last=*/true);
}

// The last rank skips an all-reduce: the others fail after the timeout naming it; when it reaches
// its next collective (a barrier) it fails too, on the mismatch with what the others issued.
TEST(FaultTimeout, SkippedCollective) {
  auto comm = test::make_mpi(kTimeout);
  const int n = comm->size();
  if (n < 2) GTEST_SKIP() << "needs 2 ranks";
  comm->barrier().wait();
  const auto t0 = std::chrono::steady_clock::now();
  if (comm->rank() != n - 1) {
    std::vector<float> x(16, 1.f);
    try {
      comm->all_reduce(std::span<float>(x), ReduceOp::kSum).wait();
      FAIL() << "no error on rank " << comm->rank();
    } catch (const Error& e) {
      show(*comm, e);
      const std::string msg = e.what();
      EXPECT_NE(msg.find("collective #1 all_reduce(sum, 16 floats, no mode, phase 0) timed out "
                         "after 2000 ms on rank " + std::to_string(comm->rank()) + ": rank " +
                         std::to_string(n - 1) + " never arrived"),
                std::string::npos)
          << msg;
    }
    const double s = test::seconds_since(t0);
    EXPECT_GE(s, 1.9);
    EXPECT_LT(s, 5.0);
  } else {
    std::this_thread::sleep_for(kTimeout + milliseconds(1500));  // well past the others' deadline
    try {
      comm->barrier().wait();
      FAIL() << "no error on the rank that skipped";
    } catch (const Error& e) {
      show(*comm, e);
      EXPECT_NE(std::string(e.what()).find("collective #1 mismatch: " + ranks_below(n - 1) +
                                           " all_reduce(sum, 16 floats, no mode, phase 0) but rank " +
                                           std::to_string(n - 1) + " barrier(no mode, phase 0)"),
                std::string::npos)
          << e.what();
    }
    EXPECT_LT(test::seconds_since(t0), 7.0);
  }
}

}  // namespace
}  // namespace lockstep
