// Flatten against PyTorch (tests/golden/gen_layers.py): (N, C, H, W) -> (N, C*H*W) and back.
#include "layers/flatten.h"

#include <gtest/gtest.h>

#include "tests/layers/golden_module.h"

namespace lockstep {
namespace {

TEST(FlattenGolden, MatchesPyTorch) {
  for (bool train : {true, false}) {
    Flatten m;  // x (2,3,5,7) -> y (2,105)
    m.train(train);
    testing::expect_module_case(m, "flatten", {0, 0}, {0, 0});
  }
}

TEST(Flatten, BatchOneKeepsBatchDimension) {
  Flatten m;
  Tensor y = m.forward(Tensor::zeros({1, 3, 1, 1}));
  EXPECT_EQ(y.shape(), (Shape{1, 3}));
  EXPECT_EQ(m.backward(Tensor::zeros({1, 3})).shape(), (Shape{1, 3, 1, 1}));
}

TEST(Flatten, EmptyBatchKeepsFeatureCount) {
  // A data-parallel rank may hold no sample of a global batch: (0, 64, 7, 7) -> (0, 3136).
  Flatten m;
  Tensor y = m.forward(Tensor::zeros({0, 64, 7, 7}));
  EXPECT_EQ(y.shape(), (Shape{0, 3136}));
  EXPECT_EQ(m.backward(Tensor::zeros({0, 3136})).shape(), (Shape{0, 64, 7, 7}));
}

}  // namespace
}  // namespace lockstep
