// AvgPool2d against PyTorch (tests/golden/gen_layers.py): default stride, padding counted in the
// divisor or not, ceil_mode (a last window clipped by the input, with and without padding); both
// modes (AvgPool2d does not depend on the mode).
#include "layers/avg_pool2d.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "runtime/check.h"
#include "runtime/grad_mode.h"
#include "tests/layers/golden_module.h"

namespace lockstep {
namespace {

using testing::expect_module_case;

struct AvgCase {
  const char* name;
  AvgPool2dOptions options;
};

void PrintTo(const AvgCase& c, std::ostream* os) { *os << c.name; }

class AvgPool2dGolden : public ::testing::TestWithParam<AvgCase> {};

TEST_P(AvgPool2dGolden, MatchesPyTorch) {
  for (bool train : {true, false}) {
    AvgPool2d m(GetParam().options);
    m.train(train);
    expect_module_case(m, GetParam().name);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AvgPool2dGolden,
    ::testing::Values(
        AvgCase{"avgpool_k2", {.kernel = 2}},  // x (2,3,7,9) -> y (2,3,3,4)
        AvgCase{"avgpool_k3s2p1", {.kernel = 3, .stride = 2, .padding = 1}},  // (2,3,8,7) -> (2,3,4,4)
        AvgCase{"avgpool_k3s2p1_nocount",
                {.kernel = 3, .stride = 2, .padding = 1, .count_include_pad = false}},
        // x (1,2,8,8) -> y (1,2,5,5) (4x4 without ceil_mode)
        AvgCase{"avgpool_k3s2p1_ceil", {.kernel = 3, .stride = 2, .padding = 1, .ceil_mode = true}},
        // x (1,2,7,6) -> y (1,2,3,3): the last column window holds 2 of its 3 columns
        AvgCase{"avgpool_k3s2_ceil_nocount",
                {.kernel = 3, .stride = 2, .ceil_mode = true, .count_include_pad = false}},
        // x (1,2,4,5) -> y (1,2,5,6)
        AvgCase{"avgpool_k2s1p1_ceil_nocount",
                {.kernel = 2, .stride = 1, .padding = 1, .ceil_mode = true, .count_include_pad = false}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(AvgPool2d, CeilModeOutputSizes) {
  // torch: ceil((8 + 2 - 3) / 2) + 1 = 5; a window starting at 8 >= H + pad = 9 would be dropped
  AvgPool2d m({.kernel = 3, .stride = 2, .padding = 1, .ceil_mode = true});
  EXPECT_EQ(m.output_shape({1, 1, 8, 8}), (Shape{1, 1, 5, 5}));
  AvgPool2d k2({.kernel = 2, .stride = 2, .ceil_mode = true});  // (5 - 2)/2 rounded up + 1 = 3
  EXPECT_EQ(k2.output_shape({1, 1, 5, 4}), (Shape{1, 1, 3, 2}));
}

TEST(AvgPool2d, RejectsBadOptionsAndSmallInput) {
  EXPECT_THROW(AvgPool2d({.kernel = 0}), Error);
  EXPECT_THROW(AvgPool2d({.kernel = 3, .stride = -1}), Error);
  EXPECT_THROW(AvgPool2d({.kernel = 3, .padding = 2}), Error);
  AvgPool2d m(3);
  EXPECT_THROW(m.forward(Tensor::zeros({1, 1, 2, 5})), Error);
  EXPECT_THROW(m.forward(Tensor::zeros({1, 5, 5})), Error);
}

TEST(AvgPool2d, BackwardAfterNoGradForwardThrows) {
  AvgPool2d m(2);
  {
    NoGradGuard no_grad;
    m.forward(Tensor::zeros({1, 1, 4, 4}));
  }
  EXPECT_THROW(m.backward(Tensor::zeros({1, 1, 2, 2})), Error);
}

}  // namespace
}  // namespace lockstep
