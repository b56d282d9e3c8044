// Conv2d against PyTorch (tests/golden/gen_layers.py): 3 -> 5 channels (and 5 -> 7), odd spatial
// sizes, stride 1 and 2, padding 0 and 1, kernels 1, 2 and 3, with and without bias, dilation,
// groups and depthwise; output, input and parameter gradients, in train and eval mode (Conv2d does
// not depend on the mode). Also option validation and PyTorch's init bound.
#include "layers/conv2d.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "layers/init.h"
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
        ConvCase{"conv_k1", {.in_channels = 3, .out_channels = 5, .kernel = 1}},
        // x (2,3,7,9) -> y (2,5,7,9): a "same" convolution through the shifted-copy gather
        ConvCase{"conv_dil2_same",
                 {.in_channels = 3, .out_channels = 5, .kernel = 3, .padding = 2, .dilation = 2}},
        // x (2,3,9,8) -> y (2,4,4,3)
        ConvCase{"conv_dil2_s2",
                 {.in_channels = 3, .out_channels = 4, .kernel = 3, .stride = 2, .padding = 1, .dilation = 2}},
        // x (2,4,5,6) -> y (2,6,5,6): channels 0-1 -> 0-2, 2-3 -> 3-5
        ConvCase{"conv_groups2",
                 {.in_channels = 4, .out_channels = 6, .kernel = 3, .padding = 1, .groups = 2}},
        // x (2,4,7,7) -> y (2,4,4,4): depthwise, one filter per channel
        ConvCase{"conv_depthwise", {.in_channels = 4,
                                    .out_channels = 4,
                                    .kernel = 3,
                                    .stride = 2,
                                    .padding = 1,
                                    .bias = false,
                                    .groups = 4}},
        // x (1,3,6,5) -> y (1,6,6,5): depthwise with two filters per channel
        ConvCase{"conv_depthwise_x2",
                 {.in_channels = 3, .out_channels = 6, .kernel = 5, .padding = 2, .groups = 3}},
        // x (2,6,8,7) -> y (2,4,5,4)
        ConvCase{"conv_groups2_dil3",
                 {.in_channels = 6, .out_channels = 4, .kernel = 2, .dilation = 3, .groups = 2}},
        // x (1,2,2,3) -> y (1,3,2,3): padding 3 >= width 3, kernel 7 wider than the input
        ConvCase{"conv_pad_ge_width", {.in_channels = 2, .out_channels = 3, .kernel = 7, .padding = 3}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Conv2d, RejectsWrongChannelsAndTooSmallInput) {
  Conv2d m({.in_channels = 3, .out_channels = 5, .kernel = 3});
  EXPECT_THROW(m.forward(Tensor::zeros({1, 4, 7, 7})), Error);
  EXPECT_THROW(m.forward(Tensor::zeros({1, 3, 2, 7})), Error);
  EXPECT_THROW(m.forward(Tensor::zeros({3, 7, 7})), Error);
}

