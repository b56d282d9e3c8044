// Optimizer state through real checkpoint files: each rule with state (momentum buffers, Adam and
// LAMB moments, amsgrad maxima, RMSprop averages) stepped 4 times, written with write_checkpoint
// (state tensors and the step count, as the worker does), read back into a fresh optimizer and
// stepped 4 more, must end bit-identical to 8 uninterrupted steps.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <memory>
#include <random>

#include "runtime/optim/adam.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/lamb.h"
#include "runtime/optim/lars.h"
#include "runtime/optim/rmsprop.h"
#include "runtime/optim/sgd.h"
#include "tests/checkpoint/checkpoint_test_util.h"

namespace lockstep::testing {
namespace {

using Factory = std::function<std::unique_ptr<Optimizer>(std::vector<Parameter*>)>;

// Two parameters, a weight (3, 4) and a 1-D one (4), with normal values and grads from `seed`.
struct Params {
  std::vector<Parameter> ps = std::vector<Parameter>(2);
  std::mt19937 rng;
  explicit Params(uint32_t seed) : rng(seed) {
    ps[0].value = Tensor::zeros({3, 4});
    ps[1].value = Tensor::zeros({4});
    for (auto& p : ps) {
      fill(p.value);
      p.grad = Tensor::zeros(p.value.shape());
    }
  }
  void fill(Tensor& t) {
    std::normal_distribution<float> n;
    for (float& x : t.span()) x = n(rng);
  }
  std::vector<Parameter*> pointers() { return {&ps[0], &ps[1]}; }
  void step(Optimizer& opt) {
    for (auto& p : ps) fill(p.grad);
    opt.step();
  }
};

void resume_through_files(const std::string& name, const Factory& make) {
  SCOPED_TRACE(name);
  Params whole(7), split(7);
  auto straight = make(whole.pointers());
  auto first = make(split.pointers());
  for (int t = 0; t < 4; ++t) {
    whole.step(*straight);
    split.step(*first);
  }
  ScratchDir run;
  Checkpoint c;
  c.state.set_step(4);
  c.state.set_optimizer_steps(first->step_count());
  c.model = {{"0", split.ps[0].value.clone()}, {"1", split.ps[1].value.clone()}};
  c.optimizer = snapshot_tensors(first->state_tensors());
  ASSERT_FALSE(c.optimizer.empty());
  const Checkpoint back = read_checkpoint(write_checkpoint(run.path(), c, 0));
  first.reset();

  Params resumed_params(99);  // other values: everything must come from the checkpoint
  resumed_params.rng = split.rng;  // the same grads from here on
  auto resumed = make(resumed_params.pointers());
  copy_tensors(back.model, {{"0", &resumed_params.ps[0].value}, {"1", &resumed_params.ps[1].value}}, "model");
  copy_tensors(back.optimizer, resumed->state_tensors(), "optimizer");
  resumed->set_step_count(back.state.optimizer_steps());
  for (int t = 0; t < 4; ++t) {
    whole.step(*straight);
    resumed_params.step(*resumed);
  }
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(std::memcmp(whole.ps[i].value.data(), resumed_params.ps[i].value.data(),
                          sizeof(float) * static_cast<size_t>(whole.ps[i].value.numel())),
              0)
        << "parameter " << i;
  auto a = straight->state_tensors();
  auto b = resumed->state_tensors();
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k)
    EXPECT_EQ(std::memcmp(a[k].second->data(), b[k].second->data(), sizeof(float) * static_cast<size_t>(a[k].second->numel())), 0)
        << a[k].first;
}

template <typename Opt, typename Options>
Factory make(Options o) {
  return [o](std::vector<Parameter*> ps) { return std::make_unique<Opt>(std::move(ps), o); };
}

TEST(OptimizerCheckpoint, EveryRuleResumesBitExactFromFiles) {
  resume_through_files("sgd", make<Sgd>(SgdOptions{.lr = 0.1f, .momentum = 0.9f}));
  resume_through_files("adamw_amsgrad", make<AdamW>(AdamWOptions{.lr = 0.01f, .amsgrad = true}));
  resume_through_files("adam_amsgrad", make<Adam>(AdamOptions{.lr = 0.01f, .weight_decay = 0.1f, .amsgrad = true}));
  resume_through_files("rmsprop", make<Rmsprop>(RmspropOptions{.lr = 0.01f, .momentum = 0.9f, .centered = true}));
  resume_through_files("lars", make<Lars>(LarsOptions{.lr = 1.f, .momentum = 0.9f, .weight_decay = 1e-4f}));
  resume_through_files("lamb", make<Lamb>(LambOptions{.lr = 0.01f, .weight_decay = 0.01f}));
}

}  // namespace
}  // namespace lockstep::testing
