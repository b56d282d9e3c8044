// BatchPrefetcher (runtime/data/prefetcher.h): the batches it hands out are the ones gathered on
// the calling thread, for every queue depth and from a mid-epoch start; it can be dropped at any
// point without a hang (the destructor joins); a gathering error reaches the caller at the step
// whose batch failed; steps must be asked for in order. A hang fails through the CTest timeout.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "runtime/check.h"
#include "runtime/data/prefetcher.h"

namespace lockstep {
namespace {

Dataset synthetic(int64_t n) {
  Dataset ds;
  ds.height = 6;
  ds.width = 5;
  for (int b = 0; b < 256; ++b) ds.table[b] = float(b) * 0.5f;
  for (int64_t i = 0; i < n * 30; ++i) ds.pixels.push_back(static_cast<uint8_t>((i * 13) % 256));
  for (int64_t i = 0; i < n; ++i) ds.labels.push_back(static_cast<int32_t>(i % kNumClasses));
  return ds;
}

bool same(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::equal(a.data(), a.data() + a.numel(), b.data());
}

TEST(BatchPrefetcher, HandsOutTheBatchesGatheredOnTheCallingThread) {
  const Dataset ds = synthetic(70);
  DistributedSampler sampler(ds.size(), {.global_batch = 8, .rank = 1, .world = 2, .seed = 3,
                                         .remainder = RemainderPolicy::kPad});
  sampler.set_epoch(4);
  for (bool augment : {false, true}) {
    const AugmentOptions aug{.crop_padding = augment ? 2 : 0, .horizontal_flip = augment, .seed = 3};
    for (int64_t depth : {0, 1, 2, 5}) {
      for (int64_t first : {int64_t{0}, int64_t{4}, sampler.num_steps() - 1}) {
        BatchPrefetcher p(ds, sampler, first, {.augment = aug, .prefetch_batches = depth});
        Tensor x, y;
        for (int64_t step = first; step < sampler.num_steps(); ++step) {
          p.next(step, x, y);
          Tensor wx, wy;
          gather_augmented(ds, sampler.shard(step), aug, 4, wx, wy);
          ASSERT_TRUE(same(x, wx)) << "augment " << augment << " depth " << depth << " step " << step;
          ASSERT_TRUE(same(y, wy));
        }
      }
    }
  }
}

TEST(BatchPrefetcher, DroppedEarlyJoinsItsThread) {
  const Dataset ds = synthetic(500);
  DistributedSampler sampler(ds.size(), {.global_batch = 4});
  for (int64_t depth : {1, 3}) {
    { BatchPrefetcher never_asked(ds, sampler, 0, {.prefetch_batches = depth}); }
    {
      BatchPrefetcher p(ds, sampler, 0, {.prefetch_batches = depth});
      Tensor x, y;
      p.next(0, x, y);
      p.next(1, x, y);
    }  // 123 steps left unasked: the thread waits on a full queue and must be woken to stop
    { BatchPrefetcher at_end(ds, sampler, sampler.num_steps(), {.prefetch_batches = depth}); }
  }
  SUCCEED() << "every destructor returned";
}

TEST(BatchPrefetcher, AGatheringErrorReachesTheCallerAtItsStep) {
  // The sampler believes in 40 samples, the data set has 30: unshuffled, step 7 (samples 28..31)
  // is the first to name a sample that is not there.
  const Dataset ds = synthetic(30);
  DistributedSampler sampler(40, {.global_batch = 4, .shuffle = false});
  for (int64_t depth : {0, 2}) {
    BatchPrefetcher p(ds, sampler, 0, {.prefetch_batches = depth});
    Tensor x, y;
    for (int64_t step = 0; step < 7; ++step) ASSERT_NO_THROW(p.next(step, x, y)) << "step " << step;
    try {
      p.next(7, x, y);
      FAIL() << "step 7 names sample 30 of 30";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("sample 30 of 30"), std::string::npos) << e.what();
    }
  }
}

TEST(BatchPrefetcher, StepsComeInOrder) {
  const Dataset ds = synthetic(40);
  DistributedSampler sampler(ds.size(), {.global_batch = 4});
  BatchPrefetcher p(ds, sampler, 2, {.prefetch_batches = 2});
  Tensor x, y;
  EXPECT_THROW(p.next(3, x, y), Error);
}

TEST(BatchPrefetcher, DescribeNamesAugmentationAndDepth) {
  EXPECT_EQ(describe({.augment = {.crop_padding = 2, .horizontal_flip = true}, .prefetch_batches = 2}),
            "random crop (padding 2), horizontal flip; prefetch 2 batches");
  EXPECT_EQ(describe({.augment = {.horizontal_flip = true}, .prefetch_batches = 0}),
            "horizontal flip; no prefetch (batches gathered on the training thread)");
  EXPECT_EQ(describe({}), "no augmentation; prefetch 2 batches");
}

}  // namespace
}  // namespace lockstep