// The error of constructing Conv2d(o), or "" when it constructs.
std::string construction_error(Conv2dOptions o) {
  try {
    Conv2d m(o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Conv2d, RejectsBadOptionsNamingFieldAndValue) {
  const Conv2dOptions ok{.in_channels = 4, .out_channels = 6, .kernel = 3};
  auto with = [&](auto set) {
    Conv2dOptions o = ok;
    set(o);
    return construction_error(o);
  };
  EXPECT_EQ(construction_error(ok), "");
  EXPECT_NE(with([](auto& o) { o.groups = 3; }).find("in_channels 4 is not divisible by groups 3"),
            std::string::npos);
  EXPECT_NE(with([](auto& o) { o.groups = 4; }).find("out_channels 6 is not divisible by groups 4"),
            std::string::npos);
  EXPECT_NE(with([](auto& o) { o.groups = 0; }).find("groups must be positive, got 0"), std::string::npos);
  EXPECT_NE(with([](auto& o) { o.dilation = -1; }).find("dilation must be positive, got -1"), std::string::npos);
  EXPECT_NE(with([](auto& o) { o.stride = 0; }).find("stride must be positive, got 0"), std::string::npos);
  EXPECT_NE(with([](auto& o) { o.padding = -2; }).find("padding must not be negative, got -2"),
            std::string::npos);
}

TEST(Conv2d, DilatedKernelMustFitThePaddedInput) {
  // span = 2*(3-1)+1 = 5: a 4-wide input fits with padding 1, not without
  Conv2d m({.in_channels = 1, .out_channels = 1, .kernel = 3, .dilation = 2});
  EXPECT_THROW(m.output_shape({1, 1, 4, 4}), Error);
  EXPECT_EQ(m.output_shape({1, 1, 5, 6}), (Shape{1, 1, 1, 2}));
  Conv2d p({.in_channels = 1, .out_channels = 1, .kernel = 3, .padding = 1, .dilation = 2});
  EXPECT_EQ(p.output_shape({1, 1, 4, 4}), (Shape{1, 1, 2, 2}));
}

TEST(Conv2d, InitBoundIsOneOverSqrtOfGroupFanIn) {
  // torch: kaiming_uniform_(a=sqrt(5)) -> U(-b, b), b = 1/sqrt(C_in/groups * K * K); bias alike.
  Conv2d m({.in_channels = 8, .out_channels = 16, .kernel = 3, .groups = 4});
  EXPECT_EQ(m.named_parameters()[0].second->value.shape(), (Shape{16, 2, 3, 3}));
  init_parameters(m, 7);
  const double bound = 1.0 / std::sqrt(2.0 * 9.0);
  for (auto& [name, p] : m.named_parameters()) {
    SCOPED_TRACE(name);
    float most = 0.f;
    for (float v : p->value.span()) most = std::max(most, std::fabs(v));
    EXPECT_LE(most, bound);
    // 288 weights: all under 0.9 * bound has probability 0.9^288; 16 biases: 0.5^16
    EXPECT_GT(most, (name == "weight" ? 0.9 : 0.5) * bound);
  }
}

TEST(Conv2d, EachInputShapeMatchesOneImageAtATime) {
  // Batches 1..5 and back: more input shapes than Conv2d keeps built, so shapes are rebuilt after
  // eviction. Image i of a batch must give what it gives alone, forward and backward.
  Conv2d m({.in_channels = 16, .out_channels = 32, .kernel = 3, .stride = 2, .padding = 1});
  init_parameters(m, 3);
  auto image = [](int64_t i) {
    std::vector<float> v(16 * 9 * 9);
    for (size_t j = 0; j < v.size(); ++j) v[j] = std::sin(0.37f * static_cast<float>(j + 1000 * i));
    return v;
  };
  auto run = [&](int64_t n) {  // -> (y, dx) of images 0..n-1, dy = cos pattern
    std::vector<float> x;
    for (int64_t i = 0; i < n; ++i) {
      auto v = image(i);
      x.insert(x.end(), v.begin(), v.end());
    }
    Tensor y = m.forward(Tensor::from({n, 16, 9, 9}, x));
    std::vector<float> dy(static_cast<size_t>(y.numel()));
    for (size_t j = 0; j < dy.size(); ++j) dy[j] = std::cos(0.11f * static_cast<float>(j % (32 * 5 * 5)));
    Tensor dx = m.backward(Tensor::from(y.shape(), dy));
    return std::pair{y, dx};
  };
  auto [y1, dx1] = run(1);  // image 0 alone
  for (int64_t n : {2, 3, 4, 5, 1, 3}) {
    SCOPED_TRACE("batch " + std::to_string(n));
    auto [y, dx] = run(n);
    ASSERT_EQ(y.shape(), (Shape{n, 32, 5, 5}));
    for (int64_t j = 0; j < y1.numel(); ++j) ASSERT_NEAR(y.data()[j], y1.data()[j], 1e-5) << "y " << j;
    for (int64_t j = 0; j < dx1.numel(); ++j) ASSERT_NEAR(dx.data()[j], dx1.data()[j], 1e-5) << "dx " << j;
  }
}

}  // namespace
}  // namespace lockstep
