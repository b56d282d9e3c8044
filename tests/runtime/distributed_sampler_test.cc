// DistributedSampler and eval slices: shards concatenate to the global batch, equal step counts
// on every rank by formula, drop_last/pad counts, the permutation is BatchLoader's, and eval slices
// cover [0, n) exactly once for every world size.
#include <gtest/gtest.h>

#include <set>

#include "runtime/check.h"
#include "runtime/data/distributed_sampler.h"
#include "runtime/data/loader.h"

namespace lockstep {
namespace {

TEST(DistributedSampler, ShardsConcatenateToTheGlobalBatchInLoaderOrder) {
  const int64_t n = 1003, b = 12;
  Dataset ds;
  ds.height = 1;
  ds.width = 1;
  ds.pixels.assign(n, 0);
  ds.labels.assign(n, 0);
  BatchLoader loader(ds, b, /*shuffle=*/true, /*seed=*/7);
  for (int world : {1, 2, 3, 4}) {
    for (auto policy : {RemainderPolicy::kDropLast, RemainderPolicy::kPad}) {
      std::vector<DistributedSampler> ranks;
      for (int r = 0; r < world; ++r)
        ranks.emplace_back(n, DistributedSamplerOptions{.global_batch = b, .rank = r, .world = world,
                                                        .seed = 7, .remainder = policy});
      const int64_t steps = policy == RemainderPolicy::kDropLast ? n / b : (n + b - 1) / b;
      for (int64_t e : {0, 3}) {
        loader.set_epoch(e);
        std::multiset<int64_t> seen;
        for (auto& s : ranks) {
          s.set_epoch(e);
          ASSERT_EQ(s.num_steps(), steps);
        }
        for (int64_t step = 0; step < steps; ++step) {
          std::vector<int64_t> cat;
          for (auto& s : ranks) {
            auto sh = s.shard(step);
            ASSERT_EQ(static_cast<int64_t>(sh.size()), b / world);
            cat.insert(cat.end(), sh.begin(), sh.end());
          }
          ASSERT_EQ(cat, ranks[0].global_batch(step));
          for (int64_t i = 0; i < b; ++i) {
            const int64_t pos = (step * b + i) % n;  // pad wraps to the start
            ASSERT_EQ(cat[i], loader.order()[pos]) << "world " << world << " step " << step;
          }
          seen.insert(cat.begin(), cat.end());
        }
        EXPECT_EQ(static_cast<int64_t>(seen.size()), steps * b);
        EXPECT_EQ(static_cast<int64_t>(std::set<int64_t>(seen.begin(), seen.end()).size()),
                  policy == RemainderPolicy::kDropLast ? steps * b : n);
        EXPECT_EQ(ranks[0].dropped_samples() + static_cast<int64_t>(seen.size()) - ranks[0].padded_samples(), n);
      }
    }
  }
}

TEST(DistributedSampler, RejectsGlobalBatchNotMultipleOfWorld) {
  EXPECT_THROW(DistributedSampler(100, DistributedSamplerOptions{.global_batch = 10, .rank = 0, .world = 3}),
               Error);
}

TEST(EvalSlice, CoversEverySampleOnceForEveryWorld) {
  for (int64_t n : {0, 1, 2, 10, 10000}) {
    for (int world = 1; world <= 7; ++world) {
      int64_t next = 0;
      for (int r = 0; r < world; ++r) {
        EvalSlice s = eval_slice(n, r, world);
        ASSERT_EQ(s.begin, next) << n << " over " << world;
        ASSERT_GE(s.size(), n / world);
        ASSERT_LE(s.size(), n / world + 1);
        next = s.end;
      }
      ASSERT_EQ(next, n);
    }
  }
}

}  // namespace
}  // namespace lockstep
