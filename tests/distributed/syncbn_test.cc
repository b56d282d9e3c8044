// SyncBatchNorm on N ranks against plain BatchNorm on one process (run under mpirun, np 1..4).
// Every rank builds the same global batch (Philox-generated) and the same global dy, runs plain
// BatchNorm over the whole batch locally as the reference, and SyncBatchNorm over its own shard of
// rows. For even and uneven shards (including empty ranks), for BatchNorm1d (N,C), (N,C,L) and
// BatchNorm2d (N,C,H,W), over three train steps:
//   y, dx           == the reference's rows of this shard
//   sum_r grad_r    == the reference's weight / bias gradients (local sums; DDP averages later)
//   running_mean, running_var, num_batches_tracked == the reference's
// then eval: no collective issued in forward or backward, output == the reference's eval output.
// Tolerance: |a - b| <= 1e-5 * max(|b|, rms(reference)), relative to the tensor's scale so values
// near zero (normalised outputs, cancelling gradients) are not held to a tighter bound than float.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "layers/batch_norm.h"
#include "layers/dropout.h"
#include "layers/reference_models.h"
#include "layers/sequential.h"
#include "layers/sync_batch_norm.h"
#include "runtime/autograd.h"
#include "runtime/check.h"
#include "runtime/grad_mode.h"
#include "runtime/philox.h"
#include "tests/distributed/test_comm.h"

