// Exact distributed eval (run under mpirun, np 1..4): a model trained a few steps in one process
// (the same on every rank), evaluated by the distributed Trainer on each rank's slice of the
// 10000-sample test set, gives exactly the single-process correct count (integers compared) and
// count 10000, for world sizes that do not divide 10000 (3) too. Ranks other than 0 have their BN
// running statistics spoiled first: the eval phase's broadcast from rank 0 must undo that.
// Also: the eval phase issues exactly two collectives (buffer broadcast, metric all-reduce).
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "comm/communicator.h"
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

TEST(DistributedEval, AccuracyEqualsSingleProcessExactly) {
  Communicator& comm = test_comm();
  const Dataset train = load_fashion_mnist(LOCKSTEP_DATA_DIR, /*train=*/true);
  const Dataset test = load_fashion_mnist(LOCKSTEP_DATA_DIR, /*train=*/false);
  // The MLP only: the CNN's eval of 10000 samples on every oversubscribed rank costs minutes, and
  // exactness is about slicing and summing, not the model.
  for (const char* name : {"fmnist-mlp"}) {
    SCOPED_TRACE(name);
    auto model = make_reference_model(name);
    init_parameters(*model, 3);
    Sgd opt(model->parameters(), SgdOptions{.lr = 0.05f, .momentum = 0.9f});
    CrossEntropyLoss loss;
    const Shape sample = reference_model_input(name);
    Trainer local(*model, opt, loss, nullptr, TrainerOptions{.sample_shape = sample});
    Tensor x, y;
    std::vector<int64_t> idx(64);
    for (int64_t s = 0; s < 5; ++s) {  // file order, identical on every rank
      std::iota(idx.begin(), idx.end(), s * 64);
      DistributedSampler::gather(train, idx, x, y);
      local.train_step(x, y);
    }
    const EvalResult want = local.evaluate(test);

    Trainer dist(*model, opt, loss, nullptr, TrainerOptions{.sample_shape = sample},
                 DistributedOptions{.comm = &comm});
    if (comm.rank() != 0)
      for (auto& [n, t] : model->named_buffers()) t->fill(0.5f + float(comm.rank()));
    const uint64_t before = comm.collectives_issued();
    const EvalResult got = dist.evaluate(test);
    EXPECT_EQ(comm.collectives_issued() - before, 2u) << "buffer broadcast and one metric all-reduce";
    EXPECT_EQ(got.count, test.size());
    EXPECT_EQ(got.correct, want.correct) << "on " << comm.size() << " ranks";
    EXPECT_NEAR(got.loss_sum, want.loss_sum, 1e-6 * want.loss_sum);
    EXPECT_GT(want.correct, 1000) << "the model has learnt something";
  }
}

}  // namespace
}  // namespace lockstep
