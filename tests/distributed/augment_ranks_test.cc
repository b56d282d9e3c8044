// Augmented, prefetched training on N ranks (mpirun, np 1..4) against one process on the global
// batch: every rank runs the training loop (train_loop) with random crop and flip and a prefetch
// thread on its shards; a reference trainer in the same process takes each whole global batch,
// augmented with the per-sample draws directly (gather_augmented). The MLP has BatchNorm and dropout:
// SyncBatchNorm and per-sample dropout keying make the N-rank step the global batch's step. The per-step global losses must
// agree within float reassociation, which holds only if sample i is cropped and flipped alike
// whatever the world size and whichever rank holds it.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "launcher/train/loop.h"
#include "layers/dropout.h"
#include "layers/init.h"
#include "layers/loss.h"
#include "layers/reference_models.h"
#include "layers/sync_batch_norm.h"
#include "runtime/data/augment.h"
#include "runtime/optim/sgd.h"
#include "tests/distributed/test_comm.h"

namespace lockstep {
namespace {

constexpr int64_t kGlobalBatch = 24, kSteps = 6;  // 24: a multiple of 1, 2, 3 and 4 ranks
constexpr uint64_t kSeed = 17;
constexpr double kRtol = 1e-4;  // a few float sums in another order, over kSteps steps of an MLP

// Records each step's global mean loss; stops after kSteps steps.
class Losses : public LoopHooks {
 public:
  bool at_boundary(const TrainPosition& pos, const StepSums& step, bool) override {
    if (step.count > 0) losses.push_back(step.loss_sum / step.count);
    return pos.step >= static_cast<uint64_t>(kSteps);
  }
  std::vector<double> losses;
};

TEST(AugmentRanks, AugmentedPrefetchedTrainingOnNRanksMatchesOneProcessOnTheGlobalBatch) {
  Communicator& comm = test_comm();
  const Dataset data = load_fashion_mnist(LOCKSTEP_DATA_DIR, /*train=*/true);
  const AugmentOptions augment{.crop_padding = 3, .horizontal_flip = true, .seed = kSeed};

  // The replica as a data-parallel job builds it: SyncBatchNorm, per-sample dropout keying.
  auto model = make_reference_model("fmnist-mlp");
  init_parameters(*model, kSeed);
  convert_sync_batchnorm(*model, comm);
  seed_dropout(*model, kSeed, static_cast<uint32_t>(comm.rank()), DropoutKeying::kPerSample);
  Sgd opt(model->parameters(), SgdOptions{.lr = 0.05f, .momentum = 0.9f});
  CrossEntropyLoss loss;
  Trainer trainer(*model, opt, loss, nullptr,
                  {.epochs = 1, .sample_shape = {784}, .input = {.augment = augment, .prefetch_batches = 2}},
                  {.comm = &comm, .per_sample_dropout = true});
  DistributedSampler sampler(data.size(), {.global_batch = kGlobalBatch, .rank = comm.rank(), .world = comm.size(),
                                           .seed = kSeed});
  Losses got;
  ASSERT_TRUE(train_loop(trainer, sampler, data, got).stopped);
  ASSERT_EQ(got.losses.size(), static_cast<size_t>(kSteps));

  auto ref = make_reference_model("fmnist-mlp");
  init_parameters(*ref, kSeed);
  seed_dropout(*ref, kSeed, 0, DropoutKeying::kPerSample);
  Sgd ref_opt(ref->parameters(), SgdOptions{.lr = 0.05f, .momentum = 0.9f});
  CrossEntropyLoss ref_loss;
  Trainer ref_trainer(*ref, ref_opt, ref_loss, nullptr, {.sample_shape = {784}}, {.per_sample_dropout = true});
  Tensor gx, gy, px, py;
  for (int64_t s = 0; s < kSteps; ++s) {
    gather_augmented(data, sampler.global_batch(s), augment, /*epoch=*/0, gx, gy);
    const double want = ref_trainer.train_step(gx, gy);
    EXPECT_NEAR(got.losses[static_cast<size_t>(s)], want, kRtol * std::fabs(want))
        << "step " << s << " on rank " << comm.rank() << " of " << comm.size();
    if (s == 0) {  // the augmentation changes the batch: else this test could not tell it was applied
      DistributedSampler::gather(data, sampler.global_batch(s), px, py);
      EXPECT_NE(std::vector<float>(gx.data(), gx.data() + gx.numel()),
                std::vector<float>(px.data(), px.data() + px.numel()));
    }
  }
}

}  // namespace
}  // namespace lockstep
