// The training loop with augmentation and prefetching (TrainerOptions::input): per-step losses are
// bit for bit the same with batches gathered on a background thread (prefetch 2) as on the
// training thread (prefetch 0); augmentation changes the training batches and never the eval; a
// run stopped mid-epoch and resumed continues bit for bit; an exception thrown mid-epoch leaves the
// loop without a hang (a hang fails through the CTest timeout).
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
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

constexpr int64_t kSamples = 160, kBatch = 32, kEpochs = 2;  // 5 steps an epoch

class Recorder : public LoopHooks {
 public:
  explicit Recorder(int stop_at = -1, int throw_after = -1) : stop_at_(stop_at), throw_after_(throw_after) {}
  bool at_boundary(const TrainPosition&, const StepSums& step, bool) override {
    if (step.count > 0) losses.push_back(step.loss_sum / step.count);
    return ++boundaries == stop_at_;
  }
  void after_step(const TrainPosition& pos, const StepReport&) override {
    if (static_cast<int>(pos.step) == throw_after_) throw std::runtime_error("hook failed");
  }
  std::vector<double> losses;
  int boundaries = 0;

 private:
  const int stop_at_, throw_after_;
};

const Dataset& small_set() {  // loaded once: reading the set is most of this file's run time
  static const Dataset ds = [] {
    Dataset d = load_fashion_mnist(LOCKSTEP_DATA_DIR, /*train=*/true);
    d.pixels.resize(static_cast<size_t>(kSamples * d.sample_numel()));
    d.labels.resize(static_cast<size_t>(kSamples));
    return d;
  }();
  return ds;
}

struct Replica1 {
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<Module> model = make_reference_model("fmnist-mlp");
  std::unique_ptr<Sgd> opt;
  CrossEntropyLoss loss;
  std::unique_ptr<Trainer> trainer;
  DistributedSampler sampler{kSamples, {.global_batch = kBatch, .seed = 5}};
  explicit Replica1(InputOptions in) {
    CommSpec spec;
    spec.backend = "self";
    comm = make_communicator(spec);
    init_parameters(*model, 3);
    opt = std::make_unique<Sgd>(model->parameters(), SgdOptions{.lr = 0.05f, .momentum = 0.9f});
    trainer = std::make_unique<Trainer>(*model, *opt, loss, nullptr,
                                        TrainerOptions{.epochs = kEpochs, .sample_shape = {784}, .input = in},
                                        DistributedOptions{.comm = comm.get()});
  }
};

const AugmentOptions kAugment{.crop_padding = 4, .horizontal_flip = true, .seed = 5};

std::vector<double> losses_of(InputOptions in) {
  const Dataset& data = small_set();
  Replica1 run(in);
  Recorder rec;
  train_loop(*run.trainer, run.sampler, data, rec);
  EXPECT_EQ(rec.losses.size(), static_cast<size_t>(kEpochs * kSamples / kBatch));
  return rec.losses;
}

TEST(InputPipeline, PrefetchedTrainingIsBitIdenticalAndAugmentationIsApplied) {
  const std::vector<double> plain0 = losses_of({.prefetch_batches = 0});
  EXPECT_EQ(losses_of({.prefetch_batches = 2}), plain0);
  const std::vector<double> aug0 = losses_of({.augment = kAugment, .prefetch_batches = 0});
  EXPECT_EQ(losses_of({.augment = kAugment, .prefetch_batches = 2}), aug0);
  EXPECT_EQ(losses_of({.augment = kAugment, .prefetch_batches = 5}), aug0);
  ASSERT_EQ(aug0.size(), plain0.size());
  EXPECT_NE(aug0[0], plain0[0]) << "the same weights see other images at step 1";
}

TEST(InputPipeline, EvalIsNeverAugmented) {
  const Dataset& data = small_set();
  Replica1 plain({.prefetch_batches = 0}), augmented({.augment = kAugment});
  const EvalResult a = plain.trainer->evaluate(data), b = augmented.trainer->evaluate(data);
  EXPECT_EQ(a.loss_sum, b.loss_sum);
  EXPECT_EQ(a.correct, b.correct);
  EXPECT_EQ(a.count, kSamples);
}

TEST(InputPipeline, StoppedAndResumedMidEpochWithAugmentationTakesTheSameSteps) {
  const InputOptions in{.augment = kAugment, .prefetch_batches = 2};
  const std::vector<double> all = losses_of(in);
  const Dataset& data = small_set();
  Replica1 split(in);
  const int64_t steps = split.sampler.num_steps();
  Recorder first(static_cast<int>(steps + 1 + 2 + 1));  // the boundary before step 2 of epoch 2
  const LoopResult part = train_loop(*split.trainer, split.sampler, data, first);
  ASSERT_TRUE(part.stopped);
  ASSERT_EQ(part.pos.epoch_step, 2);
  Recorder rest;
  train_loop(*split.trainer, split.sampler, data, rest, part.pos);
  std::vector<double> losses = first.losses;
  losses.insert(losses.end(), rest.losses.begin(), rest.losses.end());
  EXPECT_EQ(losses, all);
}

TEST(InputPipeline, AnExceptionMidEpochLeavesTheLoopWithoutAHang) {
  const Dataset& data = small_set();
  for (int64_t depth : {1, 2}) {
    Replica1 run({.augment = kAugment, .prefetch_batches = depth});
    Recorder rec(-1, /*throw_after=*/2);
    EXPECT_THROW(train_loop(*run.trainer, run.sampler, data, rec), std::runtime_error);
  }
}

}  // namespace
}  // namespace lockstep
