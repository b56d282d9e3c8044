// A non-finite step is never hidden, and every rank decides about it alike (run under mpirun, np
// 1..4): the last rank's shard holds one sample of +inf pixels. With NonFiniteAction::kStop (plain
// BatchNorm) every rank throws NonFiniteStep naming that rank alone, with the weights as they were;
// with kSkipStep (SyncBatchNorm, whose statistics carry the infinity to every rank) every
// rank skips the step, and its weights, optimizer state and BatchNorm running statistics equal
// those from before the step, bit for bit; a following finite step trains again.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "layers/dropout.h"
#include "layers/init.h"
#include "layers/loss.h"
#include "layers/reference_models.h"
#include "layers/sync_batch_norm.h"
#include "runtime/data/dataset.h"
#include "runtime/data/distributed_sampler.h"
#include "runtime/optim/sgd.h"
#include "launcher/train/trainer.h"
#include "tests/distributed/test_comm.h"

namespace lockstep {
namespace {

constexpr int64_t kPerRank = 8;

struct Replica {
  std::unique_ptr<Module> model;
  std::unique_ptr<Sgd> opt;
  CrossEntropyLoss loss;
  std::unique_ptr<Trainer> trainer;
  Replica(Communicator& comm, NonFiniteAction action, bool sync_batchnorm) {
    model = make_reference_model("fmnist-mlp");
    init_parameters(*model, 5);
    if (sync_batchnorm && comm.size() > 1) convert_sync_batchnorm(*model, comm);
    seed_dropout(*model, 5, static_cast<uint32_t>(comm.rank()));
    opt = std::make_unique<Sgd>(model->parameters(), SgdOptions{.lr = 0.05f, .momentum = 0.9f});
    trainer = std::make_unique<Trainer>(*model, *opt, loss, nullptr,
                                        TrainerOptions{.sample_shape = {784}, .on_nonfinite = action},
                                        DistributedOptions{.comm = &comm});
  }
  std::vector<float> state() {  // weights, buffers and optimizer state, flattened
    std::vector<float> out;
    for (auto& [name, t] : model->state_dict()) out.insert(out.end(), t->data(), t->data() + t->numel());
    for (auto& [name, t] : opt->state_tensors()) out.insert(out.end(), t->data(), t->data() + t->numel());
    return out;
  }
};

void shard(Communicator& comm, int64_t step, bool poison, Tensor& x, Tensor& y) {
  static const Dataset data = load_fashion_mnist(LOCKSTEP_DATA_DIR, /*train=*/true);
  DistributedSampler sampler(data.size(), {.global_batch = kPerRank * comm.size(), .rank = comm.rank(),
                                           .world = comm.size(), .seed = 3});
  DistributedSampler::gather(data, sampler.shard(step), x, y);
  if (poison && comm.rank() == comm.size() - 1)
    for (int64_t i = 0; i < 784; ++i) x[i] = std::numeric_limits<float>::infinity();
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(NonFinite, StopThrowsOnEveryRankNamingTheRankAndKeepsTheWeights) {
  Communicator& comm = test_comm();
  Replica r(comm, NonFiniteAction::kStop, /*sync_batchnorm=*/false);  // only the last rank's loss is hit
  Tensor x, y;
  comm.set_phase(1, CommMode::kTrain);
  shard(comm, 0, false, x, y);
  r.trainer->train_step(x, y);  // a finite step: momentum buffers exist
  const std::vector<float> before = r.state();
  shard(comm, 1, true, x, y);
  try {
    r.trainer->train_step(x, y);
    FAIL() << "rank " << comm.rank() << ": a step with +inf pixels on rank " << comm.size() - 1 << " went through";
  } catch (const NonFiniteStep& e) {
    const std::string last = std::to_string(comm.size() - 1);
    const std::string what = e.what();
    EXPECT_EQ(what.find("non-finite loss on rank " + last + ";"), 0u) << what;
  }
  // Weights untouched (the running statistics saw the batch, as they do in PyTorch).
  std::vector<float> weights_before, weights_after;
  size_t at = 0;
  for (auto& [name, t] : r.model->state_dict()) {
    const bool is_param = name.find("running_") == std::string::npos && name.find("num_batches") == std::string::npos;
    if (is_param) {
      weights_before.insert(weights_before.end(), before.begin() + static_cast<std::ptrdiff_t>(at),
                            before.begin() + static_cast<std::ptrdiff_t>(at + static_cast<size_t>(t->numel())));
      weights_after.insert(weights_after.end(), t->data(), t->data() + t->numel());
    }
    at += static_cast<size_t>(t->numel());
  }
  EXPECT_FALSE(weights_before.empty());
  EXPECT_TRUE(same_bits(weights_after, weights_before)) << "rank " << comm.rank() << ": the weights changed";
}

TEST(NonFinite, SkipStepLeavesEverythingAsItWasOnEveryRank) {
  Communicator& comm = test_comm();
  Replica r(comm, NonFiniteAction::kSkipStep, /*sync_batchnorm=*/true);  // the global statistics reach every rank
  Tensor x, y;
  comm.set_phase(1, CommMode::kTrain);
  shard(comm, 0, false, x, y);
  r.trainer->train_step(x, y);
  EXPECT_FALSE(r.trainer->last_step_skipped());
  const std::vector<float> before = r.state();
  shard(comm, 1, true, x, y);
  r.trainer->train_step(x, y);
  EXPECT_TRUE(r.trainer->last_step_skipped()) << "rank " << comm.rank();
  // SyncBatchNorm's global statistics carry the infinity into every rank's loss.
  std::string all;
  for (int k = 0; k < comm.size(); ++k) all += (k ? ", " : "") + std::to_string(k);
  EXPECT_EQ(r.trainer->last_skip_reason(), std::string("non-finite loss on rank") + (comm.size() > 1 ? "s " : " ") + all);
  EXPECT_TRUE(same_bits(r.state(), before)) << "rank " << comm.rank() << ": a skipped step changed the state";
  shard(comm, 2, false, x, y);
  const double loss = r.trainer->train_step(x, y);
  EXPECT_FALSE(r.trainer->last_step_skipped());
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_FALSE(same_bits(r.state(), before)) << "a finite step after a skipped one did not train";
}

}  // namespace
}  // namespace lockstep
