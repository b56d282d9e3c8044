// Training-set augmentation of Fashion-MNIST-style images, as torchvision's usual recipe
// [RandomCrop(H, padding=p), RandomHorizontalFlip(0.5), ToTensor(), Normalize(mean, std)] does it,
// with draws that are a pure function of (seed, epoch, sample index): the same crop and flip for a
// sample whatever the world size, the rank that trains it or the thread that gathers it, and again
// after a resume. Train batches only; eval never augments.
#pragma once

#include <cstdint>
#include <span>

#include "runtime/data/dataset.h"
#include "runtime/tensor.h"

namespace lockstep {

struct AugmentOptions {
  // p of torchvision.transforms.RandomCrop(size=(H, W), padding=p): the image is zero-padded by p
  // pixels on every side (black, byte 0, before normalisation) and an H x W window is cut at a
  // uniform offset in [0, 2p] x [0, 2p]. 0: no crop.
  int64_t crop_padding = 0;
  // torchvision.transforms.RandomHorizontalFlip(p=0.5), applied after the crop.
  bool horizontal_flip = false;
  uint64_t seed = 0;  // the job's seed
  bool enabled() const { return crop_padding > 0 || horizontal_flip; }
};

// The random choices for one sample. top, left: the window's offset in the padded image, in
// [0, 2 * crop_padding]; flip: mirror columns.
struct AugmentDraw {
  int64_t top = 0, left = 0;
  bool flip = false;
};

// Note [augment draws]: Philox keyed on (seed, rank 0, stream kAugment) at step = epoch, block =
// sample index, layer 0, gives words w0..w3: top = (w0 * (2p + 1)) >> 32, left = (w1 * (2p + 1)) >> 32
// (uniform on [0, 2p] up to a bias below (2p + 1) / 2^32), flip = horizontal_flip and
// uniform01(w2) < 0.5. With crop_padding 0, top = left = p = 0. A padded batch's repeated sample
// gets the same draw as its first visit in that epoch.
AugmentDraw augment_draw(const AugmentOptions& o, int64_t epoch, int64_t sample);

// out[0 .. H*W) = sample `sample` of ds, cropped and flipped as d says, normalised:
//   out[i][j] = table[img[i + top - p][c + left - p]], c = flip ? W - 1 - j : j,
// with table[0] (a padded black pixel) where the source row or column falls outside the image.
void augment_sample(const Dataset& ds, int64_t sample, int64_t crop_padding, const AugmentDraw& d, float* out);

// DistributedSampler::gather with augmentation: x: (b, 1, H, W), y: (b) labels as floats for
// `indices` (reused when shaped right); each row augmented with augment_draw(o, epoch, index).
// Without augmentation (o.enabled() false) the plain copy, bit for bit.
void gather_augmented(const Dataset& ds, std::span<const int64_t> indices, const AugmentOptions& o, int64_t epoch,
                      Tensor& x, Tensor& y);

}  // namespace lockstep
