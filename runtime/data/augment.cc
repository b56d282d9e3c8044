// Random crop with zero padding and horizontal flip, drawn per (seed, epoch, sample) from Philox.
#include "runtime/data/augment.h"

#include "runtime/check.h"
#include "runtime/data/distributed_sampler.h"
#include "runtime/philox.h"

namespace lockstep {

AugmentDraw augment_draw(const AugmentOptions& o, int64_t epoch, int64_t sample) {
  LOCKSTEP_CHECK(epoch >= 0 && sample >= 0) << "epoch " << epoch << ", sample " << sample;
  const Philox rng(RngState{o.seed, 0, RngStream::kAugment, static_cast<uint64_t>(epoch)});
  const std::array<uint32_t, 4> w = rng.draw(0, static_cast<uint64_t>(sample));
  const auto span = static_cast<uint64_t>(2 * o.crop_padding + 1);
  AugmentDraw d;
  d.top = static_cast<int64_t>((uint64_t{w[0]} * span) >> 32);
  d.left = static_cast<int64_t>((uint64_t{w[1]} * span) >> 32);
  d.flip = o.horizontal_flip && uniform01(w[2]) < 0.5f;
  return d;
}

void augment_sample(const Dataset& ds, int64_t sample, int64_t crop_padding, const AugmentDraw& d, float* out) {
  const int64_t h = ds.height, w = ds.width, p = crop_padding;
  const uint8_t* img = ds.pixels.data() + sample * h * w;
  const float pad = ds.table[0];
  for (int64_t i = 0; i < h; ++i) {
    float* row = out + i * w;
    const int64_t si = i + d.top - p;  // source row
    if (si < 0 || si >= h) {
      for (int64_t j = 0; j < w; ++j) row[j] = pad;
      continue;
    }
    const uint8_t* src = img + si * w;
    for (int64_t j = 0; j < w; ++j) {
      const int64_t sj = (d.flip ? w - 1 - j : j) + d.left - p;  // source column
      row[j] = sj >= 0 && sj < w ? ds.table[src[sj]] : pad;
    }
  }
}

void gather_augmented(const Dataset& ds, std::span<const int64_t> indices, const AugmentOptions& o, int64_t epoch,
                      Tensor& x, Tensor& y) {
  if (!o.enabled()) return DistributedSampler::gather(ds, indices, x, y);
  LOCKSTEP_CHECK(o.crop_padding >= 0) << "crop padding " << o.crop_padding;
  DistributedSampler::gather(ds, indices, x, y, [&](int64_t s, float* dst) {
    augment_sample(ds, s, o.crop_padding, augment_draw(o, epoch, s), dst);
  });
}

}  // namespace lockstep
