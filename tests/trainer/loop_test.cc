// The training loop (launcher/train/loop.h) on one process ("self" communicator): a run stopped
// by a hook at a step boundary and resumed from its position (epoch, epoch_step, the epoch's loss so
// far, weights and optimizer state carried in the process) takes the same steps, with the same
// per-step losses and epoch train loss to the last bit, as an uninterrupted run; the boundaries
// come as steps + 1 per epoch (Note [step boundary]).
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "comm/factory.h"
#include "launcher/train/loop.h"
#include "layers/init.h"
#include "layers/loss.h"
#include "layers/reference_models.h"
#include "runtime/data/dataset.h"
#include "runtime/optim/sgd.h"

namespace lockstep {
namespace {

constexpr int64_t kSamples = 200, kBatch = 32, kEpochs = 2;  // 7 steps an epoch (the last padded)

// Records every boundary's global step loss and every epoch; stops at boundary number stop_at.
class Recorder : public LoopHooks {
 public:
  explicit Recorder(int stop_at = -1) : stop_at_(stop_at) {}
  bool at_boundary(const TrainPosition& pos, const StepSums& step, bool /*epoch_end*/) override {
    if (step.count > 0) losses.push_back(step.loss_sum / step.count);
    ++boundaries;
    last = pos;
    return boundaries == stop_at_;
  }
  bool at_epoch_end(EpochMetrics& m) override {
    train_losses.push_back(m.train_loss);
    return false;
  }
  std::vector<double> losses, train_losses;
  int boundaries = 0;
  TrainPosition last;

 private:
  const int stop_at_;
};

Dataset small_set() {
  Dataset ds = load_fashion_mnist(LOCKSTEP_DATA_DIR, /*train=*/true);
  ds.pixels.resize(static_cast<size_t>(kSamples * ds.sample_numel()));
  ds.labels.resize(static_cast<size_t>(kSamples));
  return ds;
}

CommSpec self_spec() {
  CommSpec s;
  s.backend = "self";
  return s;
}

// One process's model, optimizer and trainer on the "self" communicator.
struct Replica1 {
  std::unique_ptr<Communicator> comm = make_communicator(self_spec());
  std::unique_ptr<Module> model = make_reference_model("fmnist-mlp");
  std::unique_ptr<Sgd> opt;
  CrossEntropyLoss loss;
  std::unique_ptr<Trainer> trainer;
  DistributedSampler sampler{kSamples, {.global_batch = kBatch, .seed = 5, .remainder = RemainderPolicy::kPad}};
  Replica1() {
    init_parameters(*model, 3);
    opt = std::make_unique<Sgd>(model->parameters(), SgdOptions{.lr = 0.05f, .momentum = 0.9f});
    trainer = std::make_unique<Trainer>(*model, *opt, loss, nullptr,
                                        TrainerOptions{.epochs = kEpochs, .sample_shape = {784}},
                                        DistributedOptions{.comm = comm.get()});
  }
};

TEST(TrainLoop, StoppedAndResumedMidEpochTakesTheSameStepsBitForBit) {
  const Dataset data = small_set();
  Replica1 whole;
  Recorder all;
  const LoopResult done = train_loop(*whole.trainer, whole.sampler, data, all);
  const int64_t steps = whole.sampler.num_steps();
  ASSERT_EQ(steps, (kSamples + kBatch - 1) / kBatch);
  EXPECT_FALSE(done.stopped);
  EXPECT_EQ(all.boundaries, kEpochs * (steps + 1));
  ASSERT_EQ(all.losses.size(), static_cast<size_t>(kEpochs * steps));
  ASSERT_EQ(all.train_losses.size(), static_cast<size_t>(kEpochs));
  EXPECT_EQ(done.pos.step, static_cast<uint64_t>(kEpochs * steps));

  // Stop at the boundary before step 3 of epoch 2, then go on from there in the same process.
  Replica1 split;
  Recorder first(static_cast<int>(steps + 1 + 3 + 1));
  const LoopResult part = train_loop(*split.trainer, split.sampler, data, first);
  ASSERT_TRUE(part.stopped);
  EXPECT_EQ(part.pos.epoch, 1);
  EXPECT_EQ(part.pos.epoch_step, 3);
  EXPECT_EQ(part.pos.step, static_cast<uint64_t>(steps + 3));
  Recorder rest;
  const LoopResult end = train_loop(*split.trainer, split.sampler, data, rest, part.pos);
  EXPECT_FALSE(end.stopped);
  std::vector<double> losses = first.losses;
  losses.insert(losses.end(), rest.losses.begin(), rest.losses.end());
  EXPECT_EQ(losses, all.losses);
  ASSERT_EQ(first.train_losses.size() + rest.train_losses.size(), static_cast<size_t>(kEpochs));
  EXPECT_EQ(first.train_losses[0], all.train_losses[0]);
  EXPECT_EQ(rest.train_losses[0], all.train_losses[1]) << "the resumed epoch's loss counts its first steps";
}

}  // namespace
}  // namespace lockstep