namespace lockstep {
namespace {

constexpr double kRtol = 1e-5;

// Philox uniforms mapped to [lo, hi): the same tensor on every rank.
Tensor philox_tensor(Shape shape, uint64_t seed, uint32_t layer, float lo, float hi) {
  Tensor t = Tensor::empty(std::move(shape));
  Philox(RngState{seed, 0, RngStream::kTest, 0}).uniform(layer, t.data(), t.numel());
  for (float& v : t.span()) v = lo + (hi - lo) * v;
  return t;
}

// Rows [row0, row0 + rows) of t along dim 0.
Tensor rows_of(const Tensor& t, int64_t row0, int64_t rows) {
  Shape s = t.shape();
  const int64_t row_numel = s[0] ? t.numel() / s[0] : 0;
  s[0] = rows;
  Tensor out = Tensor::empty(s);
  std::copy_n(t.data() + row0 * row_numel, rows * row_numel, out.data());
  return out;
}

// Counts elements outside the tolerance; describes the first in `first`.
int64_t count_far(std::span<const float> got, std::span<const float> want, std::string& first) {
  if (got.size() != want.size()) {
    first = "size " + std::to_string(got.size()) + " vs " + std::to_string(want.size());
    return 1;
  }
  double ss = 0;
  for (float v : want) ss += double(v) * v;
  const double rms = want.empty() ? 0.0 : std::sqrt(ss / want.size());
  int64_t far = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = kRtol * std::max<double>(std::fabs(want[i]), rms);
    if (!(std::fabs(double(got[i]) - want[i]) <= tol)) {
      if (far++ == 0) {
        std::ostringstream os;
        os << "index " << i << ": got " << got[i] << ", want " << want[i] << " (tol " << tol << ")";
        first = os.str();
      }
    }
  }
  return far;
}

#define EXPECT_CLOSE(got, want, what)                                              \
  do {                                                                             \
    std::string first_;                                                            \
    EXPECT_EQ(count_far((got), (want), first_), 0)                                 \
        << (what) << " on rank " << comm.rank() << " of " << comm.size() << ": " << first_; \
  } while (0)

enum class Split { kEven, kUneven, kLeadingEmpty };

// Rows per rank. kUneven over 3 ranks is 5/3/0; kLeadingEmpty starts with an empty rank 0.
std::vector<int64_t> split_rows(Split split, int world) {
  std::vector<int64_t> rows(world);
  for (int r = 0; r < world; ++r) {
    switch (split) {
      case Split::kEven: rows[r] = 4; break;
      case Split::kUneven: rows[r] = std::vector<int64_t>{5, 3, 0, 2}[r % 4]; break;
      case Split::kLeadingEmpty: rows[r] = r == 0 ? 0 : 1 + r; break;
    }
  }
  return rows;
}

struct SyncCase {
  const char* name;
  int dims;          // 1 or 2
  Shape row_shape;   // one sample: (C), (C, L) or (C, H, W)
  Split split;
  BatchNormOptions options;
};

void PrintTo(const SyncCase& c, std::ostream* os) { *os << c.name; }

std::unique_ptr<BatchNorm> plain_bn(const SyncCase& c) {
  if (c.dims == 1) return std::make_unique<BatchNorm1d>(c.options);
  return std::make_unique<BatchNorm2d>(c.options);
}

class SyncBatchNormVsWholeBatch : public ::testing::TestWithParam<SyncCase> {};

TEST_P(SyncBatchNormVsWholeBatch, MatchesPlainBatchNormOnTheGlobalBatch) {
  const SyncCase& c = GetParam();
  Communicator& comm = test_comm();
  const int world = comm.size(), rank = comm.rank();
  const std::vector<int64_t> rows = split_rows(c.split, world);
  const int64_t global_rows = std::accumulate(rows.begin(), rows.end(), int64_t{0});
  const int64_t row0 = std::accumulate(rows.begin(), rows.begin() + rank, int64_t{0});
  if (global_rows < 2) GTEST_SKIP() << "a global batch of " << global_rows << " rows";  // same on all ranks
  const int64_t ch = c.row_shape[0];
  Shape global_shape{global_rows};
  global_shape.insert(global_shape.end(), c.row_shape.begin(), c.row_shape.end());

  auto ref = plain_bn(c);
  SyncBatchNorm sync(c.dims, c.options, comm);
  // Non-trivial affine parameters, the same in both.
  if (c.options.affine) {
    Tensor w = philox_tensor({ch}, 5, 0, 0.5f, 1.5f), b = philox_tensor({ch}, 5, 1, -0.5f, 0.5f);
    for (auto* m : {static_cast<BatchNorm*>(ref.get()), static_cast<BatchNorm*>(&sync)}) {
      m->named_parameters()[0].second->value.copy_from(w);
      m->named_parameters()[1].second->value.copy_from(b);
    }
  }

  for (uint32_t step = 0; step < 3; ++step) {
    comm.set_phase(1, CommMode::kTrain);
    // Channel-dependent offsets, so means are far from 0 and differ per channel and step.
    Tensor x = philox_tensor(global_shape, 100 + step, 0, -2.f, 2.f);
    const int64_t per_row = x.numel() / global_rows, s = per_row / ch;
    for (int64_t i = 0; i < x.numel(); ++i) x[i] += 3.f * float((i / s) % ch) - float(step);
    Tensor dy = philox_tensor(global_shape, 200 + step, 0, -1.f, 1.f);

    ref->zero_grad();
    sync.zero_grad();
    Tensor y_ref = ref->forward(x);
    Tensor dx_ref = ref->backward(dy);
    Tensor y = sync.forward(rows_of(x, row0, rows[rank]));
    Tensor dx = sync.backward(rows_of(dy, row0, rows[rank]));

    const std::string at = std::string(c.name) + " step " + std::to_string(step) + " ";
    EXPECT_EQ(y.shape(), rows_of(y_ref, row0, rows[rank]).shape()) << at;
    EXPECT_CLOSE(y.span(), rows_of(y_ref, row0, rows[rank]).span(), at + "output");
    EXPECT_CLOSE(dx.span(), rows_of(dx_ref, row0, rows[rank]).span(), at + "input grad");
    if (c.options.affine) {
      // Local sums add up to the whole batch's gradient.
      for (int k = 0; k < 2; ++k) {
        Tensor g = sync.named_parameters()[k].second->grad.clone();
        comm.all_reduce(g.span(), ReduceOp::kSum).wait();
        EXPECT_CLOSE(g.span(), ref->named_parameters()[k].second->grad.span(),
                     at + (k ? "bias grad" : "weight grad"));
      }
    }
    auto bufs = sync.named_buffers(), ref_bufs = ref->named_buffers();
    ASSERT_EQ(bufs.size(), ref_bufs.size());
    for (size_t k = 0; k < bufs.size(); ++k) {
      if (bufs[k].first == "num_batches_tracked")
        EXPECT_EQ((*bufs[k].second)[0], (*ref_bufs[k].second)[0]) << at << "num_batches_tracked";
      else
        EXPECT_CLOSE(bufs[k].second->span(), ref_bufs[k].second->span(), at + bufs[k].first);
    }
  }

  if (!c.options.track_running_stats) return;
  // Eval: running statistics, no collective in forward nor backward.
  comm.set_phase(2, CommMode::kEval);
  ref->eval();
  sync.eval();
  Tensor x = philox_tensor(global_shape, 300, 0, -1.f, 3.f);
  Tensor dy = philox_tensor(global_shape, 301, 0, -1.f, 1.f);
  Tensor y_ref = ref->forward(x);
  Tensor dx_ref = ref->backward(dy);
  const uint64_t issued = comm.collectives_issued();
  Tensor y = sync.forward(rows_of(x, row0, rows[rank]));
  Tensor dx = sync.backward(rows_of(dy, row0, rows[rank]));
  EXPECT_EQ(comm.collectives_issued(), issued) << "eval issued a collective";
  EXPECT_CLOSE(y.span(), rows_of(y_ref, row0, rows[rank]).span(), std::string(c.name) + " eval output");
  EXPECT_CLOSE(dx.span(), rows_of(dx_ref, row0, rows[rank]).span(),
               std::string(c.name) + " eval input grad");
}

BatchNormOptions bn(int64_t c) { return BatchNormOptions{.num_features = c}; }

BatchNormOptions cumulative(int64_t c) {
  BatchNormOptions o = bn(c);
  o.momentum = std::nullopt;
  o.eps = 1e-3f;
  return o;
}

BatchNormOptions no_affine(int64_t c) {
  BatchNormOptions o = bn(c);
  o.affine = false;
  o.momentum = 0.3f;
  return o;
}

INSTANTIATE_TEST_SUITE_P(
    Shards, SyncBatchNormVsWholeBatch,
    ::testing::Values(
        SyncCase{"bn1d_nc_even", 1, {6}, Split::kEven, bn(6)},
        SyncCase{"bn1d_nc_uneven", 1, {6}, Split::kUneven, bn(6)},
        SyncCase{"bn1d_nc_leading_empty", 1, {6}, Split::kLeadingEmpty, cumulative(6)},
        SyncCase{"bn1d_ncl_even", 1, {4, 7}, Split::kEven, cumulative(4)},
        SyncCase{"bn1d_ncl_uneven", 1, {4, 7}, Split::kUneven, bn(4)},
        SyncCase{"bn1d_ncl_leading_empty", 1, {4, 7}, Split::kLeadingEmpty, no_affine(4)},
        SyncCase{"bn2d_even", 2, {3, 5, 6}, Split::kEven, bn(3)},
        SyncCase{"bn2d_uneven", 2, {3, 5, 6}, Split::kUneven, bn(3)},
        SyncCase{"bn2d_uneven_cumulative", 2, {3, 5, 6}, Split::kUneven, cumulative(3)},
        SyncCase{"bn2d_leading_empty", 2, {3, 5, 6}, Split::kLeadingEmpty, bn(3)},
        SyncCase{"bn2d_uneven_no_affine", 2, {3, 5, 6}, Split::kUneven, no_affine(3)}),
    [](const auto& info) { return std::string(info.param.name); });

// A global batch of one value per channel is rejected on every rank (the global count decides,
// not the local one), so no rank is left waiting in a collective.
TEST(SyncBatchNorm, GlobalBatchOfOneIsRejectedOnEveryRank) {
  Communicator& comm = test_comm();
  comm.set_phase(1, CommMode::kTrain);
  SyncBatchNorm sync(1, bn(3), comm);
  Tensor x = philox_tensor({comm.rank() == 0 ? 1 : 0, 3}, 1, 0, 0.f, 1.f);
  EXPECT_THROW(sync.forward(x), Error);
  // Every rank still agrees on the next collective.
  std::vector<float> one{1.f};
  comm.all_reduce(std::span<float>(one), ReduceOp::kSum).wait();
  EXPECT_EQ(one[0], float(comm.size()));
}

// A local batch of one row is fine when the global batch is larger (PyTorch's SyncBatchNorm too).
TEST(SyncBatchNorm, OneRowPerRankTrainsWhenTheGlobalBatchIsLarger) {
  Communicator& comm = test_comm();
  if (comm.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  comm.set_phase(1, CommMode::kTrain);
  SyncBatchNorm sync(1, bn(3), comm);
  Tensor x = philox_tensor({1, 3}, 7 + comm.rank(), 0, 0.f, 1.f);
  Tensor y = sync.forward(x);
  EXPECT_EQ(y.numel(), 3);
}

// Counts elements that differ as tensors holding NaN / inf may: NaN exactly where the reference
// has NaN, an infinity where it has the same infinity, finite values within count_far's tolerance.
int64_t count_far_nonfinite(std::span<const float> got, std::span<const float> want, std::string& first) {
  if (got.size() != want.size()) return count_far(got, want, first);
  std::vector<float> got_finite, want_finite;
  int64_t far = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isfinite(got[i]) && std::isfinite(want[i])) {
      got_finite.push_back(got[i]);
      want_finite.push_back(want[i]);
      continue;
    }
    const bool same = std::isnan(want[i]) ? std::isnan(got[i]) : got[i] == want[i];
    if (!same && far++ == 0) {
      std::ostringstream os;
      os << "index " << i << ": got " << got[i] << ", want " << want[i];
      first = os.str();
    }
  }
  std::string first_finite;
  const int64_t far_finite = count_far(got_finite, want_finite, first_finite);
  if (far == 0 && far_finite) first = "among the finite values, " + first_finite;
  return far + far_finite;
}

