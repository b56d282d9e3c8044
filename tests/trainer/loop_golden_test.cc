// The training step's gradient accumulation and clipping against PyTorch 1.13
// (tests/golden/gen_loop.py), and accumulation against one big batch: a Linear-ReLU-Linear model
// (no BatchNorm, whose batch statistics would differ per micro-batch), SGD with momentum.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <vector>

#include "launcher/train/trainer.h"
#include "layers/linear.h"
#include "layers/relu.h"
#include "layers/sequential.h"
#include "runtime/optim/sgd.h"
#include "tests/golden_io.h"

namespace lockstep {
namespace {

using testing::at;
constexpr int64_t kD = 12, kH = 16, kC = 5, kK = 4, kB = 8, kSteps = 3;

const std::map<std::string, Tensor>& golden() {
  static const auto g = testing::load_golden("loop_golden.safetensors");
  return g;
}

// max |got - want| / (|want| + 1% of the tensor's largest |want|): relative, with elements far
// below the tensor's scale (sums of cancelling terms) held to its scale instead.
double max_rel(const Tensor& got, const Tensor& want) {
  double scale = 0, worst = 0;
  for (int64_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::fabs(double(want[i])));
  for (int64_t i = 0; i < want.numel(); ++i)
    worst = std::max(worst, std::fabs(double(got[i]) - want[i]) / (std::fabs(double(want[i])) + 1e-2 * scale + 1e-30));
  return worst;
}

// The golden's model, optimizer and a single-process trainer.
struct Net {
  Sequential model;
  std::unique_ptr<Sgd> opt;
  CrossEntropyLoss loss;
  std::unique_ptr<Trainer> trainer;
  explicit Net(TrainerOptions o = {}) {
    model.emplace<Linear>(kD, kH);
    model.emplace<ReLU>();
    model.emplace<Linear>(kH, kC);
    for (auto& [name, t] : model.state_dict()) t->copy_from(at(golden(), "init." + name));
    opt = std::make_unique<Sgd>(model.parameters(), SgdOptions{.lr = 0.1f, .momentum = 0.9f});
    o.sample_shape = {kD};
    trainer = std::make_unique<Trainer>(model, *opt, loss, nullptr, o);
  }
  void expect_params(const std::string& prefix, double tol) {
    for (auto& [name, t] : model.state_dict()) {
      const Tensor& want = at(golden(), prefix + name);
      ASSERT_EQ(t->numel(), want.numel()) << name;
      EXPECT_LE(max_rel(*t, want), tol) << prefix << name;
    }
  }
};

// Rows [first, first + n) of the golden's effective batch.
MicroBatch rows(int64_t first, int64_t n) {
  const Tensor& x = at(golden(), "data.x");
  const Tensor& y = at(golden(), "data.y");
  MicroBatch m{Tensor::empty({n, kD}), Tensor::empty({n}), first};
  for (int64_t i = 0; i < n * kD; ++i) m.x[i] = x[first * kD + i];
  for (int64_t i = 0; i < n; ++i) m.y[i] = y[first + i];
  return m;
}

std::vector<MicroBatch> micro_batches() {
  std::vector<MicroBatch> mb;
  for (int64_t i = 0; i < kK; ++i) mb.push_back(rows(i * kB, kB));
  return mb;
}

TEST(AccumulationGolden, KMicroBatchesMatchPyTorchsAccumulatedSteps) {
  Net net;
  const auto mb = micro_batches();
  const Tensor& losses = at(golden(), "accum.loss");
  for (int64_t t = 1; t <= kSteps; ++t) {
    const double loss = net.trainer->train_step(mb);
    EXPECT_NEAR(loss, losses[t - 1], 1e-5 * std::fabs(losses[t - 1])) << "step " << t;
    net.expect_params("accum.step" + std::to_string(t) + ".", 1e-5);
  }
}

// k micro-batches of B and one batch of kB take the same steps (float reassociation apart).
TEST(AccumulationGolden, KMicroBatchesMatchOneBigBatch) {
  Net acc, big;
  const auto mb = micro_batches();
  const MicroBatch all = rows(0, kK * kB);
  for (int64_t t = 0; t < kSteps; ++t) {
    const double a = acc.trainer->train_step(mb);
    const double b = big.trainer->train_step(std::span<const MicroBatch>(&all, 1));
    EXPECT_NEAR(a, b, 1e-6 * std::fabs(b)) << "step " << t + 1;
  }
  auto pa = acc.model.parameters(), pb = big.model.parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_LE(max_rel(pa[i]->value, pb[i]->value), 1e-5) << "parameter " << i;
  // And they differ from a single micro-batch's step, so the comparison can fail.
  Net one;
  one.trainer->train_step(std::span<const MicroBatch>(mb.data(), 1));
  EXPECT_GT(max_rel(one.model.parameters()[0]->value, pb[0]->value), 1e-3);
}

void expect_clip_case(const std::string& c, GradClip clip) {
  Net net(TrainerOptions{.clip = clip});
  const MicroBatch all = rows(0, kK * kB);
  net.trainer->train_step(std::span<const MicroBatch>(&all, 1));
  const double want = at(golden(), "clip_" + c + ".norm")[0];
  EXPECT_NEAR(net.trainer->last_grad_norm(), want, 1e-5 * want) << c;
  for (auto& [name, p] : net.model.named_parameters())
    // 1e-4: an unclipped element far below the tensor's scale is a sum of cancelling terms, with
    // float rounding of the terms' size (the clipped ones sit exactly at the bound).
    EXPECT_LE(max_rel(p->grad, at(golden(), "clip_" + c + ".grad." + name)), 1e-4) << c << " grad " << name;
  net.expect_params("clip_" + c + ".step.", 1e-5);
}

TEST(ClipGolden, NormTwoMatchesClipGradNorm) { expect_clip_case("norm2", {.max_norm = 0.05}); }
TEST(ClipGolden, NormInfMatchesClipGradNorm) {
  expect_clip_case("norminf", {.max_norm = 0.01, .norm_type = std::numeric_limits<double>::infinity()});
}
TEST(ClipGolden, LooseMaxNormLeavesGradientsAndReportsTheNorm) { expect_clip_case("norm2_loose", {.max_norm = 1e3}); }
TEST(ClipGolden, ValueMatchesClipGradValue) { expect_clip_case("value", {.clip_value = 0.005}); }

TEST(ClipGolden, NoClippingReportsNoNorm) {
  Net net;
  const MicroBatch all = rows(0, kB);
  net.trainer->train_step(std::span<const MicroBatch>(&all, 1));
  EXPECT_LT(net.trainer->last_grad_norm(), 0);
  EXPECT_FLOAT_EQ(net.trainer->last_lr(), 0.1f);
}

// A non-finite loss in any micro-batch makes the whole optimizer step non-finite: skipped with
// the weights as they were (reported norm NaN), or stopped with NonFiniteStep.
TEST(AccumulationGolden, ANonFiniteMicroBatchSkipsOrStopsTheWholeStep) {
  auto mb = micro_batches();
  mb[2].x[5] = std::numeric_limits<float>::infinity();
  for (NonFiniteAction action : {NonFiniteAction::kSkipStep, NonFiniteAction::kStop}) {
    Net net(TrainerOptions{.on_nonfinite = action, .clip = {.max_norm = 1.0}});
    std::vector<float> before;
    for (Parameter* p : net.model.parameters()) before.insert(before.end(), p->value.data(), p->value.data() + p->value.numel());
    if (action == NonFiniteAction::kStop) {
      EXPECT_THROW(net.trainer->train_step(mb), NonFiniteStep);
    } else {
      net.trainer->train_step(mb);
      EXPECT_TRUE(net.trainer->last_step_skipped());
      EXPECT_TRUE(std::isnan(net.trainer->last_grad_norm()));
    }
    std::vector<float> after;
    for (Parameter* p : net.model.parameters()) after.insert(after.end(), p->value.data(), p->value.data() + p->value.numel());
    EXPECT_EQ(before, after);
  }
}

}  // namespace
}  // namespace lockstep
