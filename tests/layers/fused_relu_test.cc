// The fused BatchNorm+ReLU (BatchNorm::forward_relu, Sequential's BatchNorm-then-ReLU) and the
// fused residual add_relu against their unfused twins, relu(bn(x)) and relu(a + b): outputs,
// input gradients, parameter gradients and running statistics bit for bit, in train and eval mode,
// in both memory formats, with NaN and values whose output is exactly 0.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "layers/batch_norm.h"
#include "layers/relu.h"
#include "layers/sequential.h"
#include "runtime/grad_mode.h"
#include "runtime/ops.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

using testing::randn;

// Same bits (so NaN equals NaN) at every logical position, whatever the formats.
void expect_bitwise(const Tensor& a_any, const Tensor& b_any, const std::string& what) {
  ASSERT_EQ(a_any.defined(), b_any.defined()) << what;
  if (!a_any.defined()) return;
  ASSERT_EQ(a_any.shape(), b_any.shape()) << what;
  const Tensor a = a_any.contiguous(), b = b_any.contiguous();
  for (int64_t i = 0; i < a.numel(); ++i) {
    uint32_t ua, ub;
    std::memcpy(&ua, &a.data()[i], 4);
    std::memcpy(&ub, &b.data()[i], 4);
    ASSERT_EQ(ua, ub) << what << " at " << i << ": " << a[i] << " vs " << b[i];
  }
}

struct Run {
  Tensor y, dx;
  std::vector<Tensor> grads, buffers;
};

// A BatchNorm with random affine parameters and running statistics (the same for every seed), so
// some channels have a negative weight and eval mode normalises with non-trivial statistics.
std::unique_ptr<BatchNorm> make_bn(int dims, int64_t c, BatchNormOptions o) {
  o.num_features = c;
  auto bn = std::make_unique<BatchNorm>(dims, o);
  uint32_t seed = 11;
  for (auto& [name, p] : bn->named_parameters()) p->value.copy_from(randn(p->value.shape(), seed++, 0.8f, 0.2f));
  for (auto& [name, t] : bn->named_buffers()) {
    if (name == "running_mean") t->copy_from(randn(t->shape(), seed++, 0.5f));
    if (name == "running_var") t->copy_from(randn(t->shape(), seed++, 0.1f, 1.f));
  }
  return bn;
}

enum class Path { kUnfused, kForwardRelu, kSequential };

Run run_bn(Path path, int dims, BatchNormOptions o, bool train, const Tensor& x, const Tensor& dy) {
  const int64_t c = x.dim(1);
  Run r;
  testing::GradInput in(x);
  if (path == Path::kSequential) {
    Sequential seq;
    seq.add(make_bn(dims, c, o));
    seq.emplace<ReLU>();
    seq.train(train);
    r.y = seq.forward(in.value());
    r.y.backward(dy.to_format(r.y.memory_format()));
    for (Parameter* p : seq.parameters()) r.grads.push_back(p->grad.clone());
    for (auto& [name, t] : seq.named_buffers()) r.buffers.push_back(t->clone());
  } else {
    auto bn = make_bn(dims, c, o);
    ReLU relu_layer;
    bn->train(train);
    r.y = path == Path::kUnfused ? relu_layer.forward(bn->forward(in.value())) : bn->forward_relu(in.value());
    r.y.backward(dy.to_format(r.y.memory_format()));
    for (Parameter* p : bn->parameters()) r.grads.push_back(p->grad.clone());
    for (auto& [name, t] : bn->named_buffers()) r.buffers.push_back(t->clone());
  }
  r.dx = in.grad();
  return r;
}

void expect_fused_matches(int dims, BatchNormOptions o, bool train, const Tensor& x, const std::string& what) {
  const Tensor dy = randn(x.shape(), 7);
  const Run ref = run_bn(Path::kUnfused, dims, o, train, x, dy);
  for (Path p : {Path::kForwardRelu, Path::kSequential}) {
    const std::string w = what + (p == Path::kForwardRelu ? " forward_relu" : " Sequential(BN, ReLU)");
    const Run got = run_bn(p, dims, o, train, x, dy);
    expect_bitwise(got.y, ref.y, w + ": y");
    EXPECT_EQ(got.y.memory_format(), ref.y.memory_format()) << w;
    expect_bitwise(got.dx, ref.dx, w + ": dx");
    ASSERT_EQ(got.grads.size(), ref.grads.size()) << w;
    for (size_t i = 0; i < ref.grads.size(); ++i) expect_bitwise(got.grads[i], ref.grads[i], w + ": grad " + std::to_string(i));
    ASSERT_EQ(got.buffers.size(), ref.buffers.size()) << w;
    for (size_t i = 0; i < ref.buffers.size(); ++i)
      expect_bitwise(got.buffers[i], ref.buffers[i], w + ": buffer " + std::to_string(i));
  }
  // The fused call has a ReLU in it: some outputs are 0 and none is negative, so the test compares
  // something the ReLU changed.
  int zeros = 0;
  const Tensor y = ref.y.contiguous();
  for (float v : y.span()) {
    EXPECT_FALSE(v < 0.f) << what << ": " << v;
    zeros += v == 0.f;
  }
  EXPECT_GT(zeros, 0) << what;
}