// NaN, +inf and -inf in the global batch propagate exactly as in BatchNorm over the whole batch
// (itself checked against PyTorch in tests/layers/nonfinite_test.cc): an infinite mean stays
// infinite through the all-gather and the merge, NaN variances are not clamped to 0, and the
// running statistics become non-finite on every rank. Channels: 0 +inf in the last rank's last row
// (merged into finite ranks), 1 +inf in rank 0's first row (an infinite mean merged with finite
// ones), 2 NaN, 3 -inf and +inf on the first and last ranks (NaN mean), 4 finite.
TEST(SyncBatchNorm, NonFiniteInputsPropagateAsInTheWholeBatch) {
  Communicator& comm = test_comm();
  const int world = comm.size(), rank = comm.rank();
  constexpr int64_t kRows = 3, kC = 5;
  const int64_t global_rows = kRows * world, row0 = kRows * rank;
  const float inf = std::numeric_limits<float>::infinity();
  BatchNorm1d ref(bn(kC));
  SyncBatchNorm sync(1, bn(kC), comm);
  comm.set_phase(1, CommMode::kTrain);
  Tensor x = philox_tensor({global_rows, kC}, 400, 0, -2.f, 2.f);
  x[(global_rows - 1) * kC + 0] = inf;
  x[0 * kC + 1] = inf;
  x[1 * kC + 2] = std::numeric_limits<float>::quiet_NaN();
  x[0 * kC + 3] = -inf;
  x[(global_rows - 1) * kC + 3] = inf;
  Tensor dy = philox_tensor({global_rows, kC}, 401, 0, -1.f, 1.f);
  Tensor y_ref = ref.forward(x);
  Tensor dx_ref = ref.backward(dy);
  Tensor y = sync.forward(rows_of(x, row0, kRows));
  Tensor dx = sync.backward(rows_of(dy, row0, kRows));
  std::string first;
  EXPECT_EQ(count_far_nonfinite(y.span(), rows_of(y_ref, row0, kRows).span(), first), 0) << "output: " << first;
  EXPECT_EQ(count_far_nonfinite(dx.span(), rows_of(dx_ref, row0, kRows).span(), first), 0) << "input grad: " << first;
  auto bufs = sync.named_buffers(), ref_bufs = ref.named_buffers();
  for (size_t k = 0; k < bufs.size(); ++k)
    EXPECT_EQ(count_far_nonfinite(bufs[k].second->span(), ref_bufs[k].second->span(), first), 0)
        << bufs[k].first << " on rank " << rank << ": " << first;
  // The reference itself: channels 0..3 non-finite, channel 4 finite, as PyTorch has them.
  const Tensor& running_var = *ref.named_buffers()[1].second;
  for (int64_t c = 0; c < 4; ++c) EXPECT_TRUE(std::isnan(running_var[c])) << "channel " << c;
  EXPECT_TRUE(std::isfinite(running_var[4]));
  EXPECT_EQ((*ref.named_buffers()[0].second)[0], inf);
}

