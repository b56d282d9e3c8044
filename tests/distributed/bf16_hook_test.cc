// Training with bf16_compress_hook (ReducerOptions::comm_hook = kBf16Compress, the job's
// distributed.comm_hook: BF16_COMPRESS_HOOK) against the default fp32 all-reduce, on 1..4 ranks:
// two replicas of fmnist-mlp from the same weights, on the same shards, one per hook, for kSteps
// steps of SGD (lr 0.05, momentum 0.9).
//
// Tolerance: a bf16 gradient carries a relative error of up to about n * 2^-8 per element (each
// rank's gradient rounded, then n - 1 partial sums), so each weight's update differs by about that
// share of the update; the weights feed it back into later gradients. Held per tensor to
//   max |w_bf16 - w_fp32| <= kMoveRtolPerRank * n * max(max |w_fp32 - w_start|, kMoveFloor)
// (measured after 5 steps: 0.015 n of the largest move, on 1 to 4 ranks), the floor covering the
// biases of Linear layers followed by BatchNorm, whose gradients are rounding noise (~1e-11); and
// the losses, which see these weights, agree to kLossRtol = 1e-3 relative.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm/reducer.h"
#include "layers/dropout.h"
#include "layers/init.h"
#include "layers/loss.h"
#include "layers/reference_models.h"
#include "runtime/data/dataset.h"
#include "runtime/data/distributed_sampler.h"
#include "runtime/optim/sgd.h"
#include "launcher/train/trainer.h"
#include "tests/distributed/test_comm.h"

namespace lockstep {
namespace {

constexpr int64_t kPerRank = 32, kSteps = 5;
constexpr double kLossRtol = 1e-3, kMoveRtolPerRank = 2.5e-2, kMoveFloor = 1e-6;
constexpr uint64_t kSeed = 5;

struct Replica {
  std::unique_ptr<Module> model = make_reference_model("fmnist-mlp");
  std::unique_ptr<Sgd> opt;
  CrossEntropyLoss loss;
  std::unique_ptr<Trainer> trainer;
  Replica(Communicator& comm, CommHook hook) {
    init_parameters(*model, kSeed);
    seed_dropout(*model, kSeed, static_cast<uint32_t>(comm.rank()));  // both replicas draw the same masks
    opt = std::make_unique<Sgd>(model->parameters(), SgdOptions{.lr = 0.05f, .momentum = 0.9f});
    DistributedOptions d{.comm = &comm};
    d.reducer.comm_hook = hook;
    trainer = std::make_unique<Trainer>(*model, *opt, loss, nullptr, TrainerOptions{.sample_shape = {784}}, d);
  }
};

TEST(Bf16CompressHook, TrainingMatchesTheFp32AllReduceWithinRounding) {
  Communicator& comm = test_comm();
  const int world = comm.size(), rank = comm.rank();
  const Dataset data = load_fashion_mnist(LOCKSTEP_DATA_DIR, /*train=*/false);
  Replica fp32(comm, CommHook::kAllReduce), bf16(comm, CommHook::kBf16Compress);
  DistributedSampler sampler(data.size(), {.global_batch = kPerRank * world, .rank = rank, .world = world,
                                           .seed = kSeed});
  std::vector<Tensor> start;
  for (auto& [name, p] : fp32.model->named_parameters()) start.push_back(p->value.clone());
  Tensor x, y;
  comm.set_phase(1, CommMode::kTrain);
  for (int64_t s = 0; s < kSteps; ++s) {
    DistributedSampler::gather(data, sampler.shard(s), x, y);
    const double want = fp32.trainer->train_step(x, y);
    const double got = bf16.trainer->train_step(x, y);
    ASSERT_NEAR(got, want, kLossRtol * std::fabs(want)) << "loss of step " << s << " on rank " << rank;
  }
  EXPECT_EQ(bf16.trainer->reducer()->stats().bytes * 2, fp32.trainer->reducer()->stats().bytes);
  auto got = bf16.model->named_parameters(), want = fp32.model->named_parameters();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const Tensor& a = got[i].second->value;
    const Tensor& b = want[i].second->value;
    const Tensor& b0 = start[i];
    double moved = 0, worst = 0;
    for (int64_t j = 0; j < b.numel(); ++j) {
      moved = std::max(moved, std::fabs(double(b[j]) - b0[j]));
      worst = std::max(worst, std::fabs(double(a[j]) - b[j]));
    }
    EXPECT_LE(worst, kMoveRtolPerRank * world * std::max(moved, kMoveFloor)) << got[i].first << " after " << kSteps << " steps on rank " << rank
                                        << " of " << world << " (moved up to " << moved << ")";
  }
}

}  // namespace
}  // namespace lockstep
