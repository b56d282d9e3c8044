// Augmentation against PyTorch: Fashion-MNIST images cropped from zero padding, flipped and
// normalised by tests/golden/gen_augment.py (torchvision's RandomCrop(28, padding=p),
// RandomHorizontalFlip, ToTensor, Normalize written out in torch ops) for fixed draws, and by
// augment_sample for the same draws.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/data/augment.h"
#include "tests/golden_io.h"

namespace lockstep {
namespace {

TEST(AugmentGolden, FixedDrawsMatchTorchvisionsPipeline) {
  const auto g = testing::load_golden("augment_golden.safetensors");
  const Tensor& draws = testing::at(g, "draws");   // (K, 5): sample, p, top, left, flip
  const Tensor& images = testing::at(g, "images");  // (K, 28, 28)
  const Dataset ds = load_fashion_mnist(LOCKSTEP_DATA_DIR, /*train=*/true, 0.2860f, 0.3530f);
  const int64_t k = draws.dim(0), per = ds.sample_numel();
  ASSERT_EQ(images.shape(), (Shape{k, ds.height, ds.width}));
  std::vector<float> out(static_cast<size_t>(per));
  for (int64_t c = 0; c < k; ++c) {
    const float* d = draws.data() + c * 5;
    const auto sample = static_cast<int64_t>(d[0]), p = static_cast<int64_t>(d[1]);
    const AugmentDraw draw{.top = static_cast<int64_t>(d[2]), .left = static_cast<int64_t>(d[3]), .flip = d[4] != 0};
    augment_sample(ds, sample, p, draw, out.data());
    for (int64_t i = 0; i < per; ++i)
      ASSERT_NEAR(out[static_cast<size_t>(i)], images[c * per + i], 1e-6)
          << "case " << c << " (sample " << sample << ", p " << p << ", top " << draw.top << ", left " << draw.left
          << ", flip " << draw.flip << "), pixel " << i;
  }
}

}  // namespace
}  // namespace lockstep
