// The communication thread records a tagged collective (Note [collective tag]) on the comm lane,
// for as long as the collective runs there, and nothing for an untagged one.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "comm/collective_queue.h"
#include "tests/trace_check.h"

namespace lockstep {
namespace {

TEST(CommThreadTrace, TaggedCollectiveIsASpanOnTheCommLane) {
  TraceRecorder rec({.first_step = 1, .last_step = 1});
  rec.begin_step(1);
  CommOptions opts;
  opts.check_fingerprints = false;
  CollectiveQueue queue(opts, [](const Fingerprint&, std::chrono::milliseconds) {});
  const uint32_t name = rec.intern("allreduce bucket 1"), bytes = rec.intern("bytes");
  const auto sleep = [] { std::this_thread::sleep_for(std::chrono::milliseconds(15)); };
  {
    TraceTagScope tag({.rec = &rec, .name = name, .cat = TraceCat::kAllReduce, .args = {{{bytes, 4096}}}, .nargs = 1});
    queue.submit(Fingerprint{}, sleep).wait();
  }
  queue.submit(Fingerprint{}, sleep).wait();  // untagged: not recorded
  EXPECT_EQ(rec.events(TraceLane::kComm), 1u);
  EXPECT_EQ(rec.events(TraceLane::kTrain), 0u);
  const nlohmann::json doc = nlohmann::json::parse(rec.to_json());
  const auto spans = testing::spans_of(doc);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].name, "allreduce bucket 1");
  EXPECT_EQ(spans[0].cat, "allreduce");
  EXPECT_EQ(spans[0].args["bytes"], 4096);
  EXPECT_GE(spans[0].dur, 15000);
  EXPECT_EQ(testing::lanes_of(doc).at({0, spans[0].tid}), "comm");
}

}  // namespace
}  // namespace lockstep
