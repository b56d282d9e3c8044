// No-grad mode: forward under NoGradGuard keeps nothing for backward (backward is an error, and no
// storage outlives the call), so evaluation needs far less memory than a training forward.
#include <gtest/gtest.h>

#include <string>

#include "layers/reference_models.h"
#include "runtime/autograd.h"
#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {
namespace {

Tensor ramp(Shape shape) {
  Tensor x = Tensor::empty(std::move(shape));
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>((i * 37) % 101) / 50.f - 1.f;
  return x;
}

TEST(NoGrad, GuardRestoresThePreviousMode) {
  EXPECT_TRUE(grad_enabled());
  {
    NoGradGuard outer;
    EXPECT_FALSE(grad_enabled());
    {
      NoGradGuard inner;
      EXPECT_FALSE(grad_enabled());
    }
    EXPECT_FALSE(grad_enabled());
  }
  EXPECT_TRUE(grad_enabled());
}

TEST(NoGrad, ForwardKeepsNothingAndBackwardThrows) {
  for (bool train : {true, false}) {
    SCOPED_TRACE(train ? "train mode" : "eval mode");
    auto m = make_reference_model("fmnist-cnn");
    m->train(train);
    Tensor x = ramp({4, 1, 28, 28});
    const int64_t live_before = memory_stats().live_bytes;
    {
      NoGradGuard no_grad;
      Tensor y = m->forward(x);
      EXPECT_EQ(y.shape(), (Shape{4, 10}));
    }
    // Every activation of the forward is freed once its output is dropped.
    EXPECT_EQ(memory_stats().live_bytes, live_before);
    Tensor y;
    {
      NoGradGuard no_grad;
      y = m->forward(x);
    }
    try {
      backward(y, Tensor::zeros({4, 10}));
      ADD_FAILURE() << "backward after a no-grad forward did not throw";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("NoGradGuard"), std::string::npos) << e.what();
    }
  }
}

TEST(NoGrad, GradForwardKeepsActivationsUntilBackward) {
  auto m = make_reference_model("fmnist-cnn");
  Tensor x = ramp({4, 1, 28, 28});
  const int64_t live_before = memory_stats().live_bytes;
  Tensor y = m->forward(x);
  EXPECT_GT(memory_stats().live_bytes - live_before, 4 * 32 * 28 * 28 * 4) << "saved activations";
  backward(y, Tensor::full({4, 10}, 0.1f));
  EXPECT_THROW(backward(y, Tensor::zeros({4, 10})), Error);  // consumed by the first backward
  y = Tensor();
  EXPECT_EQ(memory_stats().live_bytes, live_before);
}

TEST(NoGrad, EvalPeakMemoryWellBelowTraining) {
  auto m = make_reference_model("fmnist-cnn");
  Tensor x = ramp({256, 1, 28, 28});

  m->train();
  int64_t base = memory_stats().live_bytes;
  reset_peak_memory();
  Tensor y = m->forward(x);
  const int64_t train_peak = memory_stats().peak_bytes - base;
  backward(y, Tensor::zeros({256, 10}));  // release what forward saved
  y = Tensor();

  m->eval();
  base = memory_stats().live_bytes;
  reset_peak_memory();
  {
    NoGradGuard no_grad;
    y = m->forward(x);
  }
  const int64_t eval_peak = memory_stats().peak_bytes - base;
  y = Tensor();
  RecordProperty("train_peak_bytes", std::to_string(train_peak));
  RecordProperty("eval_peak_bytes", std::to_string(eval_peak));
  EXPECT_LT(static_cast<double>(eval_peak), 0.6 * static_cast<double>(train_peak))
      << "eval/no-grad peak " << eval_peak << " B vs train peak " << train_peak << " B";
}

}  // namespace
}  // namespace lockstep
