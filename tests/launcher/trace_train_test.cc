// `lockstep train --trace STEPS`: on 1 rank and on 2 under mpirun (a small synthetic data set, 2
// steps per epoch), every rank writes RUN_DIR/trace/rank-N.json and rank 0 merges them into
// RUN_DIR/trace.json, a valid trace-event file holding exactly the steps asked for and epoch 1's
// eval; the merge function refuses what is not a rank's trace, naming the file.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "launcher/trace_merge.h"
#include "runtime/check.h"
#include "runtime/trace_recorder.h"
#include "tests/launcher/run_command.h"
#include "tests/trace_check.h"

namespace fs = std::filesystem;
using namespace lockstep::testing;

namespace {

class TraceTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lockstep_trace_train_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data");
    for (auto [split, n] : {std::pair{"train", 300u}, std::pair{"t10k", 101u}}) {
      std::ofstream(dir_ / "data" / (std::string(split) + "-images-idx3-ubyte"), std::ios::binary)
          << idx_bytes({n, 28, 28}, n * 784);
      std::ofstream(dir_ / "data" / (std::string(split) + "-labels-idx1-ubyte"), std::ios::binary) << idx_bytes({n}, n);
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  // The arguments of `train` for the fmnist-cnn-ddp job on the synthetic data, run dir dir_/run.
  std::string args(const std::string& trace) const {
    return "train " + source_path("launcher/jobs/fmnist-cnn-ddp.textproto") + " --epochs 2 --data " +
           (dir_ / "data").string() + " --metrics " + (dir_ / "m.jsonl").string() + " --set run_dir=" +
           (dir_ / "run").string() + " --trace " + trace;
  }
  // Checks trace.json of `ranks` ranks: format, steps, eval.
  void check(int ranks, const std::set<int64_t>& steps_expected, int evals) {
    const nlohmann::json doc = read_json((dir_ / "run" / "trace.json").string());
    const auto errors = trace_format_errors(doc, ranks);
    ASSERT_TRUE(errors.empty()) << errors.front();
    for (int r = 0; r < ranks; ++r) {
      std::set<int64_t> steps;
      int eval = 0, optimizer = 0;
      for (const Span& s : spans_of(doc)) {
        if (s.pid != r) continue;
        if (s.cat == "step") steps.insert(s.args.value("step", int64_t{-1}));
        eval += s.cat == "eval";
        optimizer += s.cat == "optimizer";
      }
      EXPECT_EQ(steps, steps_expected) << "rank " << r;
      EXPECT_EQ(eval, evals) << "rank " << r;
      EXPECT_EQ(optimizer, static_cast<int>(steps_expected.size())) << "rank " << r;
    }
  }
  fs::path dir_;
};

TEST_F(TraceTrain, OneRank) {
  const auto r = run_command(args("2:3"), 120);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("timeline of 1 rank in " + (dir_ / "run").string() + "/trace.json"), std::string::npos)
      << r.output;
  check(1, {2, 3}, 1);  // epoch 1's eval comes after step 2
}

TEST_F(TraceTrain, TwoRanksUnderMpirun) {
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) GTEST_SKIP() << "no mpirun";
  const auto r = capture("timeout -k 5 120 mpirun --oversubscribe --allow-run-as-root --mca btl self,vader,tcp -np 2 " +
                         lockstep_binary() + " " + args("3") + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  check(2, {1, 2, 3}, 1);
}

