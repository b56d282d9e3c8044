// Conv2d against PyTorch (tests/golden/gen_layers.py): 3 -> 5 channels (and 5 -> 7), odd spatial
// sizes, stride 1 and 2, padding 0 and 1, kernels 1, 2 and 3, with and without bias; output, input
// and parameter gradients, in train and eval mode (Conv2d does not depend on the mode).
#include "layers/conv2d.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "runtime/check.h"
#include "tests/layers/golden_module.h"

namespace lockstep {
namespace {

using testing::expect_module_case;

struct ConvCase {
  const char* name;
  Conv2dOptions options;
};

void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }

class Conv2dGolden : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Conv2dGolden, MatchesPyTorch) {
  for (bool train : {true, false}) {
    Conv2d m(GetParam().options);
    m.train(train);
    // Sums over C_in*K*K and N*OH*OW products: a little more rounding than Linear.
    expect_module_case(m, GetParam().name, {1e-5, 1e-4}, {2e-5, 1e-4});
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, Conv2dGolden,
    ::testing::Values(
        // x (2,3,7,9) -> y (2,5,5,7)
        ConvCase{"conv_s1p0", {.in_channels = 3, .out_channels = 5, .kernel = 3}},
        // x (2,3,5,7) -> y (2,5,5,7)
        ConvCase{"conv_s1p1", {.in_channels = 3, .out_channels = 5, .kernel = 3, .padding = 1}},
        // x (2,3,9,7) -> y (2,5,4,3)
        ConvCase{"conv_s2p0", {.in_channels = 3, .out_channels = 5, .kernel = 3, .stride = 2}},
        // x (1,3,7,9) -> y (1,5,4,5)
        ConvCase{"conv_s2p1",
                 {.in_channels = 3, .out_channels = 5, .kernel = 3, .stride = 2, .padding = 1}},
        // x (2,5,7,5) -> y (2,7,3,2): the last row and column are never covered
        ConvCase{"conv_k2s2_nobias",
                 {.in_channels = 5, .out_channels = 7, .kernel = 2, .stride = 2, .bias = false}},
        // x (1,3,3,5) -> y (1,5,3,5)
        ConvCase{"conv_k1", {.in_channels = 3, .out_channels = 5, .kernel = 1}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Conv2d, RejectsWrongChannelsAndTooSmallInput) {
  Conv2d m({.in_channels = 3, .out_channels = 5, .kernel = 3});
  EXPECT_THROW(m.forward(Tensor::zeros({1, 4, 7, 7})), Error);
  EXPECT_THROW(m.forward(Tensor::zeros({1, 3, 2, 7})), Error);
  EXPECT_THROW(m.forward(Tensor::zeros({3, 7, 7})), Error);
}

}  // namespace
}  // namespace lockstep
