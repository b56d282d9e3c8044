// Exact distributed eval (run under mpirun, np 1..4): a model trained a few steps in one process
// (the same on every rank), evaluated by the distributed Trainer on each rank's slice of the
// 10000-sample test set, gives exactly the single-process correct count (integers compared) and
// count 10000, for world sizes that do not divide 10000 (3) too. Ranks other than 0 have their BN
// running statistics spoiled first: the eval phase's broadcast from rank 0 must undo that.
// Also: the eval phase issues exactly two collectives (buffer broadcast, metric all-reduce), with
// the top-k hits and the confusion matrix folded into that one all-reduce; they equal counts made
// here from the single-process model's logits of the whole test set (a sort per sample, not the
// ClassCounts code), exactly, on every rank count (np 3: slices of 3334, 3333, 3333 samples).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "comm/communicator.h"
#include "layers/init.h"
#include "layers/loss.h"
#include "layers/reference_models.h"
#include "runtime/data/dataset.h"
#include "runtime/data/distributed_sampler.h"
#include "runtime/grad_mode.h"
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

    // The reference counts from the logits: order each row's classes by logit, largest first, ties
    // by lower index; the target's position decides top-k, position 0 is the prediction.
    const std::vector<int64_t> ks{1, 3, 5};
    const int64_t classes = 10;
    std::vector<int64_t> want_topk(ks.size(), 0), want_confusion(classes * classes, 0);
    {
      model->eval();
      NoGradGuard no_grad;
      Shape batch_shape{test.size()};
      batch_shape.insert(batch_shape.end(), sample.begin(), sample.end());
      const Tensor logits = model->forward(test.images(0, test.size()).reshape(batch_shape));  // (N, C)
      ASSERT_EQ(logits.dim(1), classes);
      for (int64_t i = 0; i < test.size(); ++i) {
        const float* z = logits.data() + i * classes;
        std::vector<int64_t> order(classes);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return z[a] > z[b]; });
        const int64_t t = test.labels[i];
        const auto pos = std::find(order.begin(), order.end(), t) - order.begin();
        for (size_t k = 0; k < ks.size(); ++k) want_topk[k] += pos < ks[k];
        ++want_confusion[t * classes + order[0]];
      }
      model->train();
    }

    Trainer dist(*model, opt, loss, nullptr, TrainerOptions{.sample_shape = sample, .top_k = ks},
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
    EXPECT_EQ(got.classes.num_classes, classes);
    EXPECT_EQ(got.classes.top_k, ks);
    EXPECT_EQ(got.classes.top_k_correct, want_topk) << "top-1, 3, 5 on " << comm.size() << " ranks";
    EXPECT_EQ(got.classes.confusion, want_confusion) << "on " << comm.size() << " ranks";
    EXPECT_EQ(want_topk[0], want.correct) << "top-1 is the accuracy";
    EXPECT_LT(want_topk[0], want_topk[1]);
    int64_t diagonal = 0;
    for (int64_t k = 0; k < classes; ++k) diagonal += got.classes.correct(k);
    EXPECT_EQ(diagonal, got.correct);
  }
}

// Fewer samples than ranks (np 3, 4: some slices are empty): the ranks still agree on the number of
// classes (the model's output width, not given), and the counts are those of one process.
TEST(DistributedEval, FewerSamplesThanRanksCountsExactly) {
  Communicator& comm = test_comm();
  const Dataset full = load_fashion_mnist(LOCKSTEP_DATA_DIR, /*train=*/false);
  Dataset two = full;  // the first two test samples
  two.labels.resize(2);
  two.pixels.resize(static_cast<size_t>(2 * full.sample_numel()));
  auto model = make_reference_model("fmnist-mlp");
  init_parameters(*model, 5);
  Sgd opt(model->parameters(), SgdOptions{.lr = 0.05f});
  CrossEntropyLoss loss;
  const TrainerOptions o{.sample_shape = reference_model_input("fmnist-mlp"), .top_k = {1, 10}};
  Trainer local(*model, opt, loss, nullptr, o);
  const EvalResult want = local.evaluate(two);
  Trainer dist(*model, opt, loss, nullptr, o, DistributedOptions{.comm = &comm});
  const EvalResult got = dist.evaluate(two);
  EXPECT_EQ(got.count, 2);
  EXPECT_EQ(got.correct, want.correct);
  EXPECT_EQ(got.classes.num_classes, 10);
  EXPECT_EQ(got.classes.top_k_correct, (std::vector<int64_t>{want.correct, 2})) << "top-10 of 10 classes holds all";
  EXPECT_EQ(got.classes.confusion, want.classes.confusion) << "on " << comm.size() << " ranks";
}

}  // namespace
}  // namespace lockstep
