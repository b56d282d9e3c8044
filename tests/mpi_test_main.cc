// GoogleTest main for suites run under mpirun: initialises MPI through MpiRuntime, runs the tests
// on every rank, prints the full gtest output from rank 0 and only failures (prefixed
// "[rank r]") from the others, and exits with the same code on every rank: failed if any failed.
#include <gtest/gtest.h>

#include <cstdio>

#include "comm/mpi_runtime.h"

namespace {

// Non-zero ranks: failures only, each line prefixed with the rank.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: Failure\n[rank %d] %s\n", rank_,
                 r.file_name() ? r.file_name() : "?", r.line_number(), rank_, r.summary());
  }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (info.result()->Failed())
      std::fprintf(stderr, "[rank %d] [  FAILED  ] %s.%s\n", rank_, info.test_suite_name(),
                   info.name());
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  lockstep::MpiRuntime mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int rank = lockstep::MpiRuntime::world_rank();
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(rank));
  }
  const int rc = RUN_ALL_TESTS() != 0 ? 1 : 0;
  const int any_failed = lockstep::MpiRuntime::max_over_ranks(rc);
  if (rank == 0 && any_failed && !rc) std::fprintf(stderr, "tests failed on another rank\n");
  return any_failed;
}
