// The training loop (launcher/train/loop.h) on one process ("self" communicator): a run stopped
// by a hook at a step boundary and resumed from its position (epoch, epoch_step, the epoch's loss so
// far, weights and optimizer state carried in the process) takes the same steps, with the same
// per-step losses and epoch train loss to the last bit, as an uninterrupted run; the boundaries
// come as steps + 1 per epoch (Note [step boundary]).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "comm/factory.h"
#include "launcher/train/loop.h"
#include "layers/init.h"
#include "layers/loss.h"
#include "layers/reference_models.h"
#include "runtime/data/dataset.h"
#include "runtime/optim/lr_schedule.h"
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
    epoch_steps.push_back(pos.epoch_step);
    return boundaries == stop_at_;
  }
  void after_step(const TrainPosition& /*pos*/, const StepReport& r) override { lrs.push_back(r.lr); }
  bool at_epoch_end(EpochMetrics& m) override {
    train_losses.push_back(m.train_loss);
    return false;
  }
  std::vector<double> losses, train_losses, lrs;
  std::vector<int64_t> epoch_steps;  // pos.epoch_step at every boundary
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
  DistributedSampler sampler;
  explicit Replica1(TrainerOptions o = {.epochs = kEpochs}, int64_t batch = kBatch, const LrSchedule* schedule = nullptr)
      : sampler(kSamples, {.global_batch = batch, .seed = 5, .remainder = RemainderPolicy::kPad}) {
    init_parameters(*model, 3);
    opt = std::make_unique<Sgd>(model->parameters(), SgdOptions{.lr = 0.05f, .momentum = 0.9f});
    o.sample_shape = {784};
    trainer = std::make_unique<Trainer>(*model, *opt, loss, schedule, o, DistributedOptions{.comm = comm.get()});
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

// With accumulate_steps k an optimizer step takes k micro-batches; boundaries (and so checkpoints)
// come only between optimizer steps, an epoch's trailing (micro-batches mod k) are not trained on,
// and a run stopped at a boundary and resumed takes the same steps to the last bit.
TEST(TrainLoop, AccumulationStopsOnlyAtOptimizerStepsAndResumesBitForBit) {
  const Dataset data = small_set();
  constexpr int64_t kK = 3, kMicro = 20;  // 10 micro-batches an epoch: 3 optimizer steps, 1 left over
  const TrainerOptions o{.epochs = kEpochs, .accumulate_steps = kK};
  Replica1 whole(o, kMicro);
  Recorder all;
  const LoopResult done = train_loop(*whole.trainer, whole.sampler, data, all);
  const int64_t per_epoch = whole.sampler.num_steps() / kK;
  ASSERT_EQ(whole.sampler.num_steps(), 10);
  EXPECT_EQ(done.pos.step, static_cast<uint64_t>(kEpochs * per_epoch));
  EXPECT_EQ(all.losses.size(), static_cast<size_t>(kEpochs * per_epoch));
  EXPECT_EQ(all.boundaries, kEpochs * (per_epoch + 1));
  for (int64_t es : all.epoch_steps) EXPECT_EQ(es % kK, 0) << "a boundary inside an optimizer step";

  Replica1 split(o, kMicro);
  Recorder first(static_cast<int>(per_epoch + 1 + 2 + 1));  // before the 3rd step of epoch 2
  const LoopResult part = train_loop(*split.trainer, split.sampler, data, first);
  ASSERT_TRUE(part.stopped);
  EXPECT_EQ(part.pos.epoch_step, 2 * kK);
  Recorder rest;
  train_loop(*split.trainer, split.sampler, data, rest, part.pos);
  std::vector<double> losses = first.losses;
  losses.insert(losses.end(), rest.losses.begin(), rest.losses.end());
  EXPECT_EQ(losses, all.losses);
  EXPECT_EQ(rest.train_losses.back(), all.train_losses.back());
}

TEST(TrainLoop, AccumulationAboveTheEpochsMicroBatchesIsRefused) {
  const Dataset data = small_set();
  Replica1 r({.epochs = 1, .accumulate_steps = 8}, kBatch);  // 7 micro-batches an epoch
  Recorder rec;
  try {
    train_loop(*r.trainer, r.sampler, data, rec);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("accumulate_steps: 8 must be in [1, 7]"), std::string::npos) << e.what();
  }
}

// The well-known fault: a schedule stepped per micro-batch reaches the end of a W-step warm-up
// after W / k optimizer steps (10,000 steps at k = 4 peaked at step 2,500). Here it advances once
// per optimizer step: optimizer step j (0-based) uses base * (f + (1 - f) * min(j, W) / W), and
// each step's reported lr is the one it used.
TEST(TrainLoop, PerStepWarmupAdvancesOncePerOptimizerStepWithAccumulation) {
  const Dataset data = small_set();
  constexpr int64_t kK = 4, kMicro = 5, kW = 12;  // 40 micro-batches an epoch: 10 optimizer steps
  constexpr float kBase = 0.05f, kStart = 0.1f;
  const LinearWarmup warmup(std::make_unique<ConstantLr>(kBase), kStart, kW);
  Replica1 r({.epochs = 2, .accumulate_steps = kK, .schedule_interval = ScheduleInterval::kStep}, kMicro, &warmup);
  Recorder rec;
  const LoopResult done = train_loop(*r.trainer, r.sampler, data, rec);
  ASSERT_EQ(done.pos.step, 20u);
  ASSERT_EQ(rec.lrs.size(), 20u);
  for (size_t j = 0; j < rec.lrs.size(); ++j) {
    const double want = kBase * (kStart + (1.0 - kStart) * double(std::min<int64_t>(j, kW)) / kW);
    EXPECT_NEAR(rec.lrs[j], want, 1e-7) << "optimizer step " << j + 1;
  }
  // Peak first reached at optimizer step W + 1, not W / k + 1.
  EXPECT_LT(rec.lrs[kW - 1], kBase * 0.99);
  EXPECT_FLOAT_EQ(static_cast<float>(rec.lrs[kW]), kBase);
}

}  // namespace
}  // namespace lockstep
