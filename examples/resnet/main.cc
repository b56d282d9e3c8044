// A user's own model trained data-parallel with lockstep: a small residual network on Fashion-MNIST,
// SyncBatchNorm across ranks, each rank training on its shard of every global batch of 128.
//   cmake -S examples/resnet -B build-example -DCMAKE_PREFIX_PATH=<lockstep prefix> && cmake --build build-example
//   mpirun -np 2 build-example/resnet_example [DATA_DIR] [STEPS]     (without mpirun: one process)
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "comm/factory.h"
#include "launcher/train/trainer.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/sync_batch_norm.h"
#include "runtime/gemm.h"
#include "runtime/ops.h"
#include "runtime/optim/sgd.h"

using namespace lockstep;

std::unique_ptr<Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride) {
  return std::make_unique<Conv2d>(Conv2dOptions{.in_channels = in, .out_channels = out, .kernel = k,
                                                .stride = stride, .padding = k / 2, .bias = false});
}
std::unique_ptr<BatchNorm2d> bn(int64_t c) { return std::make_unique<BatchNorm2d>(BatchNormOptions{.num_features = c}); }

// relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), shortcut: identity, or 1x1 conv + bn when the
// shape changes.  x: (N, in, H, W) -> (N, out, H / stride, W / stride)
class Block : public Module {
 public:
  Block(int64_t in, int64_t out, int64_t stride)
      : conv1_(register_module("conv1", conv(in, out, 3, stride))), bn1_(register_module("bn1", bn(out))),
        conv2_(register_module("conv2", conv(out, out, 3, 1))), bn2_(register_module("bn2", bn(out))) {
    if (stride == 1 && in == out) return;
    proj_ = &register_module("proj", conv(in, out, 1, stride));
    proj_bn_ = &register_module("proj_bn", bn(out));
  }
  Tensor forward(const Tensor& x) override {
    return relu(bn2_(conv2_(relu(bn1_(conv1_(x))))) + (proj_ ? (*proj_bn_)((*proj_)(x)) : x));
  }

 private:
  Conv2d& conv1_; BatchNorm2d& bn1_; Conv2d& conv2_; BatchNorm2d& bn2_;
  Conv2d* proj_ = nullptr; BatchNorm2d* proj_bn_ = nullptr;
};

// x: (N, 1, 28, 28) -> stem (N, 16, 28, 28) -> block1 (same) -> block2 (N, 32, 14, 14) -> mean (N, 32) -> (N, 10)
class SmallResNet : public Module {
 public:
  Tensor forward(const Tensor& x) override { return fc_(mean(block2_(block1_(relu(bn_(stem_(x))))), {2, 3})); }

 private:
  Conv2d& stem_ = register_module("stem", conv(1, 16, 3, 1));
  BatchNorm2d& bn_ = register_module("bn", bn(16));
  Block& block1_ = register_module("block1", std::make_unique<Block>(16, 16, 1));  // identity shortcut
  Block& block2_ = register_module("block2", std::make_unique<Block>(16, 32, 2));  // projection
  Linear& fc_ = register_module("fc", std::make_unique<Linear>(32, 10));
};

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  int64_t steps = 200;
  if (argc > 2) {
    const std::string_view arg = argv[2];
    const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), steps);
    if (ec != std::errc() || end != arg.data() + arg.size() || steps < 1 || steps > 1000000) {
      std::fprintf(stderr, "usage: %s [DATA_DIR] [STEPS]: STEPS must be a whole number in [1, 1000000], got \"%s\"\n",
                   argv[0], argv[2]);
      return 2;
    }
  }
  // "mpi" under mpirun or srun, else "self"; it must outlive the model and the trainer.
  std::unique_ptr<Communicator> comm = make_communicator({.backend = default_backend()});
  set_kernel_threads(1);  // one thread per rank, as `lockstep train`: ranks, not threads, fill the cores
  try {
    SmallResNet model;
    init_parameters(model, /*seed=*/1);    // rank 0's weights are broadcast by the trainer anyway
    convert_sync_batchnorm(model, *comm);  // batch statistics of the global batch
    Sgd opt(model.parameters(), {.lr = 0.05f, .momentum = 0.9f});
    CrossEntropyLoss loss;
    Trainer trainer(model, opt, loss, /*schedule=*/nullptr, {.sample_shape = {1, 28, 28}}, {.comm = comm.get()});
    const Dataset train = load_fashion_mnist(dir, /*train=*/true);
    DistributedSampler sampler(train.size(), {.global_batch = 128, .rank = comm->rank(), .world = comm->size()});
    trainer.begin_phase(CommMode::kTrain);
    Tensor x, y;
    for (int64_t step = 0; step < steps; ++step) {
      if (step % sampler.num_steps() == 0) sampler.set_epoch(step / sampler.num_steps());
      DistributedSampler::gather(train, sampler.shard(step % sampler.num_steps()), x, y);
      std::vector<double> l{trainer.train_step(x, y, sampler.first_global_row())};  // this rank's shard
      if ((step + 1) % 10 != 0 && step + 1 != steps) continue;
      comm->all_reduce(std::span<double>(l), ReduceOp::kAverage).wait();  // equal shards: the global mean
      if (comm->rank() == 0) std::printf("step %lld loss %.4f\n", static_cast<long long>(step + 1), l[0]);
    }
    const EvalResult test = trainer.evaluate(load_fashion_mnist(dir, /*train=*/false));
    if (comm->rank() == 0) std::printf("test accuracy %.4f loss %.4f (%d ranks)\n", test.accuracy(), test.loss(), comm->size());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", comm->rank(), e.what());
    comm->abort(1);  // the other ranks would wait in their next collective until its timeout
  }
}
