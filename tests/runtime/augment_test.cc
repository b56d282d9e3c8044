// Augmentation (runtime/data/augment.h): the draws re-derived from Philox as Note [augment draws]
// states them, each augmented image rebuilt numpy-style (pad with black, slice the window, reverse
// the columns, normalise) and compared bit for bit, and the same sample augmented alike whatever
// the world size and rank that gathers it.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "runtime/data/augment.h"
#include "runtime/data/distributed_sampler.h"
#include "runtime/data/prefetcher.h"
#include "runtime/philox.h"

namespace lockstep {
namespace {

// n samples of h x w bytes: sample i, pixel q has byte (7 i + 3 q + 1) % 251 + 1 (never 0, so a
// padded pixel is told apart); the table maps byte b to b / 4 - 1.
Dataset synthetic(int64_t n, int64_t h, int64_t w) {
  Dataset ds;
  ds.height = h;
  ds.width = w;
  for (int b = 0; b < 256; ++b) ds.table[b] = float(b) / 4.f - 1.f;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t q = 0; q < h * w; ++q) ds.pixels.push_back(static_cast<uint8_t>((7 * i + 3 * q + 1) % 251 + 1));
  for (int64_t i = 0; i < n; ++i) ds.labels.push_back(static_cast<int32_t>(i % kNumClasses));
  return ds;
}

// The expected image built as torchvision does: a (H + 2p, W + 2p) zero byte canvas with the image
// at (p, p), the window [top, top + H) x [left, left + W), columns reversed when flipped, then the
// normalisation table.
std::vector<float> reference(const Dataset& ds, int64_t s, int64_t p, const AugmentDraw& d) {
  const int64_t h = ds.height, w = ds.width, ph = h + 2 * p, pw = w + 2 * p;
  std::vector<uint8_t> canvas(static_cast<size_t>(ph * pw), 0);
  for (int64_t i = 0; i < h; ++i)
    for (int64_t j = 0; j < w; ++j)
      canvas[static_cast<size_t>((i + p) * pw + j + p)] = ds.pixels[static_cast<size_t>(s * h * w + i * w + j)];
  std::vector<float> out(static_cast<size_t>(h * w));
  for (int64_t i = 0; i < h; ++i) {
    std::vector<uint8_t> row(canvas.begin() + (d.top + i) * pw + d.left, canvas.begin() + (d.top + i) * pw + d.left + w);
    if (d.flip) std::reverse(row.begin(), row.end());
    for (int64_t j = 0; j < w; ++j) out[static_cast<size_t>(i * w + j)] = ds.table[row[static_cast<size_t>(j)]];
  }
  return out;
}

TEST(Augment, DrawsAreThePhiloxWordsOfSeedEpochAndSample) {
  for (int64_t p : {0, 1, 4}) {
    const AugmentOptions o{.crop_padding = p, .horizontal_flip = true, .seed = 77};
    for (int64_t epoch : {0, 3}) {
      RngState st{.seed = 77, .rank = 0, .stream = RngStream::kAugment, .step = static_cast<uint64_t>(epoch)};
      const Philox rng(st);
      for (int64_t s : {0, 1, 59999, 123456}) {
        const auto w = rng.draw(0, static_cast<uint64_t>(s));
        const AugmentDraw d = augment_draw(o, epoch, s);
        const auto n = static_cast<uint64_t>(2 * p + 1);
        EXPECT_EQ(d.top, static_cast<int64_t>((uint64_t{w[0]} * n) >> 32)) << p << " " << epoch << " " << s;
        EXPECT_EQ(d.left, static_cast<int64_t>((uint64_t{w[1]} * n) >> 32));
        EXPECT_EQ(d.flip, float(w[2] >> 8) / 16777216.f < 0.5f);
        EXPECT_FALSE(augment_draw({.crop_padding = p, .seed = 77}, epoch, s).flip) << "flip off";
      }
    }
  }
}

TEST(Augment, OffsetsAreUniformOnZeroToTwoPAndHalfTheImagesFlip) {
  const int64_t p = 2, n = 20000;
  const AugmentOptions o{.crop_padding = p, .horizontal_flip = true, .seed = 1};
  std::map<int64_t, int64_t> tops, lefts;
  int64_t flips = 0;
  for (int64_t s = 0; s < n; ++s) {
    const AugmentDraw d = augment_draw(o, 0, s);
    ++tops[d.top];
    ++lefts[d.left];
    flips += d.flip;
  }
  ASSERT_EQ(tops.size(), 5u);
  ASSERT_EQ(lefts.size(), 5u);
  // Each offset has probability 1/5: count ~ n/5 with sd sqrt(n * 0.16) ~ 57; 5 sd bounds.
  for (int64_t k = 0; k <= 2 * p; ++k) {
    EXPECT_NEAR(tops[k], n / 5, 5 * 57) << "top " << k;
    EXPECT_NEAR(lefts[k], n / 5, 5 * 57) << "left " << k;
  }
  EXPECT_NEAR(flips, n / 2, 5 * 71);  // sd sqrt(n / 4) ~ 71
}

TEST(Augment, ImageIsThePaddedWindowFlippedAsNumpyIndexingBuildsIt) {
  const Dataset ds = synthetic(50, 5, 7);
  for (int64_t p : {1, 2, 4, 9}) {  // 9: windows wholly inside the padding occur too
    std::vector<float> out(35);
    for (int64_t s = 0; s < ds.size(); ++s) {
      for (int64_t top = 0; top <= 2 * p; top += std::max<int64_t>(1, p / 2)) {
        for (bool flip : {false, true}) {
          const AugmentDraw d{.top = top, .left = (s * 3) % (2 * p + 1), .flip = flip};
          augment_sample(ds, s, p, d, out.data());
          ASSERT_EQ(out, reference(ds, s, p, d)) << "p " << p << " sample " << s << " top " << top << " flip " << flip;
        }
      }
    }
  }
}

TEST(Augment, SmallCaseByHand) {
  // One 2 x 3 image [[1 2 3] [4 5 6]], padding 1, window at (top 0, left 2), flipped. The padded
  // canvas is [[0 0 0 0 0] [0 1 2 3 0] [0 4 5 6 0] [0 0 0 0 0]]; its window rows 0-1, columns 2-4 are
  // [[0 0 0] [2 3 0]], reversed [[0 0 0] [0 3 2]].
  Dataset ds;
  ds.height = 2;
  ds.width = 3;
  for (int b = 0; b < 256; ++b) ds.table[b] = float(b) * 10.f;
  ds.pixels = {1, 2, 3, 4, 5, 6};
  ds.labels = {0};
  std::vector<float> out(6);
  augment_sample(ds, 0, 1, {.top = 0, .left = 2, .flip = true}, out.data());
  EXPECT_EQ(out, (std::vector<float>{0, 0, 0, 0, 30, 20}));
}

TEST(Augment, GatherAugmentsEveryRowWithItsSamplesDrawAndKeepsLabels) {
  const Dataset ds = synthetic(40, 6, 6);
  const AugmentOptions o{.crop_padding = 3, .horizontal_flip = true, .seed = 9};
  const std::vector<int64_t> idx{5, 0, 39, 5, 17};
  Tensor x, y;
  gather_augmented(ds, idx, o, /*epoch=*/2, x, y);
  ASSERT_EQ(x.shape(), (Shape{5, 1, 6, 6}));
  ASSERT_EQ(y.shape(), Shape{5});
  for (int64_t r = 0; r < 5; ++r) {
    const int64_t s = idx[static_cast<size_t>(r)];
    const std::vector<float> want = reference(ds, s, 3, augment_draw(o, 2, s));
    EXPECT_TRUE(std::equal(want.begin(), want.end(), x.data() + r * 36)) << "row " << r;
    EXPECT_EQ(y[r], float(ds.labels[static_cast<size_t>(s)]));
  }
}

TEST(Augment, DisabledIsThePlainGatherBitForBit) {
  const Dataset ds = synthetic(30, 4, 5);
  const std::vector<int64_t> idx{3, 29, 0, 7};
  Tensor x0, y0, x1, y1;
  DistributedSampler::gather(ds, idx, x0, y0);
  gather_augmented(ds, idx, AugmentOptions{.seed = 4}, 1, x1, y1);
  ASSERT_EQ(x0.shape(), x1.shape());
  EXPECT_TRUE(std::equal(x0.data(), x0.data() + x0.numel(), x1.data()));
  EXPECT_TRUE(std::equal(y0.data(), y0.data() + y0.numel(), y1.data()));
}

TEST(Augment, EpochsDrawAnew) {
  const AugmentOptions o{.crop_padding = 4, .horizontal_flip = true, .seed = 3};
  int64_t same = 0;
  for (int64_t s = 0; s < 1000; ++s) {
    const AugmentDraw a = augment_draw(o, 0, s), b = augment_draw(o, 1, s);
    same += a.top == b.top && a.left == b.left && a.flip == b.flip;
  }
  EXPECT_LT(same, 1000 / 162 * 3) << "P(same) = 1/162 per sample";
}

// Sample i's augmented image and label, and every global batch, are the same from 1 rank and from
// 3 ranks' shards concatenated in rank order, for two epochs, through the prefetcher as training
// gathers them.
TEST(Augment, WorldSizeInvariantOneRankAndThreeRanks) {
  const Dataset ds = synthetic(100, 8, 8);
  const int64_t kB = 12;
  const InputOptions in{.augment = {.crop_padding = 2, .horizontal_flip = true, .seed = 21}, .prefetch_batches = 2};
  DistributedSampler one(ds.size(), {.global_batch = kB, .rank = 0, .world = 1, .seed = 21,
                                     .remainder = RemainderPolicy::kPad});
  std::vector<DistributedSampler> three;
  for (int r = 0; r < 3; ++r)
    three.emplace_back(ds.size(), DistributedSamplerOptions{.global_batch = kB, .rank = r, .world = 3, .seed = 21,
                                                            .remainder = RemainderPolicy::kPad});
  for (int64_t epoch : {0, 1}) {
    one.set_epoch(epoch);
    for (auto& s : three) s.set_epoch(epoch);
    BatchPrefetcher whole(ds, one, 0, in);
    std::vector<std::unique_ptr<BatchPrefetcher>> parts;
    for (auto& s : three) parts.push_back(std::make_unique<BatchPrefetcher>(ds, s, 0, in));
    for (int64_t step = 0; step < one.num_steps(); ++step) {
      Tensor x, y;
      whole.next(step, x, y);
      ASSERT_EQ(x.shape(), (Shape{kB, 1, 8, 8}));
      const std::vector<int64_t> samples = one.shard(step);
      for (int64_t row = 0; row < kB; ++row) {
        const int64_t s = samples[static_cast<size_t>(row)];
        const std::vector<float> want = reference(ds, s, 2, augment_draw(in.augment, epoch, s));
        ASSERT_TRUE(std::equal(want.begin(), want.end(), x.data() + row * 64)) << "sample " << s;
      }
      for (int r = 0; r < 3; ++r) {
        Tensor xr, yr;
        parts[static_cast<size_t>(r)]->next(step, xr, yr);
        ASSERT_EQ(xr.shape(), (Shape{kB / 3, 1, 8, 8}));
        EXPECT_TRUE(std::equal(xr.data(), xr.data() + xr.numel(), x.data() + r * xr.numel()))
            << "epoch " << epoch << " step " << step << " rank " << r;
        EXPECT_TRUE(std::equal(yr.data(), yr.data() + yr.numel(), y.data() + r * yr.numel()));
      }
    }
  }
}

}  // namespace
}  // namespace lockstep
