// Dropout forward/backward and model-wide seeding.
#include "layers/dropout.h"

#include <sstream>

#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {

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
  rng_.set_state(RngState{seed, rank, RngStream::kDropout, 0});
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p_ == 0.f) {  // eval: identity, no RNG drawn
    saved_identity_ = grad_enabled();
    mask_ = Tensor();
    return x;
  }
  Tensor mask = Tensor::empty(x.shape());
  rng_.uniform(layer_, mask.data(), mask.numel());
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

namespace {
void seed_rec(Module& m, uint64_t seed, uint32_t rank, uint32_t& layer) {
  if (auto* d = dynamic_cast<Dropout*>(&m)) d->seed(seed, rank, layer++);
  for (auto& [name, child] : m.children()) seed_rec(*child, seed, rank, layer);
}
}  // namespace

void seed_dropout(Module& model, uint64_t seed, uint32_t rank) {
  uint32_t layer = 0;
  seed_rec(model, seed, rank, layer);
}

}  // namespace lockstep