TEST_F(TraceTrain, MergeNamesAFileThatIsNotATrace) {
  const fs::path trace = dir_ / "run" / "trace";
  lockstep::TraceRecorder rec({.rank = 0, .first_step = 1, .last_step = 1, .path = (trace / "rank-0.json").string()});
  rec.begin_step(1);
  rec.finish();
  std::ofstream(trace / "notes.txt") << "ignored: not a rank file";
  const lockstep::TraceMergeResult m = lockstep::merge_trace((dir_ / "run").string());
  EXPECT_EQ(m.ranks, std::vector<int>{0});
  EXPECT_EQ(trace_format_errors(read_json(m.path), 1), std::vector<std::string>{});

  std::ofstream(trace / "rank-1.json") << "{\"traceEvents\": [";  // cut short
  try {
    lockstep::merge_trace((dir_ / "run").string());
    FAIL() << "a truncated rank file was merged";
  } catch (const lockstep::Error& e) {
    EXPECT_EQ(std::string(e.what()),
              (trace / "rank-1.json").string() + ": line 1: the JSON ends early (cut off?) (a rank's trace file; was it cut off?)");
  }
  std::ofstream(trace / "rank-1.json") << "{\"traceEvents\": []\n,,}";
  try {
    lockstep::merge_trace((dir_ / "run").string());
    FAIL() << "a broken rank file was merged";
  } catch (const lockstep::Error& e) {
    EXPECT_EQ(std::string(e.what()).find("json.exception"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("rank-1.json: line 2, column 2: not valid JSON"), std::string::npos) << e.what();
  }
  std::ofstream(trace / "rank-1.json") << "{\"traceEvents\": [{\"ph\":\"X\",\"pid\":0,\"tid\":1}]}";
  EXPECT_THROW(lockstep::merge_trace((dir_ / "run").string()), lockstep::Error) << "rank 1's file with rank 0's events";
  EXPECT_THROW(lockstep::merge_trace((dir_ / "nothing").string()), lockstep::Error);
}

// A 2-rank traced run left trace/rank-0.json and rank-1.json; a 1-rank `train --trace` in the same
// run directory must show its own timeline, not rank 1 of the old one.
TEST_F(TraceTrain, AStaleRankFileOfALargerJobIsNotMerged) {
  const fs::path trace = dir_ / "run" / "trace";
  for (int rank : {0, 1}) {
    lockstep::TraceRecorder old({.rank = rank, .world_size = 2, .first_step = 1, .last_step = 9,
                                 .path = (trace / ("rank-" + std::to_string(rank) + ".json")).string()});
    old.begin_step(9);  // a step the new job does not trace
    old.finish();
  }
  const auto r = run_command(args("2"), 120);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("timeline of 1 rank in"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("2 ranks"), std::string::npos) << r.output;
  check(1, {1, 2}, 1);
}

TEST_F(TraceTrain, MergeNamesTheMissingRanks) {
  const fs::path trace = dir_ / "run" / "trace";
  lockstep::TraceRecorder rec({.rank = 1, .world_size = 3, .first_step = 1, .last_step = 1,
                               .path = (trace / "rank-1.json").string()});
  rec.begin_step(1);
  rec.finish();
  const lockstep::TraceMergeResult m = lockstep::merge_trace((dir_ / "run").string());
  EXPECT_EQ(m.world_size, 3);
  EXPECT_EQ(m.missing, (std::vector<int>{0, 2}));
  const auto w = lockstep::merge_warnings(m);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].rfind("the timeline lacks ranks 0, 2 of the job's 3", 0), 0u) << w[0];
  // The command prints it.
  const auto r = run_command("trace-merge " + (dir_ / "run").string(), 60);
  if (r.output.find("unknown command") == std::string::npos) {
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("warning: the timeline lacks ranks 0, 2 of the job's 3"), std::string::npos) << r.output;
  }
}

// A run directory that is missing, or a file, is named as the argument the user gave (it once
// named RUN_DIR/trace, a path the user never typed).
TEST_F(TraceTrain, MergeNamesAMissingRunDirectory) {
  const std::string missing = (dir_ / "nosuch").string();
  auto r = run_command("trace-merge " + missing, 60);
  if (r.output.find("unknown command") != std::string::npos) GTEST_SKIP() << "built without the launcher's commands";
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("RUN_DIR " + missing + ": no such directory"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("nosuch/trace"), std::string::npos) << r.output;
  std::ofstream(dir_ / "file") << "x";
  r = run_command("trace-merge " + (dir_ / "file").string(), 60);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("RUN_DIR " + (dir_ / "file").string() + ": not a directory"), std::string::npos) << r.output;
}

TEST_F(TraceTrain, AnUnwritableRunDirectorySaysSoOnce) {
  const auto r = run_command("train " + source_path("launcher/jobs/fmnist-cnn-ddp.textproto") + " --epochs 1 --data " +
                                 (dir_ / "data").string() + " --metrics " + (dir_ / "m.jsonl").string() +
                                 " --set run_dir=/proc/nonexist --trace 3",
                             120);
  EXPECT_EQ(r.status, 0) << r.output;  // the training itself is done
  EXPECT_EQ(r.output.find("was the job run with --trace"), std::string::npos) << r.output;
  const size_t at = r.output.find("no timeline: 1 of 1 rank could not write its trace file (rank 0: trace: ");
  ASSERT_NE(at, std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("trace", r.output.find('\n', at)), std::string::npos) << "said once: " << r.output;
  EXPECT_EQ(r.output.find(".tmp-"), std::string::npos) << r.output;
}

}  // namespace
