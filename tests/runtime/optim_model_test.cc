// Adam (amsgrad), AdamW (amsgrad), RMSprop, LARS and LAMB over 20 steps of a small MLP (fc1.weight,
// fc1.bias, a 1-D norm scale, fc2.weight, fc2.bias) against tests/golden/gen_optim.py: PyTorch
// 1.13's optimizers, and for LARS and LAMB references written there from the papers. Each step
// feeds the gradient the model had in PyTorch and compares every parameter; the final state must
// match too, and resuming from state_tensors() half-way must be bit-exact.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>

#include "runtime/check.h"
#include "runtime/optim/adam.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/lamb.h"
#include "runtime/optim/lars.h"
#include "runtime/optim/layer_adaptation.h"
#include "runtime/optim/rmsprop.h"
#include "tests/golden_io.h"

namespace lockstep {
namespace {

using Golden = std::map<std::string, Tensor>;
using testing::at;
constexpr int kSteps = 20, kParams = 5;
constexpr double kAtol = 1e-6, kRtol = 1e-5;

const Golden& golden() {
  static const Golden g = testing::load_golden("optim_golden.safetensors");
  return g;
}

std::string key(const std::string& c, const std::string& what, int i) { return c + "." + what + "." + std::to_string(i); }

std::vector<Parameter> initial_params(const std::string& c) {
  std::vector<Parameter> ps(kParams);
  for (int i = 0; i < kParams; ++i) {
    ps[i].value = at(golden(), key(c, "init", i)).clone();
    ps[i].grad = Tensor::zeros(ps[i].value.shape());
  }
  return ps;
}

std::vector<Parameter*> pointers(std::vector<Parameter>& ps) {
  std::vector<Parameter*> out;
  for (Parameter& p : ps) out.push_back(&p);
  return out;
}

void feed(const std::string& c, std::vector<Parameter>& ps, int t) {
  for (int i = 0; i < kParams; ++i) ps[i].grad.copy_from(at(golden(), key(c, "grad." + std::to_string(t), i)));
}

using Factory = std::function<std::unique_ptr<Optimizer>(std::vector<Parameter*>)>;
struct ModelCase {
  std::string name;
  Factory make;
};
void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }

template <typename Opt, typename Options>
Factory make(Options o) {
  return [o](std::vector<Parameter*> ps) { return std::make_unique<Opt>(std::move(ps), o); };
}

class OptimizerModelGolden : public ::testing::TestWithParam<ModelCase> {};

TEST_P(OptimizerModelGolden, TwentyStepsMatchReference) {
  const ModelCase& c = GetParam();
  auto ps = initial_params(c.name);
  auto opt = c.make(pointers(ps));
  for (int t = 1; t <= kSteps; ++t) {
    feed(c.name, ps, t);
    opt->step();
    ASSERT_EQ(opt->step_count(), t);
    for (int i = 0; i < kParams; ++i) {
      SCOPED_TRACE(c.name + " step " + std::to_string(t) + " param " + std::to_string(i));
      ASSERT_TRUE(testing::allclose(ps[i].value, at(golden(), c.name + ".step" + std::to_string(t) + "." + std::to_string(i)),
                                    kAtol, kRtol));
    }
  }
  size_t golden_states = 0;
  for (const auto& [k, t] : golden())
    if (k.rfind(c.name + ".state.", 0) == 0) ++golden_states;
  auto state = opt->state_tensors();
  EXPECT_EQ(state.size(), golden_states);
  for (auto& [k, t] : state) {
    SCOPED_TRACE(c.name + " state " + k);
    EXPECT_ALLCLOSE(*t, at(golden(), c.name + ".state." + k), kAtol, kRtol);
  }
}

// A checkpoint holds the parameters, state_tensors() and step_count() (launcher/worker): a fresh
// optimizer given them after 10 steps must continue bit for bit as the uninterrupted one.
TEST_P(OptimizerModelGolden, ResumeFromStateIsBitExact) {
  const ModelCase& c = GetParam();
  auto ps = initial_params(c.name);
  auto uninterrupted = c.make(pointers(ps));
  auto resumed_ps = initial_params(c.name);
  auto first = c.make(pointers(resumed_ps));
  for (int t = 1; t <= 10; ++t) {
    feed(c.name, ps, t);
    uninterrupted->step();
    feed(c.name, resumed_ps, t);
    first->step();
  }
  auto restored_ps = initial_params(c.name);
  for (int i = 0; i < kParams; ++i) restored_ps[i].value.copy_from(resumed_ps[i].value);
  auto resumed = c.make(pointers(restored_ps));
  auto from = first->state_tensors();
  auto to = resumed->state_tensors();
  ASSERT_EQ(from.size(), to.size());
  for (size_t k = 0; k < from.size(); ++k) {
    ASSERT_EQ(from[k].first, to[k].first);
    to[k].second->copy_from(*from[k].second);
  }
  resumed->set_step_count(first->step_count());
  first.reset();
  for (int t = 11; t <= kSteps; ++t) {
    feed(c.name, ps, t);
    uninterrupted->step();
    feed(c.name, restored_ps, t);
    resumed->step();
  }
  for (int i = 0; i < kParams; ++i)
    EXPECT_EQ(std::memcmp(ps[i].value.data(), restored_ps[i].value.data(), ps[i].value.numel() * sizeof(float)), 0)
        << c.name << " param " << i;
  auto a = uninterrupted->state_tensors();
  auto b = resumed->state_tensors();
  for (size_t k = 0; k < a.size(); ++k)
    EXPECT_EQ(std::memcmp(a[k].second->data(), b[k].second->data(), a[k].second->numel() * sizeof(float)), 0)
        << c.name << " state " << a[k].first;
}

// The options must equal MODEL_CASES in tests/golden/gen_optim.py.
INSTANTIATE_TEST_SUITE_P(
    Cases, OptimizerModelGolden,
    ::testing::Values(
        ModelCase{"adam_default", make<Adam>(AdamOptions{.lr = 1e-2f})},
        ModelCase{"adam_amsgrad", make<Adam>(AdamOptions{.lr = 2e-2f, .beta1 = 0.8f, .beta2 = 0.95f, .eps = 1e-6f,
                                                         .weight_decay = 0.05f, .amsgrad = true})},
        ModelCase{"adamw_amsgrad", make<AdamW>(AdamWOptions{.lr = 2e-2f, .weight_decay = 0.1f, .amsgrad = true})},
        ModelCase{"rmsprop_plain", make<Rmsprop>(RmspropOptions{.lr = 1e-2f})},
        ModelCase{"rmsprop_centered_momentum",
                  make<Rmsprop>(RmspropOptions{.lr = 5e-3f, .alpha = 0.9f, .eps = 1e-6f, .weight_decay = 0.05f,
                                               .momentum = 0.9f, .centered = true})},
        ModelCase{"lars_plain", make<Lars>(LarsOptions{.lr = 0.5f})},
        ModelCase{"lars_momentum",
                  make<Lars>(LarsOptions{.lr = 0.5f, .momentum = 0.9f, .weight_decay = 0.01f, .trust_coefficient = 0.02f})},
        ModelCase{"lars_zero",
                  make<Lars>(LarsOptions{.lr = 0.5f, .momentum = 0.9f, .weight_decay = 0.01f, .trust_coefficient = 0.02f})},
        ModelCase{"lamb_default", make<Lamb>(LambOptions{.lr = 1e-2f})},
        ModelCase{"lamb_weight_decay",
                  make<Lamb>(LambOptions{.lr = 2e-2f, .beta1 = 0.8f, .beta2 = 0.95f, .eps = 1e-5f, .weight_decay = 0.1f})},
        ModelCase{"lamb_zero", make<Lamb>(LambOptions{.lr = 2e-2f, .weight_decay = 0.1f})}),
    [](const auto& info) { return info.param.name; });

// Note [layer adaptation exclusions], by formula on one step from zero state: a 2-D parameter of
// norm 0 and a 1-D parameter take the plain step lr * g with no weight decay (1-D) or a decay
// term that is 0 (zero norm), while a 2-D parameter takes lr * eta * ||w|| / (||g|| + wd ||w||).
TEST(Lars, ZeroNormAndOneDimParametersTakeThePlainStep) {
  std::vector<Parameter> ps(3);
  ps[0].value = Tensor::zeros({2, 2});
  ps[1].value = Tensor::zeros({4});
  ps[1].value.fill(2.f);
  ps[2].value = Tensor::zeros({2, 2});
  ps[2].value.fill(3.f);  // ||w|| = 6
  for (auto& p : ps) {
    p.grad = Tensor::zeros(p.value.shape());
    p.grad.fill(0.5f);  // ||g|| = 1
  }
  const float lr = 2.f, wd = 0.5f, eta = 0.1f;
  Lars opt(pointers(ps), {.lr = lr, .momentum = 0.9f, .weight_decay = wd, .trust_coefficient = eta});
  EXPECT_EQ(opt.excluded(), (std::vector<bool>{false, true, false}));
  opt.step();
  for (float w : ps[0].value.span()) EXPECT_FLOAT_EQ(w, -lr * 0.5f);
  for (float w : ps[1].value.span()) EXPECT_FLOAT_EQ(w, 2.f - lr * 0.5f);
  const float local = eta * 6.f / (1.f + wd * 6.f);
  for (float w : ps[2].value.span()) EXPECT_FLOAT_EQ(w, 3.f - lr * local * (0.5f + wd * 3.f));
}

TEST(Lamb, ExcludedParametersTakeTheAdamStep) {
  // First step from zero state: m_hat = g, v_hat = g^2, so r = g / (|g| + eps) and, with trust
  // ratio 1 and no decay, w moves by lr * r; the 2-D parameter moves by lr * ||w|| / ||u|| * u.
  std::vector<Parameter> ps(2);
  ps[0].value = Tensor::zeros({3});
  ps[0].value.fill(1.f);
  ps[1].value = Tensor::zeros({2, 2});
  ps[1].value.fill(2.f);  // ||w|| = 4
  for (auto& p : ps) {
    p.grad = Tensor::zeros(p.value.shape());
    p.grad.fill(-0.25f);
  }
  const float lr = 0.1f, wd = 0.1f, eps = 1e-6f;
  Lamb opt(pointers(ps), {.lr = lr, .eps = eps, .weight_decay = wd});
  opt.step();
  const float r = -0.25f / (0.25f + eps);
  for (float w : ps[0].value.span()) EXPECT_FLOAT_EQ(w, 1.f - lr * r);
  const float u = r + wd * 2.f;  // every element alike: ||u|| = 2 |u|
  for (float w : ps[1].value.span()) EXPECT_FLOAT_EQ(w, 2.f - lr * (4.f / (2.f * std::fabs(u))) * u);
}

TEST(LayerAdaptation, MaskOverridesTheOneDimRule) {
  std::vector<Parameter> ps(2);
  ps[0].value = Tensor::zeros({3, 3});
  ps[1].value = Tensor::zeros({3});
  for (auto& p : ps) p.grad = Tensor::zeros(p.value.shape());
  EXPECT_EQ(Lars(pointers(ps), {.lr = 1.f, .exclude = {true, false}}).excluded(), (std::vector<bool>{true, false}));
  EXPECT_EQ(Lamb(pointers(ps), {}).excluded(), (std::vector<bool>{false, true}));
  try {
    Lamb(pointers(ps), {.exclude = {true}});
    ADD_FAILURE() << "no error for a short mask";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "LAMB: exclusion mask has 1 entries for 2 parameters");
  }
}

