// Gradient accumulation and clipping through the distributed Trainer (run under mpirun, np 1..4):
// every rank takes accumulate_steps micro-batches per optimizer step, all but the last under the
// reducer's no_sync, then clips the averaged gradients by norm. Checked against one process
// training on each step's whole effective batch (k * global micro-batch) in one piece: the same
// weights and the same pre-clip norm within float reassociation; and the reducer synced once per
// optimizer step, never on the micro-batches before the last.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "launcher/train/trainer.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/relu.h"
#include "layers/sequential.h"
#include "runtime/optim/sgd.h"
#include "tests/distributed/test_comm.h"

namespace lockstep {
namespace {

constexpr int64_t kPerRank = 6, kK = 3, kSteps = 3, kIn = 40;

std::unique_ptr<Sequential> mlp() {
  auto m = std::make_unique<Sequential>();
  m->emplace<Linear>(kIn, 32);
  m->emplace<ReLU>();
  m->emplace<Linear>(32, 10);
  init_parameters(*m, 21);
  return m;
}

// Rows [first, first + n) of a fixed synthetic data set, the same on every rank: x (n, kIn), y (n).
MicroBatch rows(int64_t first, int64_t n) {
  MicroBatch m{Tensor::empty({n, kIn}), Tensor::empty({n}), 0};
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = first + i;
    for (int64_t j = 0; j < kIn; ++j) m.x[i * kIn + j] = static_cast<float>(std::sin(0.37 * double(r) + 1.3 * double(j)));
    m.y[i] = static_cast<float>((r * 7) % 10);
  }
  return m;
}

TEST(Accumulation, NRanksWithNoSyncMatchOneProcessOnTheEffectiveBatch) {
  Communicator& comm = test_comm();
  const int64_t world = comm.size(), rank = comm.rank(), global = kPerRank * world;
  const GradClip clip{.max_norm = 0.05};

  auto model = mlp();
  Sgd opt(model->parameters(), SgdOptions{.lr = 0.05f, .momentum = 0.9f});
  CrossEntropyLoss loss;
  Trainer trainer(*model, opt, loss, nullptr,
                  TrainerOptions{.sample_shape = {kIn}, .accumulate_steps = kK, .clip = clip},
                  DistributedOptions{.comm = &comm});
  auto ref_model = mlp();
  Sgd ref_opt(ref_model->parameters(), SgdOptions{.lr = 0.05f, .momentum = 0.9f});
  CrossEntropyLoss ref_loss;
  Trainer ref(*ref_model, ref_opt, ref_loss, nullptr, TrainerOptions{.sample_shape = {kIn}, .clip = clip});

  for (int64_t t = 0; t < kSteps; ++t) {
    const int64_t base = t * kK * global;  // this step's effective batch starts here
    std::vector<MicroBatch> mine;
    for (int64_t i = 0; i < kK; ++i) mine.push_back(rows(base + i * global + rank * kPerRank, kPerRank));
    trainer.train_step(mine);
    const MicroBatch all = rows(base, kK * global);
    ref.train_step(std::span<const MicroBatch>(&all, 1));
    EXPECT_NEAR(trainer.last_grad_norm(), ref.last_grad_norm(), 1e-5 * ref.last_grad_norm()) << "step " << t + 1;
    EXPECT_GT(ref.last_grad_norm(), clip.max_norm) << "the test must clip";
  }
  auto ps = model->named_parameters(), rs = ref_model->named_parameters();
  for (size_t p = 0; p < ps.size(); ++p) {
    const Tensor& a = ps[p].second->value;
    const Tensor& b = rs[p].second->value;
    double worst = 0;
    for (int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
    EXPECT_LE(worst, 1e-5) << ps[p].first << " on rank " << rank << " of " << world;
  }
  const ReducerStats& st = trainer.reducer()->stats();
  EXPECT_EQ(st.syncs, kSteps) << "one all-reduce round per optimizer step, none for the first k-1 micro-batches";
  EXPECT_EQ(st.allreduces, kSteps * static_cast<int64_t>(trainer.reducer()->num_buckets()));
}

}  // namespace
}  // namespace lockstep
