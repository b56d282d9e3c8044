// Kernel microbenchmarks (Google Benchmark) at the shapes of the reference models, batch 128:
// GEMM, convolution forward/backward, 2x2 max pooling, BatchNorm2d and Dropout, train mode.
// Run: build/bench/kernels_bench (one thread).
#include <benchmark/benchmark.h>

#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/init.h"
#include "layers/max_pool2d.h"
#include "runtime/gemm.h"
#include "runtime/philox.h"

namespace lockstep {
namespace {

Tensor random(Shape s) {
  Tensor t = Tensor::empty(s);
  Philox(RngState{1, 0, RngStream::kTest, 0}).uniform(0, t.data(), t.numel());
  return t;
}

void BM_Gemm(benchmark::State& st) {
  const int m = static_cast<int>(st.range(0)), n = static_cast<int>(st.range(1)), k = static_cast<int>(st.range(2));
  Tensor a = random({m, k}), b = random({n, k}), c = Tensor::zeros({m, n});
  for (auto _ : st) gemm(false, true, m, n, k, 1.f, a.data(), k, b.data(), k, 0.f, c.data(), n);
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Gemm)->Args({128, 512, 784})->Args({128, 128, 3136})->Args({64, 196, 288});

void BM_Conv2dTrainStep(benchmark::State& st) {
  const int64_t cin = st.range(0), cout = st.range(1), hw = st.range(2);
  Conv2d conv(Conv2dOptions{.in_channels = cin, .out_channels = cout, .kernel = 3, .padding = 1});
  init_parameters(conv, 1);
  Tensor x = random({128, cin, hw, hw});
  Tensor dy = random({128, cout, hw, hw});
  for (auto _ : st) {
    benchmark::DoNotOptimize(conv.forward(x));
    benchmark::DoNotOptimize(conv.backward(dy));
  }
  st.SetItemsProcessed(st.iterations() * 128);
}
BENCHMARK(BM_Conv2dTrainStep)->Args({1, 32, 28})->Args({32, 64, 14});

void BM_MaxPool2x2TrainStep(benchmark::State& st) {
  MaxPool2d pool(2);
  Tensor x = random({128, 32, 28, 28}), dy = random({128, 32, 14, 14});
  for (auto _ : st) {
    benchmark::DoNotOptimize(pool.forward(x));
    benchmark::DoNotOptimize(pool.backward(dy));
  }
  st.SetItemsProcessed(st.iterations() * 128);
}
BENCHMARK(BM_MaxPool2x2TrainStep);

void BM_BatchNorm2dTrainStep(benchmark::State& st) {
  BatchNorm2d bn(BatchNormOptions{.num_features = 32});
  Tensor x = random({128, 32, 28, 28}), dy = random({128, 32, 28, 28});
  for (auto _ : st) {
    benchmark::DoNotOptimize(bn.forward(x));
    benchmark::DoNotOptimize(bn.backward(dy));
  }
  st.SetItemsProcessed(st.iterations() * 128);
}
BENCHMARK(BM_BatchNorm2dTrainStep);

void BM_DropoutForward(benchmark::State& st) {
  Dropout d(0.25f);
  d.seed(1, 0, 0);
  Tensor x = random({128, 64, 7, 7});
  for (auto _ : st) benchmark::DoNotOptimize(d.forward(x));
  st.SetItemsProcessed(st.iterations() * 128);
}
BENCHMARK(BM_DropoutForward);

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  lockstep::set_kernel_threads(1);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