// Fills every state_dict entry with distinct deterministic values (variances positive,
// num_batches_tracked an integer).
void fill_state(Module& m) {
  uint32_t slot = 0;
  for (auto& [name, t] : m.state_dict()) {
    Tensor v = philox_tensor(t->shape(), 11, slot++, -1.f, 1.f);
    if (name.find("running_var") != std::string::npos)
      for (float& f : v.span()) f = 0.5f + std::fabs(f);
    if (name.find("num_batches_tracked") != std::string::npos) v.fill(17.f);
    t->copy_from(v);
  }
}

TEST(ConvertSyncBatchNorm, FmnistCnnKeepsStateAndEvalOutput) {
  Communicator& comm = test_comm();
  auto plain = make_reference_model("fmnist-cnn");
  auto model = make_reference_model("fmnist-cnn");
  fill_state(*plain);
  fill_state(*model);
  model->eval();
  plain->eval();
  std::vector<std::string> names_before;
  for (auto& [name, t] : model->state_dict()) names_before.push_back(name);

  convert_sync_batchnorm(*model, comm);

  // In place: the same layer objects, now merging over comm.
  auto& seq = static_cast<Sequential&>(*model);
  auto& ref = static_cast<Sequential&>(*plain);
  int converted = 0;
  for (size_t i = 0; i < seq.size(); ++i) {
    const bool was_bn = dynamic_cast<BatchNorm*>(&ref[i]) != nullptr;
    auto* s = dynamic_cast<BatchNorm*>(&seq[i]);
    EXPECT_EQ(was_bn, s != nullptr && s->sync_comm() == &comm) << "layer " << i << ": " << seq[i].describe();
    if (s) {
      ++converted;
      EXPECT_FALSE(s->is_training()) << "layer " << i << " lost its mode";
      EXPECT_EQ(s->spatial_dims(), static_cast<BatchNorm&>(ref[i]).spatial_dims());
      EXPECT_EQ(s->describe().rfind("SyncBatchNorm", 0), 0u) << s->describe();
    }
  }
  EXPECT_EQ(converted, 3);  // BN2d, BN2d, BN1d

  auto got = model->state_dict(), want = plain->state_dict();
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    EXPECT_EQ(got[k].first, names_before[k]);
    EXPECT_EQ(got[k].first, want[k].first);
    ASSERT_EQ(got[k].second->numel(), want[k].second->numel()) << got[k].first;
    for (int64_t i = 0; i < got[k].second->numel(); ++i)
      ASSERT_EQ((*got[k].second)[i], (*want[k].second)[i]) << got[k].first << " index " << i;
  }

  comm.set_phase(2, CommMode::kEval);
  NoGradGuard no_grad;
  Tensor x = philox_tensor({5, 1, 28, 28}, 21, 0, 0.f, 1.f);
  const uint64_t issued = comm.collectives_issued();
  Tensor y = model->forward(x);
  EXPECT_EQ(comm.collectives_issued(), issued) << "eval forward issued a collective";
  Tensor y_ref = plain->forward(x);
  ASSERT_EQ(y.shape(), y_ref.shape());
  for (int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(y[i], y_ref[i]) << "index " << i;
}

