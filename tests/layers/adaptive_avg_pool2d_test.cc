// AdaptiveAvgPool2d against PyTorch (tests/golden/gen_layers.py): global pooling (1x1),
// overlapping windows (7 rows into 3) and an output larger than its input; both modes.
#include "layers/adaptive_avg_pool2d.h"

#include <gtest/gtest.h>

#include "runtime/check.h"
#include "tests/layers/golden_module.h"

namespace lockstep {
namespace {

using testing::expect_module_case;

TEST(AdaptiveAvgPool2dGolden, GlobalAverage) {
  for (bool train : {true, false}) {
    AdaptiveAvgPool2d m(1);  // x (2,5,7,9) -> y (2,5,1,1)
    m.train(train);
    expect_module_case(m, "adaptive_1");
  }
}

TEST(AdaptiveAvgPool2dGolden, OverlappingWindows) {
  for (bool train : {true, false}) {
    AdaptiveAvgPool2d m(3, 2);  // x (2,3,7,5) -> y (2,3,3,2): rows [0,3) [2,5) [4,7)
    m.train(train);
    expect_module_case(m, "adaptive_3x2");
  }
}

TEST(AdaptiveAvgPool2dGolden, LargerThanInput) {
  for (bool train : {true, false}) {
    AdaptiveAvgPool2d m(4, 5);  // x (1,2,3,3) -> y (1,2,4,5)
    m.train(train);
    expect_module_case(m, "adaptive_4x5_up");
  }
}

TEST(AdaptiveAvgPool2d, ShapesAndErrors) {
  AdaptiveAvgPool2d m(1);
  EXPECT_EQ(m.output_shape({0, 512, 7, 7}), (Shape{0, 512, 1, 1}));  // an empty shard still fits
  EXPECT_THROW(m.output_shape({2, 512}), Error);
  EXPECT_THROW(AdaptiveAvgPool2d(0), Error);
  EXPECT_THROW(AdaptiveAvgPool2d(2, -1), Error);
}

}  // namespace
}  // namespace lockstep
