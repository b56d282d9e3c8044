// The timeline of a launched job (README "Timeline (trace.json)"): fmnist-cnn on 2 ranks over a
// small synthetic data set (4 steps per epoch, 2 epochs) with --trace 2:6. RUN_DIR/trace.json must
// be a valid trace-event file (tests/trace_check.h) with one process per rank, hold exactly steps
// 2..6, every layer's forward and backward, each bucket's all-reduce with its bytes (their sum per
// step is 4 bytes per parameter), the optimizer step, the step agreement, and epoch 1's eval and
// checkpoint phases; and on each rank some all-reduce must overlap a layer's backward. Bad --trace
// values are refused before anything starts.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <utility>

#include "tests/launch/launch_util.h"
#include "tests/test_util.h"
#include "tests/trace_check.h"

namespace fs = std::filesystem;
using namespace lockstep::testing;

namespace {

using Timeline = LaunchTest;

// fmnist-cnn (layers/reference_models.cc, PyTorch's nn.Sequential indices "0".."14") on
// `train_n` synthetic images, 128 per global batch.
std::string write_cnn_job(const fs::path& dir, uint32_t train_n, uint32_t test_n) {
  fs::create_directories(dir / "data");
  for (auto [split, n] : {std::pair{"train", train_n}, std::pair{"t10k", test_n}}) {
    std::ofstream(dir / "data" / (std::string(split) + "-images-idx3-ubyte"), std::ios::binary)
        << idx_bytes({n, 28, 28}, size_t{n} * 784);
    std::ofstream(dir / "data" / (std::string(split) + "-labels-idx1-ubyte"), std::ios::binary) << idx_bytes({n}, n);
  }
  const fs::path job = dir / "cnn.textproto";
  std::ofstream(job) << "name: \"trace-cnn\"\nmodel { reference: \"fmnist-cnn\" }\n"
                     << "data { dir: \"" << (dir / "data").string() << "\" }\n"
                     << "optimizer { lr: 0.05 sgd { momentum: 0.9 } }\nseed: 3\nepochs: 2\nbatch_size: 128\n"
                     << "distributed { collective_timeout_s: 30 chunk_mb: 0.5 }\n";
  return job.string();
}

// Parameters of fmnist-cnn, by layer: conv 1->32 (3x3), BN 32, conv 32->64 (3x3), BN 64,
// linear 3136->128, BN 128, linear 128->10.
constexpr int64_t kCnnParams = (32 * 9 + 32) + 2 * 32 + (64 * 32 * 9 + 64) + 2 * 64 + (3136 * 128 + 128) + 2 * 128 +
                               (128 * 10 + 10);

TEST_F(Timeline, TwoRanksMergedIntoOneTraceWithOverlap) {
  const std::string job = write_cnn_job(dir_, 512, 200);
  const std::string run_dir = path("run");
  ASSERT_EQ(run(job, run_dir, {"--trace", "2:6"}, 180), 0) << output_;
  EXPECT_NE(output_.find("timeline of 2 ranks in "), std::string::npos) << output_;

  const nlohmann::json doc = read_json(run_dir + "/trace.json");
  const auto errors = trace_format_errors(doc, 2);
  ASSERT_TRUE(errors.empty()) << errors.size() << " format errors, first: " << errors.front();
  // The merged file is the ranks' files together, nothing lost.
  size_t per_rank = 0;
  for (int r = 0; r < 2; ++r) {
    const nlohmann::json f = read_json(run_dir + "/trace/rank-" + std::to_string(r) + ".json");
    ASSERT_TRUE(f.is_object()) << "rank " << r << "'s file";
    per_rank += f["traceEvents"].size();
  }
  EXPECT_EQ(doc["traceEvents"].size(), per_rank);
  EXPECT_EQ(doc["otherData"]["dropped_events"], 0);

  const auto lanes = lanes_of(doc);
  const auto spans = spans_of(doc);
  std::set<int> pids;
  for (const Span& s : spans) pids.insert(s.pid);
  EXPECT_EQ(pids, (std::set<int>{0, 1}));
  for (int r = 0; r < 2; ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    std::vector<Span> train, comm;
    for (const Span& s : spans)
      if (s.pid == r) (lanes.at({s.pid, s.tid}) == "comm" ? comm : train).push_back(s);
    auto count = [](const std::vector<Span>& v, const std::string& cat) {
      return std::count_if(v.begin(), v.end(), [&](const Span& s) { return s.cat == cat; });
    };
    std::set<int64_t> steps;
    for (const Span& s : train)
      if (s.cat == "step") steps.insert(s.args.value("step", int64_t{-1}));
    EXPECT_EQ(steps, (std::set<int64_t>{2, 3, 4, 5, 6}));
    for (int layer = 0; layer <= 14; ++layer)
      for (const char* cat : {"forward", "backward"}) {
        const std::string name = std::to_string(layer);
        const auto n = std::count_if(train.begin(), train.end(), [&](const Span& s) { return s.cat == cat && s.name == name; });
        // The ReLUs 2, 6 and 12 run inside the BatchNorm before them (BatchNorm::forward_relu): no
        // span of their own. Every other layer: 5 steps' worth in training (eval's no-grad forwards
        // come on top).
        if (layer == 2 || layer == 6 || layer == 12)
          EXPECT_EQ(n, 0) << cat << " of layer " << name << ", fused into layer " << layer - 1;
        else
          EXPECT_GE(n, 5) << cat << " of layer " << name;
      }
    EXPECT_EQ(count(train, "optimizer"), 5);
    EXPECT_GE(count(train, "agreement"), 5);
    EXPECT_GE(count(comm, "agreement"), 5) << "the agreement's all-reduce on the comm lane";
    EXPECT_EQ(count(train, "eval"), 1) << "epoch 1 ends after step 4";
    EXPECT_EQ(count(train, "checkpoint"), 1);
    // Buckets, in chunks (Note [chunks], comm/reducer.h): each step all-reduces every gradient
    // once, 4 bytes each.
    std::map<std::pair<int64_t, int64_t>, int64_t> chunk_bytes;
    int64_t chunk_spans = 0, params = 0;
    for (const Span& s : comm) {
      if (s.cat != "allreduce") continue;
      ++chunk_spans;
      ASSERT_TRUE(s.args.contains("bucket") && s.args.contains("chunk") && s.args.contains("bytes") &&
                  s.args.contains("params"))
          << s.name;
      chunk_bytes[{s.args["bucket"].get<int64_t>(), s.args["chunk"].get<int64_t>()}] = s.args["bytes"].get<int64_t>();
      EXPECT_EQ(s.name, "allreduce bucket " + std::to_string(s.args["bucket"].get<int64_t>()));
    }
    int64_t total = 0;
    for (auto& [b, bytes] : chunk_bytes) total += bytes;
    EXPECT_EQ(total, 4 * kCnnParams);
    EXPECT_GT(chunk_bytes.size(), 2u) << "the 1.6 MB bucket goes out in 512 KiB chunks (chunk_mb: 0.5)";
    EXPECT_EQ(chunk_spans, 5 * static_cast<int64_t>(chunk_bytes.size()));
    for (const Span& s : comm)
      if (s.cat == "allreduce") params += s.args["params"].get<int64_t>();
    EXPECT_EQ(params, 5 * 14) << "14 parameter tensors per step";
    // Communication overlaps backward: an all-reduce runs while a layer's backward runs.
    bool overlap = false;
    for (const Span& a : comm)
      for (const Span& b : train)
        if (a.cat == "allreduce" && b.cat == "backward" && a.ts < b.end() && b.ts < a.end()) overlap = true;
    EXPECT_TRUE(overlap) << "no all-reduce overlaps a backward span";
  }
}

TEST_F(Timeline, BadTraceValuesAreOneLineBeforeAnythingStarts) {
  const std::string job = write_cnn_job(dir_, 256, 10);
  for (auto [value, expect] : {std::pair{"5:2", "--trace: 5:2: the range ends (2) before it starts (5)"},
                               std::pair{"x", "--trace: expected N (optimizer steps 1..N) or A:B"},
                               std::pair{"0", "--trace: expected N"},
                               std::pair{"1:200000", "holds 200000 steps; at most 100000"}}) {
    const int st = run(job, path("bad"), {"--trace", value}, 60);
    EXPECT_EQ(st, 2) << value << ": " << output_;
    EXPECT_NE(output_.find(expect), std::string::npos) << value << ": " << output_;
    EXPECT_FALSE(fs::exists(path("bad"))) << value;
  }
}

// A rank killed inside the traced range: the surviving rank writes its file on the way out (its
// error, or the stop mpirun sends it), and the launcher merges what exists and names the missing rank.
TEST_F(Timeline, AFailedJobStillMergesTheSurvivorsAndNamesTheMissingRank) {
  const std::string job = write_cnn_job(dir_, 128 * 200, 10);  // 200 steps per epoch: far from done
  const std::string run_dir = path("run");
  auto p = start(job, run_dir, {"--trace", "1:1000", "--max-restarts", "0"});
  ASSERT_TRUE(wait_until([&] { return step_losses(run_dir + "/metrics.jsonl").size() >= 3; }, 120)) << p->output();
  pid_t victim = 0;
  for (pid_t pid : worker_pids(process_tree(p->pid())))
    if (rank_of(pid) == 1) victim = pid;
  ASSERT_GT(victim, 0) << p->output();
  ::kill(victim, SIGKILL);
  EXPECT_NE(p->wait(120), 0) << p->output();
  const std::string out = p->output();
  EXPECT_TRUE(fs::exists(run_dir + "/trace/rank-0.json")) << out;
  EXPECT_FALSE(fs::exists(run_dir + "/trace/rank-1.json")) << out;
  ASSERT_TRUE(fs::exists(run_dir + "/trace.json")) << out;
  EXPECT_NE(out.find("timeline of 1 rank in "), std::string::npos) << out;
  EXPECT_NE(out.find("the timeline lacks rank 1 of the job's 2"), std::string::npos) << out;
  const auto errors = trace_format_errors(read_json(run_dir + "/trace.json"), 1);
  EXPECT_TRUE(errors.empty()) << errors.size() << " format errors, first: " << errors.front();
}

// A range the run never reaches is said at the start and at the end; a resume that traces again
// keeps the earlier trace.json as trace.1.json.
TEST_F(Timeline, ARangeOutsideTheRunIsSaidAndAResumeKeepsTheEarlierTimeline) {
  const std::string job = write_cnn_job(dir_, 512, 10);  // 4 steps per epoch, 8 in all
  ASSERT_EQ(run(job, path("far"), {"--trace", "100:120"}, 180), 0) << output_;
  EXPECT_NE(output_.find("trace range 100:120 lies outside this run's steps 1..8; no timeline will be written"),
            std::string::npos) << output_;
  EXPECT_NE(output_.find("no timeline: no rank wrote"), std::string::npos) << output_;
  EXPECT_FALSE(fs::exists(path("far/trace.json")));

  const std::string run_dir = path("run");
  ::setenv("LOCKSTEP_TEST_TERMINATE_AT", "5", 1);  // a stop after step 5, mid-epoch 2
  const int st = run(job, run_dir, {"--trace", "2:3"}, 180);
  ::unsetenv("LOCKSTEP_TEST_TERMINATE_AT");
  ASSERT_EQ(st, 3) << output_;
  ASSERT_TRUE(fs::exists(run_dir + "/trace.json")) << output_;
  const std::string first = read_text(run_dir + "/trace.json");
  ASSERT_EQ(run(job, run_dir, {"--resume", "--trace", "2:7"}, 180), 0) << output_;
  EXPECT_NE(output_.find("trace range 2:7 reaches past this run's steps 6..8; only those are traced"),
            std::string::npos) << output_;
  EXPECT_NE(output_.find("timeline is now " + run_dir + "/trace.1.json"), std::string::npos) << output_;
  EXPECT_EQ(read_text(run_dir + "/trace.1.json"), first);
  EXPECT_TRUE(fs::exists(run_dir + "/trace.json")) << output_;
}

}  // namespace