TEST(NewOptimizers, RejectInvalidOptions) {
  std::vector<Parameter> ps(1);
  ps[0].value = Tensor::zeros({2});
  ps[0].grad = Tensor::zeros({2});
  auto p = pointers(ps);
  EXPECT_THROW(Adam(p, {.beta2 = 1.f}), Error);
  EXPECT_THROW(Adam(p, {.eps = -1.f}), Error);
  EXPECT_THROW(Rmsprop(p, {.alpha = -0.5f}), Error);
  EXPECT_THROW(Rmsprop(p, {.momentum = -0.1f}), Error);
  EXPECT_THROW(Lars(p, {.lr = 1.f, .trust_coefficient = 0.f}), Error);
  EXPECT_THROW(Lars(p, {.lr = 1.f, .weight_decay = -1.f}), Error);
  EXPECT_THROW(Lamb(p, {.beta1 = 1.f}), Error);
  EXPECT_THROW(Lamb(p, {.lr = -1.f}), Error);
}

TEST(NewOptimizers, StateNamesFollowPyTorch) {
  std::vector<Parameter> ps(1);
  ps[0].value = Tensor::zeros({2});
  ps[0].grad = Tensor::zeros({2});
  auto names = [](Optimizer&& o) {
    std::vector<std::string> out;
    for (auto& [k, t] : o.state_tensors()) out.push_back(k);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(names(Adam(pointers(ps), {.amsgrad = true})), (V{"0.exp_avg", "0.exp_avg_sq", "0.max_exp_avg_sq"}));
  EXPECT_EQ(names(AdamW(pointers(ps), {.amsgrad = true})), (V{"0.exp_avg", "0.exp_avg_sq", "0.max_exp_avg_sq"}));
  EXPECT_EQ(names(Rmsprop(pointers(ps), {.momentum = 0.5f, .centered = true})),
            (V{"0.square_avg", "0.momentum_buffer", "0.grad_avg"}));
  EXPECT_EQ(names(Rmsprop(pointers(ps), {})), (V{"0.square_avg"}));
  EXPECT_EQ(names(Lars(pointers(ps), {.lr = 1.f, .momentum = 0.9f})), (V{"0.momentum_buffer"}));
  EXPECT_TRUE(names(Lars(pointers(ps), {.lr = 1.f})).empty());
  EXPECT_EQ(names(Lamb(pointers(ps), {})), (V{"0.exp_avg", "0.exp_avg_sq"}));
}

}  // namespace
}  // namespace lockstep
