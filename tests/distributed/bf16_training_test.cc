// bf16 data-parallel training (run under mpirun, np 1..4): fmnist-cnn with SyncBatchNorm trained
// through the distributed Trainer with TrainerOptions::precision = kBF16, kPerRank samples of each
// global batch per rank. The loss must fall (the mean of the last 5 steps below 0.7 of the first
// 5's), every rank must end with identical weights (the all-reduced gradients and the fp32
// optimizer are the same everywhere), and the first step's loss must be the fp32 step's to bf16
// accuracy (2e-2 relative: the logits carry a few bf16 roundings).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "comm/communicator.h"
#include "launcher/train/trainer.h"
#include "layers/init.h"
#include "layers/loss.h"
#include "layers/reference_models.h"
#include "layers/sync_batch_norm.h"
#include "runtime/data/dataset.h"
#include "runtime/data/distributed_sampler.h"
#include "runtime/optim/sgd.h"
#include "runtime/precision.h"
#include "tests/distributed/test_comm.h"

namespace lockstep {
namespace {

constexpr int64_t kPerRank = 32, kSteps = 40;
constexpr uint64_t kSeed = 3;

// The per-step global mean loss of kSteps steps in precision p; `model` ends trained.
std::vector<double> train(Precision p, int64_t steps, std::unique_ptr<Module>& model) {
  Communicator& comm = test_comm();
  static const Dataset data = load_fashion_mnist(LOCKSTEP_DATA_DIR, /*train=*/true);
  model = make_reference_model("fmnist-cnn");
  init_parameters(*model, kSeed);
  convert_sync_batchnorm(*model, comm);
  Sgd opt(model->parameters(), SgdOptions{.lr = 0.05f, .momentum = 0.9f});
  CrossEntropyLoss loss;
  Trainer trainer(*model, opt, loss, nullptr, TrainerOptions{.sample_shape = {1, 28, 28}, .precision = p},
                  DistributedOptions{.comm = &comm});
  DistributedSampler sampler(data.size(), {.global_batch = kPerRank * comm.size(), .rank = comm.rank(),
                                           .world = comm.size(), .seed = kSeed});
  std::vector<double> losses;
  Tensor x, y;
  for (int64_t s = 0; s < steps; ++s) {
    DistributedSampler::gather(data, sampler.shard(s), x, y);
    comm.set_phase(1, CommMode::kTrain);
    std::vector<double> l{trainer.train_step(x, y, sampler.first_global_row())};
    comm.all_reduce(std::span<double>(l), ReduceOp::kAverage).wait();
    losses.push_back(l[0]);
  }
  return losses;
}

TEST(Bf16Training, FmnistCnnLossFallsAndRanksAgree) {
  if (const std::string why = precision_unsupported(Precision::kBF16); !why.empty()) GTEST_SKIP() << why;
  Communicator& comm = test_comm();
  std::unique_ptr<Module> fp32_model, model;
  const std::vector<double> fp32 = train(Precision::kFP32, 1, fp32_model);
  const std::vector<double> bf16 = train(Precision::kBF16, kSteps, model);
  EXPECT_NEAR(bf16[0], fp32[0], 2e-2 * fp32[0]) << "first step's loss";
  const double first = std::accumulate(bf16.begin(), bf16.begin() + 5, 0.0) / 5;
  const double last = std::accumulate(bf16.end() - 5, bf16.end(), 0.0) / 5;
  EXPECT_LT(last, 0.7 * first) << "loss did not fall: " << first << " -> " << last;
  // Every rank holds rank 0's weights, bit for bit: the sum over ranks of (w - w_0)^2 is 0.
  for (auto& [name, t] : model->state_dict()) {
    std::vector<float> w0(t->data(), t->data() + t->numel());
    comm.broadcast(std::span<std::byte>(reinterpret_cast<std::byte*>(w0.data()), w0.size() * sizeof(float)), 0)
        .wait();
    for (int64_t i = 0; i < t->numel(); ++i) ASSERT_EQ((*t)[i], w0[i]) << name << " at " << i << " on rank " << comm.rank();
  }
}

}  // namespace
}  // namespace lockstep
