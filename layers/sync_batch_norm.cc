// SyncBatchNorm: cross-rank statistics (all-gather + rank-ordered Chan merge) and the backward
// all-reduce; conversion of a model's BatchNorm layers.
#include "layers/sync_batch_norm.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>

#include "runtime/check.h"

namespace lockstep {

void BatchNorm::sync_batch_stats(int64_t& count, std::vector<double>& mean, std::vector<double>& var) {
  // count, mean, var: this rank's shard
  Communicator* comm_ = sync_;
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

void BatchNorm::sync_backward_sums(std::vector<double>& sum_dy, std::vector<double>& sum_dy_xhat,
                                   int64_t& count) {
  Communicator* comm_ = sync_;
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

int convert_sync_batchnorm(Module& model, Communicator& comm) {
  int converted = 0;
  for (auto& [name, m] : model.named_modules())
    if (auto* bn = dynamic_cast<BatchNorm*>(m); bn && bn->sync_comm() != &comm) {
      bn->set_sync(&comm);
      ++converted;
    }
  return converted;
}

}  // namespace lockstep
