// BatchNorm1d / BatchNorm2d against PyTorch (tests/golden/gen_layers.py): outputs, input and
// parameter gradients and running_mean / running_var / num_batches_tracked after each forward, in
// train mode (batch statistics, momentum 0.1 / 0.3 / cumulative over 3 forwards) and eval mode
// (running statistics set to random values), affine=False, track_running_stats=False, eps=1e-3,
// batch 1 where PyTorch allows it and the error where it does not.
#include "layers/batch_norm.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "runtime/check.h"
#include "tests/layers/golden_module.h"

namespace lockstep {
namespace {

using testing::expect_module_case;
using testing::Tolerance;

// Gradients through batch statistics subtract nearly equal sums: a looser atol than outputs.
constexpr Tolerance kOut{1e-5, 1e-4};
constexpr Tolerance kGrad{1e-4, 1e-4};

BatchNormOptions bn(int64_t c) { return BatchNormOptions{.num_features = c}; }

struct BnCase {
  const char* name;
  int dims;  // 1 or 2
  BatchNormOptions options;
  bool train;
};

void PrintTo(const BnCase& c, std::ostream* os) { *os << c.name; }

class BatchNormGolden : public ::testing::TestWithParam<BnCase> {};

TEST_P(BatchNormGolden, MatchesPyTorch) {
  const BnCase& c = GetParam();
  std::unique_ptr<BatchNorm> m;
  if (c.dims == 1)
    m = std::make_unique<BatchNorm1d>(c.options);
  else
    m = std::make_unique<BatchNorm2d>(c.options);
  m->train(c.train);
  expect_module_case(*m, c.name, kOut, kGrad);
}

BatchNormOptions with(BatchNormOptions o, auto&& edit) {
  edit(o);
  return o;
}

INSTANTIATE_TEST_SUITE_P(
    BatchNorm1d, BatchNormGolden,
    ::testing::Values(
        BnCase{"bn1d_nc_train", 1, bn(5), true},                                          // (6,5)
        BnCase{"bn1d_nc_train_m03", 1, with(bn(7), [](auto& o) { o.momentum = 0.3f; }), true},  // (4,7)
        BnCase{"bn1d_ncl_train", 1, bn(3), true},          // (4,3,7)
        BnCase{"bn1d_ncl_train_batch1", 1, bn(3), true},   // (1,3,5): 5 values per channel
        BnCase{"bn1d_nc_eval", 1, bn(5), false},           // (6,5)
        BnCase{"bn1d_nc_eval_batch1", 1, bn(5), false},    // (1,5): running stats, so allowed
        BnCase{"bn1d_ncl_eval", 1, bn(3), false},          // (2,3,7)
        // 3 forwards, running stats averaged with factors 1, 1/2, 1/3
        BnCase{"bn1d_nc_cumulative", 1, with(bn(5), [](auto& o) { o.momentum = std::nullopt; }), true},
        // eval without running stats still normalises with the batch's own statistics
        BnCase{"bn1d_notrack_eval", 1, with(bn(7), [](auto& o) { o.track_running_stats = false; }),
               false}),
    [](const auto& info) { return std::string(info.param.name); });

INSTANTIATE_TEST_SUITE_P(
    BatchNorm2d, BatchNormGolden,
    ::testing::Values(
        BnCase{"bn2d_train", 2, bn(5), true},                                              // (3,5,5,7)
        BnCase{"bn2d_train_m03", 2, with(bn(3), [](auto& o) { o.momentum = 0.3f; }), true},  // (2,3,5,5)
        BnCase{"bn2d_cumulative", 2, with(bn(3), [](auto& o) { o.momentum = std::nullopt; }), true},
        BnCase{"bn2d_m01_3steps", 2, bn(3), true},  // the same 3 inputs with momentum 0.1
        BnCase{"bn2d_eval", 2, bn(5), false},       // (2,5,3,7)
        BnCase{"bn2d_noaffine_train", 2, with(bn(3), [](auto& o) { o.affine = false; }), true},
        BnCase{"bn2d_noaffine_eval", 2, with(bn(3), [](auto& o) { o.affine = false; }), false},
        BnCase{"bn2d_notrack_train", 2, with(bn(5), [](auto& o) { o.track_running_stats = false; }),
               true},
        BnCase{"bn2d_notrack_eval", 2, with(bn(5), [](auto& o) { o.track_running_stats = false; }),
               false},
        // eps 1e-3 against a batch variance of ~2.5e-3: eps visibly changes the result
        BnCase{"bn2d_eps_train", 2, with(bn(3), [](auto& o) { o.eps = 1e-3f; }), true},
        BnCase{"bn2d_eps_eval", 2, with(bn(3), [](auto& o) { o.eps = 1e-3f; }), false},
        BnCase{"bn2d_batch1_train", 2, bn(5), true}),  // (1,5,3,5): H*W > 1, so allowed
    [](const auto& info) { return std::string(info.param.name); });

TEST(BatchNorm1d, Batch1InTrainModeThrowsAndUpdatesNothing) {
  // PyTorch: ValueError "Expected more than 1 value per channel when training".
  BatchNorm1d m(bn(5));
  m.train();
  auto sd = m.state_dict();  // weight, bias, running_mean, running_var, num_batches_tracked
  ASSERT_EQ(sd.size(), 5u);
  sd[2].second->fill(0.25f);
  EXPECT_THROW(m.forward(Tensor::full({1, 5}, 1.f)), Error);
  for (int64_t c = 0; c < 5; ++c) {
    EXPECT_EQ((*sd[2].second)[c], 0.25f);
    EXPECT_EQ((*sd[3].second)[c], 1.f);
  }
  EXPECT_EQ((*sd[4].second)[0], 0.f);
}

TEST(BatchNorm1d, WithoutRunningStatsBatch1InEvalModeThrows) {
  // PyTorch normalises with batch statistics here even in eval mode, and so refuses a batch of 1
  // exactly as in train mode (F.batch_norm checks the batch whenever it uses batch statistics);
  // checked in tests/golden/gen_layers.py.
  BatchNorm1d m(with(bn(5), [](auto& o) { o.track_running_stats = false; }));
  m.eval();
  EXPECT_THROW(m.forward(Tensor::full({1, 5}, 1.f)), Error);
}

TEST(BatchNorm2d, OneValuePerChannelInTrainModeThrows) {
  BatchNorm2d m(bn(3));
  EXPECT_THROW(m.forward(Tensor::zeros({1, 3, 1, 1})), Error);
}

TEST(BatchNorm, StateDictNamesAndShapes) {
  BatchNorm2d m(bn(7));
  auto sd = m.state_dict();
  ASSERT_EQ(sd.size(), 5u);
  const char* names[] = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(sd[i].first, names[i]);
  EXPECT_EQ(sd[4].second->ndim(), 0);  // a scalar, as PyTorch's num_batches_tracked
  BatchNorm1d no_affine(with(bn(3), [](auto& o) { o.affine = false; }));
  EXPECT_EQ(no_affine.state_dict().size(), 3u);
  BatchNorm1d no_track(with(bn(3), [](auto& o) { o.track_running_stats = false; }));
  EXPECT_EQ(no_track.state_dict().size(), 2u);
}

TEST(BatchNorm, RejectsWrongShape) {
  BatchNorm1d b1(bn(5));
  EXPECT_THROW(b1.forward(Tensor::zeros({4, 6})), Error);
  EXPECT_THROW(b1.forward(Tensor::zeros({4, 5, 2, 2})), Error);
  BatchNorm2d b2(bn(5));
  EXPECT_THROW(b2.forward(Tensor::zeros({4, 5, 3})), Error);
}

}  // namespace
}  // namespace lockstep
