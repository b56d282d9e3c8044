// TraceRecorder: spans only inside the step range, the file written once at the first step past
// it, a valid trace-event document (checked by tests/trace_check.h, written from the format's
// description), durations against an independent clock, wall-clock timestamps (Note [trace clock]),
// nesting kept exact, bounded memory (dropped spans counted), names escaped, and the collective tag.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "runtime/trace_recorder.h"
#include "tests/trace_check.h"

namespace lockstep {
namespace {

namespace fs = std::filesystem;
using testing::read_json;
using testing::spans_of;
using testing::trace_format_errors;

class TraceRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lockstep_trace_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_F(TraceRecorderTest, RecordsOnlyItsRangeAndWritesOnceAfterIt) {
  const std::string path = (dir_ / "trace" / "rank-0.json").string();
  TraceRecorder rec({.rank = 0, .first_step = 2, .last_step = 3, .path = path});
  const uint32_t step = rec.intern("step");
  for (uint64_t s = 1; s <= 5; ++s) {
    rec.begin_step(s);
    EXPECT_EQ(rec.active(), s >= 2 && s <= 3) << "step " << s;
    TraceSpan span(&rec, step, TraceCat::kStep);
    span.arg(step, static_cast<int64_t>(s));
    if (s == 3) {
      EXPECT_FALSE(fs::exists(path)) << "written before the range ended";
    }
  }
  EXPECT_TRUE(rec.written());
  EXPECT_EQ(rec.error(), "");
  const nlohmann::json doc = read_json(path);
  const auto errors = trace_format_errors(doc, 1);
  EXPECT_TRUE(errors.empty()) << errors.front();
  std::vector<int64_t> steps;
  for (const auto& s : spans_of(doc)) {
    EXPECT_EQ(s.name, "step");
    EXPECT_EQ(s.cat, "step");
    steps.push_back(s.args.value("step", int64_t{-1}));
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{2, 3})) << "steps 4 and 5 are past the range, 1 before it";
  // finish() after the file was written does not write it again.
  fs::remove(path);
  rec.finish();
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(TraceRecorderTest, NothingWrittenWhenTheRangeWasNeverReached) {
  const std::string path = (dir_ / "rank-0.json").string();
  TraceRecorder rec({.first_step = 10, .last_step = 20, .path = path});
  rec.begin_step(1);
  rec.finish();  // the job ended at step 1
  EXPECT_FALSE(fs::exists(path));
}

// snapshot() (a worker told to stop, which may be killed before it finishes) writes what was
// recorded so far, from another thread while spans are still being recorded; finish() then writes
// the whole range, and a snapshot after it changes nothing.
TEST_F(TraceRecorderTest, SnapshotWritesTheSpansSoFarFromAnotherThread) {
  const std::string path = (dir_ / "trace" / "rank-0.json").string();
  TraceRecorder rec({.rank = 0, .first_step = 1, .last_step = 1000, .path = path});
  rec.snapshot();  // the range not entered: nothing
  EXPECT_FALSE(fs::exists(path));
  const uint32_t step = rec.intern("step");
  rec.begin_step(1);
  for (int i = 0; i < 3; ++i) TraceSpan span(&rec, step, TraceCat::kStep);
  std::thread([&] { rec.snapshot(); }).join();
  ASSERT_TRUE(fs::exists(path));
  EXPECT_EQ(spans_of(read_json(path)).size(), 3u);
  std::atomic<bool> go{true};
  std::thread snapper([&] {  // snapshots racing with recording: every file whole, never torn
    while (go) rec.snapshot();
  });
  for (int i = 0; i < 2000; ++i) TraceSpan span(&rec, step, TraceCat::kStep);
  go = false;
  snapper.join();
  const auto errors = trace_format_errors(read_json(path), 1);
  EXPECT_TRUE(errors.empty()) << errors.size() << " errors, first: " << errors.front();
  rec.finish();
  EXPECT_EQ(spans_of(read_json(path)).size(), 2003u);
  fs::remove(path);
  rec.snapshot();  // after finish(): the final file stays as it was
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(rec.error(), "");
}

TEST_F(TraceRecorderTest, FinishWritesARangeCutShortByTheJobsEnd) {
  const std::string path = (dir_ / "rank-3.json").string();
  TraceRecorder rec({.rank = 3, .first_step = 1, .last_step = 100, .path = path});
  rec.begin_step(1);
  { TraceSpan s(&rec, rec.intern("optimizer.step"), TraceCat::kOptimizer); }
  rec.finish();
  const nlohmann::json doc = read_json(path);
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["traceEvents"].size(), 1u + 1u + 2u * 2u + 1u) << "process name and sort index, 2 lanes x (name, "
                                                                    "sort index), one span";
  const auto spans = spans_of(doc);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].pid, 3) << "pid is the rank";
  EXPECT_EQ(doc["otherData"]["rank"], 3);
}

