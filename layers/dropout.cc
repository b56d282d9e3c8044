// Dropout forward/backward and model-wide seeding.
//
// Note [dropout keying]: a Philox draw is a pure function of (key, counter), so a mask element can
// be drawn from its index alone. kPerRank keys on the rank and numbers elements from 0 on each
// rank. kPerSample drops the rank from the key and numbers elements by their place in the global
// batch; since a rank's shard is a run of consecutive rows, its elements are the consecutive
// global indices from first_global_row * row_numel, so the shard's mask is a slice of the global
// mask. Both keyings advance the step once per train-mode forward, identically on every rank.
#include "layers/dropout.h"

#include <sstream>

#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {
namespace {

// out[k] = uniform draw of element offset + k for `layer` at rng's current step; for offset 0 it
// equals Philox::uniform. Elements map to (block, lane) = (e / 4, e % 4).
void uniform_from(const Philox& rng, uint32_t layer, int64_t offset, float* out, int64_t n) {
  if (offset == 0) {
    rng.uniform(layer, out, n);
    return;
  }
  int64_t k = 0;
  while (k < n) {
    const int64_t e = offset + k;
    const auto r = rng.draw(layer, static_cast<uint64_t>(e / 4));
    for (int lane = static_cast<int>(e % 4); lane < 4 && k < n; ++lane) out[k++] = uniform01(r[lane]);
  }
}

}  // namespace

Dropout::Dropout(float p) : p_(p) {
  LOCKSTEP_FAIL_IF(!(p >= 0.f && p <= 1.f)) << "Dropout: p must be in [0, 1], got " << p;
}

std::string Dropout::describe() const {
  std::ostringstream os;
  os << "Dropout(" << p_ << ")";
  return os.str();
}

void Dropout::seed(uint64_t seed, uint32_t rank, uint32_t layer) {
  layer_ = layer;
  rank_ = rank;
  rng_.set_state(RngState{seed, rank, RngStream::kDropout, 0});
  rekey();
}

void Dropout::set_keying(DropoutKeying keying) {
  keying_ = keying;
  rekey();
}

void Dropout::set_first_global_row(int64_t row) {
  LOCKSTEP_CHECK(row >= 0) << describe() << ": first global row " << row;
  first_global_row_ = row;
}

void Dropout::set_rng_state(const RngState& s) {
  if (keying_ == DropoutKeying::kPerRank) rank_ = s.rank;
  rng_.set_state(s);
  rekey();
}

void Dropout::rekey() {
  RngState s = rng_.state();
  s.rank = keying_ == DropoutKeying::kPerSample ? 0u : rank_;
  rng_.set_state(s);
}

Tensor Dropout::forward_impl(const Tensor& x) {
  if (!is_training() || p_ == 0.f) {  // eval: identity, no RNG drawn
    saved_identity_ = grad_enabled();
    mask_ = Tensor();
    return x;
  }
  Tensor mask = Tensor::empty(x.shape());
  int64_t offset = 0;
  if (keying_ == DropoutKeying::kPerSample && x.ndim() > 0 && x.dim(0) > 0)
    offset = first_global_row_ * (x.numel() / x.dim(0));
  uniform_from(rng_, layer_, offset, mask.data(), mask.numel());
  rng_.advance();
  const float scale = p_ < 1.f ? 1.f / (1.f - p_) : 0.f;
  float* m = mask.data();
  for (int64_t i = 0; i < mask.numel(); ++i) m[i] = m[i] < p_ ? 0.f : scale;
  Tensor y = Tensor::empty(x.shape());
  const float* a = x.data();
  float* b = y.data();
  for (int64_t i = 0; i < y.numel(); ++i) b[i] = a[i] * m[i];
  mask_ = grad_enabled() ? mask : Tensor();
  saved_identity_ = false;
  return y;
}

Tensor Dropout::backward(const Tensor& dy) {
  require_saved(saved_identity_ || mask_.defined());
  if (saved_identity_) {
    saved_identity_ = false;
    return dy;
  }
  Tensor dx = Tensor::empty(dy.shape());
  for (int64_t i = 0; i < dx.numel(); ++i) dx[i] = dy[i] * mask_[i];
  mask_ = Tensor();
  return dx;
}


uint32_t dropout_module_id(const std::string& qualified_name) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : qualified_name) h = (h ^ c) * 16777619u;
  return h;
}

void seed_dropout(Module& model, uint64_t seed, uint32_t rank, DropoutKeying keying) {
  for (auto& [name, m] : model.named_modules())
    if (auto* d = dynamic_cast<Dropout*>(m)) {
      d->set_keying(keying);
      d->seed(seed, rank, dropout_module_id(name));
    }
}

std::vector<Dropout*> dropout_layers(Module& model) {
  std::vector<Dropout*> out;
  for (auto& [name, m] : model.named_modules())
    if (auto* d = dynamic_cast<Dropout*>(m)) out.push_back(d);
  return out;
}

void set_dropout_first_global_row(Module& model, int64_t row) {
  for (Dropout* d : dropout_layers(model)) d->set_first_global_row(row);
}

}  // namespace lockstep