TEST(FusedBatchNormReLU, MatchesReluOfBatchNormBitForBit) {
  const Tensor x4 = randn({4, 6, 5, 3}, 1, 2.f, 0.3f);
  for (bool train : {true, false}) {
    const std::string mode = train ? "train" : "eval";
    expect_fused_matches(2, {}, train, x4, mode + " NCHW");
    expect_fused_matches(2, {}, train, x4.to_channels_last(), mode + " NHWC");
    expect_fused_matches(2, {.momentum = std::nullopt}, train, x4, mode + " cumulative average");
    expect_fused_matches(2, {.affine = false}, train, x4.to_channels_last(), mode + " affine=false");
    expect_fused_matches(2, {.track_running_stats = false}, train, x4, mode + " no running stats");
    expect_fused_matches(1, {}, train, randn({9, 5}, 2), mode + " (N, C)");
    expect_fused_matches(1, {}, train, randn({3, 5, 4}, 3), mode + " (N, C, L)");
  }
}

TEST(FusedBatchNormReLU, NanAndExactZeroOutputsPassGradientsAsRelu) {
  // Channel 0 constant: its batch output is exactly 0 (x - mean = 0) in train mode, where relu's
  // gradient is 0. A NaN in channel 1 makes that channel NaN; relu passes NaN's gradient on.
  Tensor x = randn({4, 3, 2, 2}, 4);
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t i = 0; i < 4; ++i) x[(n * 3 + 0) * 4 + i] = 1.5f;
  x[(2 * 3 + 1) * 4 + 3] = std::numeric_limits<float>::quiet_NaN();
  for (bool train : {true, false}) {
    expect_fused_matches(2, {.affine = false}, train, x, train ? "train" : "eval");
    expect_fused_matches(2, {}, train, x.to_channels_last(), train ? "train NHWC" : "eval NHWC");
  }
}

TEST(FusedBatchNormReLU, NoGradForwardMatches) {
  NoGradGuard no_grad;
  const Tensor x = randn({4, 6, 5, 3}, 5, 2.f);
  auto a = make_bn(2, 6, {}), b = make_bn(2, 6, {});
  ReLU relu_layer;
  expect_bitwise(b->forward_relu(x), relu_layer.forward(a->forward(x)), "train, no grad");
  a->eval();
  b->eval();
  expect_bitwise(b->forward_relu(x), relu_layer.forward(a->forward(x)), "eval, no grad");
}

// relu(add(a, b)) against add_relu(a, b), with a gradient for each input that requires one.
void expect_add_relu_matches(const Tensor& a, const Tensor& b, bool grad_b, const std::string& what) {
  testing::GradInput ia1(a), ib1(b), ia2(a), ib2(b);
  const Tensor b1 = grad_b ? ib1.value() : b, b2 = grad_b ? ib2.value() : b;
  const Tensor ref = relu(add(ia1.value(), b1));
  const Tensor got = add_relu(ia2.value(), b2);
  expect_bitwise(got, ref, what + ": y");
  EXPECT_EQ(got.memory_format(), ref.memory_format()) << what;
  const Tensor dy = randn(ref.shape(), 9);
  ref.backward(dy.to_format(ref.memory_format()));
  got.backward(dy.to_format(got.memory_format()));
  expect_bitwise(ia2.grad(), ia1.grad(), what + ": grad a");
  if (grad_b) expect_bitwise(ib2.grad(), ib1.grad(), what + ": grad b");
}

TEST(AddRelu, MatchesReluOfAddBitForBit) {
  Tensor a = randn({2, 4, 3, 3}, 1), b = randn({2, 4, 3, 3}, 2);
  b[0] = -a[0];  // exactly 0: no gradient
  a[5] = std::numeric_limits<float>::quiet_NaN();  // NaN passes its gradient
  expect_add_relu_matches(a, b, true, "NCHW");
  expect_add_relu_matches(a.to_channels_last(), b.to_channels_last(), true, "NHWC");
  expect_add_relu_matches(a, b, false, "b without grad");
  expect_add_relu_matches(a.to_channels_last(), b, true, "mixed formats");
  expect_add_relu_matches(a, randn({4, 1, 1}, 3), true, "broadcast");
  EXPECT_THROW(add_relu(a, randn({5}, 4)), Error);
}

}  // namespace
}  // namespace lockstep
