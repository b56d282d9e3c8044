// SyncBatchNorm: cross-rank statistics (all-gather + rank-ordered Chan merge) and the backward
// all-reduce; conversion of a model's BatchNorm layers.
#include "layers/sync_batch_norm.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>

#include "layers/sequential.h"
#include "runtime/check.h"

namespace lockstep {

SyncBatchNorm::SyncBatchNorm(int spatial_dims, BatchNormOptions o, Communicator& comm)
    : BatchNorm(spatial_dims, o), comm_(&comm) {}

std::string SyncBatchNorm::describe() const {
  std::ostringstream os;
  os << "SyncBatchNorm" << spatial_dims() << "d(" << options().num_features << ")";
  return os.str();
}

void SyncBatchNorm::batch_stats(const float* x, int64_t n, int64_t s, int64_t& count,
                                std::vector<double>& mean, std::vector<double>& var) {
  BatchNorm::batch_stats(x, n, s, count, mean, var);  // this rank's shard
  synced_ = is_training();
  if (!synced_) return;  // eval without running stats: local batch, no collective (as PyTorch)

  // Per rank one block of 1 + 2C doubles: count, mean[C], M2[C], gathered as bytes (exact,
  // non-finite values included).
  const int64_t c = options().num_features;
  const int64_t block = 1 + 2 * c;
  const int world = comm_->size();
  std::vector<double> mine(block), all(block * world);
  mine[0] = static_cast<double>(count);
  for (int64_t ch = 0; ch < c; ++ch) {
    mine[1 + ch] = mean[ch];
    mine[1 + c + ch] = var[ch] * static_cast<double>(count);
  }
  comm_->all_gather(std::as_bytes(std::span(mine)), std::as_writable_bytes(std::span(all))).wait();

  // Chan et al.'s pairwise merge, folded in rank order so every rank gets the same bits:
  //   n = na + nb, delta = mean_b - mean_a, mean = mean_a + delta * nb / n,
  //   M2 = M2_a + M2_b + delta^2 * na * nb / n.
  // Empty ranks (nb = 0) contribute nothing. Non-finite statistics propagate as in BatchNorm over
  // the global batch: an infinite mean stays infinite (the count-weighted average, since
  // ma + (mb - ma) * ... is inf - inf = NaN when ma is infinite), and NaN stays NaN; nothing is
  // clamped, so a NaN variance is never hidden.
  double na = 0.0;
  std::vector<double> ma(c, 0.0), m2a(c, 0.0);
  for (int r = 0; r < world; ++r) {
    const double* b = all.data() + static_cast<int64_t>(r) * block;
    const double nb = b[0];
    if (nb == 0.0) continue;
    const double nab = na + nb;
    for (int64_t ch = 0; ch < c; ++ch) {
      const double mb = b[1 + ch], m2b = b[1 + c + ch];
      if (na == 0.0) {  // the first non-empty rank (inf * 0 below would make NaN of an inf mean)
        ma[ch] = mb;
        m2a[ch] = m2b;
        continue;
      }
      const double delta = mb - ma[ch];
      m2a[ch] += m2b + delta * delta * (na * nb / nab);
      if (std::isfinite(ma[ch]) && std::isfinite(mb))
        ma[ch] += delta * (nb / nab);
      else
        ma[ch] = (na * ma[ch] + nb * mb) / nab;
    }
    na = nab;
  }
  count = static_cast<int64_t>(na);
  global_count_ = count;
  mean = std::move(ma);
  var.assign(c, 0.0);
  if (count > 0)
    for (int64_t ch = 0; ch < c; ++ch) var[ch] = m2a[ch] < 0.0 ? 0.0 : m2a[ch] / na;  // NaN stays NaN
}

void SyncBatchNorm::reduce_backward_sums(std::vector<double>& sum_dy,
                                         std::vector<double>& sum_dy_xhat, int64_t& count) {
  if (!synced_) return;
  const size_t c = sum_dy.size();
  std::vector<double> buf(2 * c);
  std::copy(sum_dy.begin(), sum_dy.end(), buf.begin());
  std::copy(sum_dy_xhat.begin(), sum_dy_xhat.end(), buf.begin() + c);
  comm_->all_reduce(std::span<double>(buf), ReduceOp::kSum).wait();
  std::copy(buf.begin(), buf.begin() + c, sum_dy.begin());
  std::copy(buf.begin() + c, buf.end(), sum_dy_xhat.begin());
  count = global_count_;
}

void convert_sync_batchnorm(Sequential& model, Communicator& comm) {
  for (size_t i = 0; i < model.size(); ++i) {
    Module& layer = model[i];
    if (auto* seq = dynamic_cast<Sequential*>(&layer)) {
      convert_sync_batchnorm(*seq, comm);
      continue;
    }
    auto* bn = dynamic_cast<BatchNorm*>(&layer);
    if (!bn || dynamic_cast<SyncBatchNorm*>(bn)) continue;
    auto sync = std::make_unique<SyncBatchNorm>(bn->spatial_dims(), bn->options(), comm);
    // Same class layout, so parameters and buffers pair up by name in registration order.
    auto from_p = bn->named_parameters();
    auto to_p = sync->named_parameters();
    LOCKSTEP_CHECK(from_p.size() == to_p.size()) << bn->describe() << ": parameter count";
    for (size_t k = 0; k < from_p.size(); ++k) {
      LOCKSTEP_CHECK(from_p[k].first == to_p[k].first) << "parameter " << from_p[k].first;
      to_p[k].second->value.copy_from(from_p[k].second->value);
      to_p[k].second->grad.copy_from(from_p[k].second->grad);
    }
    auto from_b = bn->named_buffers();
    auto to_b = sync->named_buffers();
    LOCKSTEP_CHECK(from_b.size() == to_b.size()) << bn->describe() << ": buffer count";
    for (size_t k = 0; k < from_b.size(); ++k) {
      LOCKSTEP_CHECK(from_b[k].first == to_b[k].first) << "buffer " << from_b[k].first;
      to_b[k].second->copy_from(*from_b[k].second);
    }
    const bool training = bn->is_training();
    sync->set_needs_input_grad(bn->needs_input_grad());
    model.replace(i, std::move(sync));
    model[i].train(training);
  }
}

}  // namespace lockstep
