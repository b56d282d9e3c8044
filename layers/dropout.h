// Dropout(p) with inverted scaling, as torch.nn.Dropout: in train mode each element is zeroed with
// probability p and survivors are scaled by 1/(1-p); in eval mode it is the identity and draws
// nothing. Masks come from Philox keyed (seed, rank, kDropout) with counter (step, layer, element):
// reproducible run to run, different across ranks. The step advances once per train-mode forward.
// x: any shape -> y: same shape
#pragma once

#include "layers/module.h"
#include "runtime/philox.h"

namespace lockstep {

class Dropout : public Module {
 public:
  explicit Dropout(float p);
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string describe() const override;

  float p() const { return p_; }
  // Keys this layer's masks; `layer` separates dropout layers of one model.
  void seed(uint64_t seed, uint32_t rank, uint32_t layer);
  const RngState& rng_state() const { return rng_.state(); }
  void set_rng_state(const RngState& s) { rng_.set_state(s); }

 private:
  float p_;
  uint32_t layer_ = 0;
  Philox rng_{RngState{0, 0, RngStream::kDropout, 0}};
  Tensor mask_;  // saved: 0 or 1/(1-p) per element
  bool saved_identity_ = false;
};

// Seeds every Dropout in the model with (seed, rank), numbering them in model order.
void seed_dropout(Module& model, uint64_t seed, uint32_t rank);

}  // namespace lockstep