TEST_F(TraceRecorderTest, DurationsAndWallClockTimestamps) {
  TraceRecorder rec({.first_step = 1, .last_step = 1});
  rec.begin_step(1);
  const uint32_t outer = rec.intern("outer"), inner = rec.intern("inner");
  const int64_t wall_before = wall_us();
  const auto t0 = std::chrono::steady_clock::now();
  {
    TraceSpan a(&rec, outer, TraceCat::kStep);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    {
      TraceSpan b(&rec, inner, TraceCat::kForward);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const double elapsed_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  const int64_t wall_after = wall_us();
  const auto spans = spans_of(nlohmann::json::parse(rec.to_json()));
  ASSERT_EQ(spans.size(), 2u);
  const auto& b = spans[0];  // the inner span ends first
  const auto& a = spans[1];
  EXPECT_EQ(b.name, "inner");
  EXPECT_EQ(b.cat, "forward");
  EXPECT_GE(b.dur, 20000);
  EXPECT_LE(a.dur, elapsed_us + 1);
  EXPECT_GE(a.dur, 30000);
  // Nested exactly: the inner span inside the outer, on the microsecond.
  EXPECT_GE(b.ts, a.ts);
  EXPECT_LE(b.end(), a.end());
  EXPECT_GE(b.ts - a.ts, 5000);
  // The time axis is the wall clock (microseconds since the Unix epoch), allowing 2 ms for the
  // steady/wall reading at the recorder's start.
  EXPECT_GE(a.ts, wall_before - 2000);
  EXPECT_LE(a.end(), wall_after + 2000);
}

TEST_F(TraceRecorderTest, MemoryIsBoundedAndDroppedSpansCounted) {
  TraceRecorder rec({.first_step = 1, .last_step = 1, .max_events = 3});
  rec.begin_step(1);
  const uint32_t n = rec.intern("x");
  for (int i = 0; i < 5; ++i) rec.record(TraceLane::kTrain, n, TraceCat::kForward, 1000 + i, 1);
  rec.record(TraceLane::kComm, n, TraceCat::kAllReduce, 2000, 1);
  EXPECT_EQ(rec.events(TraceLane::kTrain), 3u);
  EXPECT_EQ(rec.events(TraceLane::kComm), 1u) << "each lane has its own buffer";
  EXPECT_EQ(rec.dropped(), 2u);
  const nlohmann::json doc = nlohmann::json::parse(rec.to_json());
  EXPECT_EQ(spans_of(doc).size(), 4u);
  EXPECT_EQ(doc["otherData"]["dropped_events"], 2);
}

TEST_F(TraceRecorderTest, LanesAndArgsAndEscapedNames) {
  TraceRecorder rec({.first_step = 1, .last_step = 1});
  rec.begin_step(1);
  const std::string odd = "a \"quoted\" \\ name\nwith\ttabs";
  const uint32_t name = rec.intern(odd), bytes = rec.intern("bytes");
  const TraceArg args[] = {{bytes, int64_t{1} << 40}};
  rec.record(TraceLane::kComm, name, TraceCat::kAllReduce, 5, 7, args, 1);
  const nlohmann::json doc = nlohmann::json::parse(rec.to_json());
  const auto errors = trace_format_errors(doc, 1);
  EXPECT_TRUE(errors.empty()) << errors.front();
  const auto spans = spans_of(doc);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].name, odd);
  EXPECT_EQ(spans[0].args["bytes"].get<int64_t>(), int64_t{1} << 40);
  EXPECT_EQ(testing::lanes_of(doc).at({0, spans[0].tid}), "comm");
  EXPECT_EQ(spans[0].ts, 5);
  EXPECT_EQ(spans[0].dur, 7);
}

TEST_F(TraceRecorderTest, AFailedWriteIsReportedNotThrown) {
  fs::create_directories(dir_);
  const fs::path file = dir_ / "a-file";
  std::ofstream(file) << "x";
  TraceRecorder rec({.first_step = 1, .last_step = 1, .path = (file / "rank-0.json").string()});
  rec.begin_step(1);
  EXPECT_NO_THROW(rec.begin_step(2));
  EXPECT_NE(rec.error().find("a-file"), std::string::npos) << rec.error();
}

TEST_F(TraceRecorderTest, CollectiveTagIsTakenOnceAndOnlyWhileActive) {
  TraceRecorder rec({.first_step = 2, .last_step = 2});
  const uint32_t name = rec.intern("allreduce bucket 0");
  rec.begin_step(1);
  {
    TraceTagScope tag({.rec = &rec, .name = name});
    EXPECT_EQ(take_trace_tag().rec, nullptr) << "inactive recorder: no tag";
  }
  rec.begin_step(2);
  {
    TraceTagScope tag({.rec = &rec, .name = name});
    const TraceTag t = take_trace_tag();
    EXPECT_EQ(t.rec, &rec);
    EXPECT_EQ(t.name, name);
    EXPECT_EQ(take_trace_tag().rec, nullptr) << "one collective takes it";
  }
  { TraceTagScope tag({.rec = &rec, .name = name}); }
  EXPECT_EQ(take_trace_tag().rec, nullptr) << "a tag nobody took ends with its scope";
  TraceSpan off(nullptr, 0, TraceCat::kStep);  // a null recorder: nothing, no crash
}

}  // namespace
}  // namespace lockstep