// The converted model in train mode, fed shards, equals the plain model on the whole batch (no
// dropout): SyncBatchNorm inside a real stack, gradients included.
TEST(ConvertSyncBatchNorm, FmnistCnnTrainStepMatchesWholeBatch) {
  Communicator& comm = test_comm();
  const int world = comm.size(), rank = comm.rank();
  const std::vector<int64_t> rows = split_rows(Split::kUneven, world);
  const int64_t global_rows = std::accumulate(rows.begin(), rows.end(), int64_t{0});
  const int64_t row0 = std::accumulate(rows.begin(), rows.begin() + rank, int64_t{0});
  auto plain = make_reference_model("fmnist-cnn", ModelOptions{.dropout_scale = 0.f});
  auto model = make_reference_model("fmnist-cnn", ModelOptions{.dropout_scale = 0.f});
  Philox init(RngState{3, 0, RngStream::kInit, 0});
  uint32_t slot = 0;
  plain->reset_parameters(init, slot);
  slot = 0;
  model->reset_parameters(init, slot);
  convert_sync_batchnorm(*model, comm);
  plain->train();
  model->train();

  comm.set_phase(1, CommMode::kTrain);
  Tensor x = philox_tensor({global_rows, 1, 28, 28}, 31, 0, 0.f, 1.f);
  Tensor dy = philox_tensor({global_rows, 10}, 32, 0, -1.f, 1.f);
  Tensor y_ref = plain->forward(x);
  backward(y_ref, dy);
  Tensor y = model->forward(rows_of(x, row0, rows[rank]));
  backward(y, rows_of(dy, row0, rows[rank]));
  EXPECT_CLOSE(y.span(), rows_of(y_ref, row0, rows[rank]).span(), std::string("cnn output"));
  auto got = model->named_parameters(), want = plain->named_parameters();
  ASSERT_EQ(got.size(), want.size());
  auto rms_of = [](const Tensor& t) {
    double ss = 0;
    for (float v : t.span()) ss += double(v) * v;
    return t.numel() ? std::sqrt(ss / t.numel()) : 0.0;
  };
  for (size_t k = 0; k < got.size(); ++k) {
    Tensor g = got[k].second->grad.clone();
    comm.all_reduce(g.span(), ReduceOp::kSum).wait();
    const std::string& name = got[k].first;
    const Tensor& w = want[k].second->grad;
    // A bias feeding a BatchNorm has gradient 0 (BN subtracts the batch mean): both sides are
    // rounding noise, held to a bound relative to the layer's weight gradient. Others: gradients
    // of a deep stack accumulate float rounding in different sum orders, so 1e-4 relative.
    const size_t layer = std::stoul(name.substr(0, name.find('.')));
    auto& stack = static_cast<Sequential&>(*plain);
    const bool feeds_bn = name.ends_with(".bias") && layer + 1 < stack.size() &&
                          dynamic_cast<BatchNorm*>(&stack[layer + 1]) != nullptr;
    const double rms = feeds_bn ? rms_of(want[k - 1].second->grad) : rms_of(w);
    int64_t far = 0;
    for (int64_t i = 0; i < g.numel(); ++i) {
      const double tol = feeds_bn ? 1e-4 * rms : 1e-4 * std::max<double>(std::fabs(w[i]), rms);
      far += !(std::fabs(g[i] - w[i]) <= tol);
    }
    EXPECT_EQ(far, 0) << name << " grad on rank " << rank << " of " << world;
  }
  auto bufs = model->named_buffers(), ref_bufs = plain->named_buffers();
  ASSERT_EQ(bufs.size(), ref_bufs.size());
  for (size_t k = 0; k < bufs.size(); ++k)
    EXPECT_CLOSE(bufs[k].second->span(), ref_bufs[k].second->span(), bufs[k].first);
}

}  // namespace
}  // namespace lockstep
