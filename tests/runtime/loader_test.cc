// BatchLoader: batch counts and sizes by formula, every sample once per epoch, reproducible
// per-(seed, epoch) orders re-derived from Philox (loader.cc Note [shuffle draws]), and a
// uniformity check over all permutations of a small data set.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "runtime/check.h"
#include "runtime/data/loader.h"
#include "runtime/philox.h"

namespace lockstep {
namespace {

constexpr int64_t kH = 2, kW = 3;

// Sample i (i < 250) has pixel bytes i + p (p the pixel index), label i % 10, and the byte table
// maps b to b / 2, so a batch row tells which sample it holds.
Dataset synthetic(int64_t n) {
  Dataset ds;
  ds.height = kH;
  ds.width = kW;
  for (int b = 0; b < 256; ++b) ds.table[b] = float(b) / 2.f;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < kH * kW; ++p) ds.pixels.push_back(static_cast<uint8_t>(i + p));
  for (int64_t i = 0; i < n; ++i) ds.labels.push_back(static_cast<int32_t>(i % kNumClasses));
  return ds;
}

// Sample indices of one epoch in batch order, checking each batch's shape, pixels and labels.
std::vector<int64_t> epoch_samples(const BatchLoader& loader, const Dataset& ds) {
  std::vector<int64_t> seen;
  Tensor x, y;
  for (int64_t b = 0; b < loader.num_batches(); ++b) {
    loader.batch(b, x, y);
    const int64_t rows = x.dim(0);
    EXPECT_EQ(x.shape(), (Shape{rows, 1, kH, kW}));
    EXPECT_EQ(y.shape(), Shape{rows});
    for (int64_t r = 0; r < rows; ++r) {
      const auto s = static_cast<int64_t>(x[r * kH * kW] * 2.f);
      for (int64_t p = 0; p < kH * kW; ++p) EXPECT_EQ(x[r * kH * kW + p], float(s + p) / 2.f);
      EXPECT_EQ(y[r], float(ds.labels[s]));
      seen.push_back(s);
    }
  }
  return seen;
}

TEST(BatchLoader, BatchCountsAndSizesFollowFormula) {
  for (int64_t n : {0, 1, 7, 10, 64, 65}) {
    Dataset ds = synthetic(n);
    for (int64_t bs : {1, 3, 10, 16}) {
      for (bool drop_last : {false, true}) {
        BatchLoader loader(ds, bs, /*shuffle=*/true, /*seed=*/5, drop_last);
        const int64_t full = n / bs, partial = n % bs != 0;
        EXPECT_EQ(loader.num_batches(), drop_last ? full : full + partial) << n << "/" << bs;
        std::vector<int64_t> seen = epoch_samples(loader, ds);
        // Kept: all n samples. Dropped: the first bs * floor(n / bs) positions of the order.
        const int64_t want = drop_last ? bs * full : n;
        ASSERT_EQ(int64_t(seen.size()), want) << n << "/" << bs << " drop_last=" << drop_last;
        EXPECT_TRUE(std::equal(seen.begin(), seen.end(), loader.order().begin()));
      }
    }
  }
}

TEST(BatchLoader, EachSampleOncePerEpoch) {
  const int64_t n = 103;
  Dataset ds = synthetic(n);
  BatchLoader loader(ds, 8, /*shuffle=*/true, /*seed=*/17);
  for (int64_t epoch = 0; epoch < 4; ++epoch) {
    loader.set_epoch(epoch);
    std::vector<int64_t> seen = epoch_samples(loader, ds);
    std::sort(seen.begin(), seen.end());
    std::vector<int64_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    EXPECT_EQ(seen, all) << "epoch " << epoch;
  }
}

TEST(BatchLoader, WithoutShuffleOrderIsIdentity) {
  BatchLoader loader(synthetic(9), 4, /*shuffle=*/false, /*seed=*/1);
  loader.set_epoch(3);
  std::vector<int64_t> all(9);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(loader.order(), all);
}

TEST(BatchLoader, SameSeedAndEpochReproduceOthersDiffer) {
  Dataset ds = synthetic(100);
  BatchLoader a(ds, 10, true, 42), b(ds, 10, true, 42), other_seed(ds, 10, true, 43);
  a.set_epoch(3);
  b.set_epoch(5);
  b.set_epoch(3);  // an order depends on the epoch only, not on the epochs visited before
  EXPECT_EQ(a.order(), b.order());
  other_seed.set_epoch(3);
  EXPECT_NE(a.order(), other_seed.order());  // equal with probability 1 / 100!
  const std::vector<int64_t> epoch3 = a.order();
  a.set_epoch(4);
  EXPECT_NE(a.order(), epoch3);
}

// The order re-derived from Philox4x32-10 directly, following loader.cc Note [shuffle draws] and
// the key and counter layout in philox.h.
TEST(BatchLoader, OrderIsFisherYatesOverPhiloxWords) {
  const uint64_t seed = 0x123456789abcULL;
  const int64_t n = 50, epoch = 7;
  BatchLoader loader(synthetic(n), 10, true, seed);
  loader.set_epoch(epoch);
  const PhiloxKey key{static_cast<uint32_t>(seed) ^ static_cast<uint32_t>(seed >> 32),
                      static_cast<uint32_t>(RngStream::kShuffle)};
  std::vector<int64_t> want(n);
  std::iota(want.begin(), want.end(), 0);
  for (int64_t i = n - 1, k = 0; i > 0; --i, ++k) {
    const uint32_t word = philox4x32_10({uint32_t(k / 4), 0, uint32_t(epoch), 0}, key)[k % 4];
    std::swap(want[i], want[(uint64_t(word) * uint64_t(i + 1)) >> 32]);
  }
  EXPECT_EQ(loader.order(), want);
}

// Over E epochs each of the 4! orders of 4 samples should appear E / 24 times; a count is
// binomial, so each must lie within 5 sigma = 5 sqrt(E p (1 - p)) of E p with p = 1 / 24.
TEST(BatchLoader, ShuffleIsUniformOverPermutations) {
  const int64_t epochs = 4800;
  BatchLoader loader(synthetic(4), 4, true, 99);
  std::map<std::vector<int64_t>, int64_t> count;
  for (int64_t e = 0; e < epochs; ++e) {
    loader.set_epoch(e);
    ++count[loader.order()];
  }
  const double p = 1.0 / 24, mean = epochs * p, sigma = std::sqrt(epochs * p * (1 - p));
  EXPECT_EQ(count.size(), 24u);
  for (const auto& [order, c] : count) EXPECT_NEAR(double(c), mean, 5 * sigma);
}

TEST(BatchLoader, RejectsNonPositiveBatchSize) {
  EXPECT_THROW(BatchLoader(synthetic(4), 0, false, 0), Error);
}

}  // namespace
}  // namespace lockstep
