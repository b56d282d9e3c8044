// `lockstep train` under mpirun on 2 ranks, on a small synthetic IDX data set so it takes seconds:
// the run ends cleanly, only rank 0 prints and writes metrics (one line per epoch), the sampler
// policy is logged; an error on the ranks ends every process with the message, well within 10 s.
// Also the distributed job fields are checked like every other field.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <vector>

#include "launcher/job_file.h"
#include "runtime/check.h"
#include "tests/launcher/run_command.h"

namespace fs = std::filesystem;
using lockstep::testing::lockstep_binary;
using lockstep::testing::idx_bytes;
using lockstep::testing::source_path;

namespace {

bool have_mpirun() { return std::system("command -v mpirun >/dev/null 2>&1") == 0; }

// mpirun -np 2 lockstep ARGS, stdout and stderr together.
lockstep::testing::CommandResult mpirun2(const std::string& args, int timeout_s) {
  const std::string cmd = "timeout -k 5 " + std::to_string(timeout_s) +
                          " mpirun --oversubscribe --allow-run-as-root --mca btl self,vader,tcp -np 2 " +
                          lockstep_binary() + " " + args + " 2>&1";
  return lockstep::testing::capture(cmd);
}

class DistributedJob : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lockstep_ddp_job_" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "data");
    // 300 training images (2 global batches of 128 + 44 dropped), 101 test images (odd, so the
    // eval slices are uneven).
    for (auto [split, n] : {std::pair{"train", 300u}, std::pair{"t10k", 101u}}) {
      std::ofstream(dir_ / "data" / (std::string(split) + "-images-idx3-ubyte"), std::ios::binary)
          << idx_bytes({n, 28, 28}, n * 784);
      std::ofstream(dir_ / "data" / (std::string(split) + "-labels-idx1-ubyte"), std::ios::binary)
          << idx_bytes({n}, n);
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(DistributedJob, TwoRanksTrainAndOnlyRankZeroReports) {
  if (!have_mpirun()) GTEST_SKIP() << "no mpirun";
  const fs::path metrics = dir_ / "m.jsonl";
  auto r = mpirun2("train " + source_path("launcher/jobs/fmnist-cnn-ddp.textproto") + " --epochs 2 --data " +
                       (dir_ / "data").string() + " --metrics " + metrics.string(),
                   300);
  ASSERT_EQ(r.status, 0) << r.output;
  auto count = [&](const std::string& what) {
    size_t n = 0;
    for (size_t at = r.output.find(what); at != std::string::npos; at = r.output.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("job fmnist-cnn-ddp"), 1u) << r.output;
  EXPECT_EQ(count("2 ranks (mpi)"), 1u) << r.output;
  EXPECT_EQ(count("sampler: global batch 128 = 2 x 64, drop_last: 2 steps per epoch, 44 samples dropped"), 1u)
      << r.output;
  std::ifstream in(metrics);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) ++lines;
  EXPECT_EQ(lines, 2) << "one metrics line per epoch, from rank 0 only";
}

TEST_F(DistributedJob, AnErrorEndsEveryRankWithItsMessage) {
  if (!have_mpirun()) GTEST_SKIP() << "no mpirun";
  const auto t0 = std::chrono::steady_clock::now();
  auto r = mpirun2("train " + source_path("launcher/jobs/fmnist-cnn-ddp.textproto") + " --data " +
                       (dir_ / "missing").string(),
                   60);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.status, 124) << "timed out instead of aborting";
  EXPECT_LT(secs, 10.0);
  for (int rank : {0, 1})
    EXPECT_NE(r.output.find("lockstep: error on rank " + std::to_string(rank) + " of 2: " +
                            source_path("launcher/jobs/fmnist-cnn-ddp.textproto") + ": data.dir: " +
                            (dir_ / "missing").string() + " does not exist"),
              std::string::npos)
        << r.output;
}

TEST(DistributedJobFields, BadValuesNameTheField) {
  lockstep::proto::JobSpec job = lockstep::load_job(source_path("launcher/jobs/fmnist-cnn-ddp.textproto"));
  EXPECT_TRUE(job.distributed().sync_batchnorm());
  EXPECT_EQ(job.batch_size(), 128);
  job.mutable_distributed()->set_backend("tcp");
  try {
    lockstep::validate_job(job, "j");
    FAIL() << "accepted backend tcp";
  } catch (const lockstep::Error& e) {
    EXPECT_NE(std::string(e.what()).find("j: distributed.backend: unknown backend \"tcp\""), std::string::npos)
        << e.what();
  }
  job.mutable_distributed()->set_backend("mpi");
  job.mutable_distributed()->set_bucket_mb(0);
  EXPECT_THROW(lockstep::validate_job(job, "j"), lockstep::Error);
}

}  // namespace
