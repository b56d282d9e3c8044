// fmnist-resnet8 end to end against PyTorch 1.13 (tests/golden/gen_resnet.py): from PyTorch's
// initial weights, one train-mode step on the first 32 Fashion-MNIST samples (logits, loss, every
// parameter gradient, every buffer after the forward, then the eval-mode logits), and 5 SGD(lr
// 0.05, momentum 0.9) steps whose per-step losses must match. Tensors are compared normwise:
// ||ours - torch|| / ||torch|| <= 1e-4, the relative error of the tensor as a whole.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "layers/loss.h"
#include "layers/reference_models.h"
#include "runtime/autograd.h"
#include "runtime/data/dataset.h"
#include "runtime/grad_mode.h"
#include "runtime/optim/sgd.h"
#include "tests/golden_io.h"

namespace lockstep {
namespace {

using testing::at;

constexpr int64_t kBatch = 32, kSteps = 5;

double rel_error(const Tensor& got, const Tensor& want) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    num += d * d;
    den += static_cast<double>(want[i]) * want[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

#define EXPECT_REL(got, want, tol, what)                                      \
  do {                                                                        \
    ASSERT_EQ((got).numel(), (want).numel()) << (what);                       \
    EXPECT_LE(rel_error((got), (want)), (tol)) << (what);                     \
  } while (0)

struct Fixture {
  std::map<std::string, Tensor> golden = testing::load_golden("resnet8_golden.safetensors");
  std::unique_ptr<Module> model = make_reference_model("fmnist-resnet8");
  Dataset data = load_fashion_mnist(LOCKSTEP_DATA_DIR, /*train=*/true);

  Fixture() {
    for (auto& [name, t] : model->state_dict()) {
      const Tensor& src = at(golden, "init." + name);
      EXPECT_EQ(src.numel(), t->numel()) << name;
      t->copy_from(src);
    }
  }
  void batch(int64_t i, Tensor& x, Tensor& y) const {
    x = data.images(i * kBatch, kBatch).reshape({kBatch, 1, 28, 28});
    y = Tensor::empty({kBatch});
    for (int64_t j = 0; j < kBatch; ++j) y[j] = static_cast<float>(data.labels[i * kBatch + j]);
  }
};

TEST(ResNetGolden, StateDictKeysArePyTorchs) {
  Fixture f;
  size_t n = 0;
  for (auto& [name, t] : f.model->state_dict()) {
    EXPECT_TRUE(f.golden.count("init." + name)) << "lockstep key " << name << " is not PyTorch's";
    ++n;
  }
  size_t torch_keys = 0;
  for (auto& [key, t] : f.golden) torch_keys += key.rfind("init.", 0) == 0;
  EXPECT_EQ(n, torch_keys);
  EXPECT_TRUE(f.golden.count("init.layer2.0.downsample.1.running_mean"));
}

TEST(ResNetGolden, OneTrainStepAndEvalMatchPyTorch) {
  Fixture f;
  Tensor x, y;
  f.batch(0, x, y);
  f.model->train();
  f.model->zero_grad();
  Tensor logits = (*f.model)(x);
  EXPECT_REL(logits, at(f.golden, "step.logits"), 1e-4, "train logits");
  CrossEntropyLoss loss;
  const double value = loss.forward(logits, y);
  EXPECT_NEAR(value, at(f.golden, "step.loss")[0], 1e-4 * at(f.golden, "step.loss")[0]);
  backward(logits, loss.backward());
  int grads = 0;
  for (auto& [name, p] : f.model->named_parameters()) {
    EXPECT_REL(p->grad, at(f.golden, "step.grad." + name), 1e-4, "gradient of " + name);
    ++grads;
  }
  EXPECT_EQ(grads, 29);  // conv1, bn1 (2), 3 blocks x (2 convs, 2 BNs x 2), 2 projections x 3, fc (2)
  for (auto& [name, b] : f.model->named_buffers())
    EXPECT_REL(*b, at(f.golden, "step.after." + name), 1e-4, "buffer " + name);
  f.model->eval();
  NoGradGuard no_grad;
  EXPECT_REL((*f.model)(x), at(f.golden, "step.eval_logits"), 1e-4, "eval logits");
}

TEST(ResNetGolden, FiveSgdStepsMatchPyTorchLosses) {
  Fixture f;
  Sgd sgd(f.model->parameters(), SgdOptions{.lr = 0.05f, .momentum = 0.9f});
  CrossEntropyLoss loss;
  f.model->train();
  const Tensor& want = at(f.golden, "sgd.losses");
  const Tensor& want64 = at(f.golden, "sgd.losses_fp64");
  for (int64_t i = 0; i < kSteps; ++i) {
    Tensor x, y;
    f.batch(i, x, y);
    Tensor logits = (*f.model)(x);
    const double value = loss.forward(logits, y);
    sgd.zero_grad();
    backward(logits, loss.backward());
    sgd.step();
    EXPECT_NEAR(value, want[i], 1e-4 * want[i]) << "loss of step " << i;
    EXPECT_NEAR(value, want64[i], 1e-4 * want64[i]) << "loss of step " << i << " vs float64";
  }
}

}  // namespace
}  // namespace lockstep
