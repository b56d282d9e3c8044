// MaxPool2d against PyTorch (tests/golden/gen_layers.py): kernel 2 and 3, stride 2 and 3, odd
// sizes (trailing rows/columns dropped), overlapping windows (k3 s2: a shared input receives the
// sum of its windows' gradients); padding (all-negative inputs: a padded position, were it 0,
// would win), dilation, and a padded window whose inputs are all -inf; both modes.
#include "layers/max_pool2d.h"

#include <gtest/gtest.h>

#include <string>

#include "runtime/check.h"
#include "tests/layers/golden_module.h"

namespace lockstep {
namespace {

using testing::expect_module_case;

TEST(MaxPool2dGolden, Kernel2Stride2OddSize) {
  for (bool train : {true, false}) {
    MaxPool2d m(2);  // x (2,3,7,9) -> y (2,3,3,4)
    m.train(train);
    expect_module_case(m, "pool_k2s2");
  }
}

TEST(MaxPool2dGolden, Kernel3Stride2Overlapping) {
  for (bool train : {true, false}) {
    MaxPool2d m(3, 2);  // x (1,5,9,7) -> y (1,5,4,3)
    m.train(train);
    expect_module_case(m, "pool_k3s2");
  }
}

TEST(MaxPool2dGolden, Kernel3DefaultStride) {
  MaxPool2d m(3);  // x (2,3,8,7) -> y (2,3,2,2)
  expect_module_case(m, "pool_k3s3");
}

TEST(MaxPool2dGolden, PaddingIsNeverChosen) {
  for (bool train : {true, false}) {
    MaxPool2d resnet_stem({.kernel = 3, .stride = 2, .padding = 1});  // x (2,3,8,7) -> y (2,3,4,4)
    resnet_stem.train(train);
    expect_module_case(resnet_stem, "pool_k3s2p1");
    MaxPool2d k2({.kernel = 2, .stride = 1, .padding = 1});  // x (1,2,5,4) -> y (1,2,6,5)
    k2.train(train);
    expect_module_case(k2, "pool_k2s1p1");
  }
}

TEST(MaxPool2dGolden, Dilation) {
  for (bool train : {true, false}) {
    MaxPool2d m({.kernel = 3, .stride = 1, .padding = 1, .dilation = 2});  // x (1,3,7,6) -> y (1,3,5,4)
    m.train(train);
    expect_module_case(m, "pool_k3s1p1_dil2");
  }
}

TEST(MaxPool2dGolden, AllMinusInfWindowPicksItsFirstInput) {
  for (bool train : {true, false}) {
    MaxPool2d m({.kernel = 3, .stride = 2, .padding = 1});  // x (1,1,4,5) -> y (1,1,2,3)
    m.train(train);
    expect_module_case(m, "nonfinite_pool_k3s2p1");
  }
}

TEST(MaxPool2d, RejectsPaddingOverHalfTheKernel) {
  EXPECT_NO_THROW(MaxPool2d({.kernel = 3, .padding = 1}));
  try {
    MaxPool2d m({.kernel = 3, .padding = 2});
    ADD_FAILURE() << "padding 2 with kernel 3 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("padding must be in [0, kernel/2 = 1], got 2"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(MaxPool2d({.kernel = 2, .dilation = 0}), Error);
}

TEST(MaxPool2d, TiesPickTheFirstMaximum) {
  MaxPool2d m(2);
  Tensor x = Tensor::full({1, 1, 2, 2}, 3.f);
  m.forward(x);
  Tensor dx = m.backward(Tensor::full({1, 1, 1, 1}, 1.f));
  EXPECT_EQ(dx[0], 1.f);
  EXPECT_EQ(dx[1] + dx[2] + dx[3], 0.f);
}

TEST(MaxPool2d, RejectsInputSmallerThanKernel) {
  MaxPool2d m(3);
  EXPECT_THROW(m.forward(Tensor::zeros({1, 1, 2, 5})), Error);
}

}  // namespace
}  // namespace lockstep
