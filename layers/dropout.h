// Dropout(p) with inverted scaling, as torch.nn.Dropout: in train mode each element is zeroed with
// probability p and survivors are scaled by 1/(1-p); in eval mode it is the identity and draws
// nothing. Masks come from Philox with stream kDropout and counter (step, layer, element); the step
// advances once per train-mode forward, on every rank alike (an empty shard advances it too).
// Two keyings (Note [dropout keying]):
//   kPerRank   (default): key (seed, rank); element = index within this rank's tensor. Masks differ
//                         across ranks and a rerun reproduces them exactly.
//   kPerSample:           key (seed, 0); element j of row i is (first_global_row + i) * row_numel
//                         + j, its index in the GLOBAL batch. Ranks holding consecutive shards of a
//                         global batch draw exactly the masks one rank draws over the whole batch.
// x: any shape, rows along dim 0 -> y: same shape
#pragma once

#include <tuple>
#include <utility>

#include <cstdint>
#include <vector>

#include "layers/layer.h"
#include "runtime/philox.h"

namespace lockstep {

enum class DropoutKeying { kPerRank, kPerSample };

class Dropout : public Layer {
 public:
  explicit Dropout(float p);
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override { return in; }

  float p() const { return p_; }
  // Keys this layer's masks; `layer` separates dropout layers of one model. Keeps the keying.
  void seed(uint64_t seed, uint32_t rank, uint32_t layer);
  void set_keying(DropoutKeying keying);
  DropoutKeying keying() const { return keying_; }
  // kPerSample: the global index of this rank's first row in the next forwards (set each step).
  void set_first_global_row(int64_t row);
  int64_t first_global_row() const { return first_global_row_; }
  const RngState& rng_state() const { return rng_.state(); }
  void set_rng_state(const RngState& s);

 protected:
  std::any take_saved() override { return std::make_tuple(std::exchange(mask_, Tensor()), std::exchange(saved_identity_, bool())); }
  void restore_saved(std::any s) override { std::tie(mask_, saved_identity_) = std::any_cast<std::tuple<Tensor, bool>>(std::move(s)); }

 private:
  void rekey();

  float p_;
  uint32_t layer_ = 0;
  uint32_t rank_ = 0;  // the rank given to seed(); the key uses it only in kPerRank
  DropoutKeying keying_ = DropoutKeying::kPerRank;
  int64_t first_global_row_ = 0;
  Philox rng_{RngState{0, 0, RngStream::kDropout, 0}};
  Tensor mask_;  // saved: 0 or 1/(1-p) per element
  bool saved_identity_ = false;
};

// A stable per-module id: a 32-bit FNV-1a hash of the module's qualified name ("layer3.0.drop").
uint32_t dropout_module_id(const std::string& qualified_name);
// Seeds every Dropout in the model with (seed, rank) and the keying; each Dropout's `layer` is
// dropout_module_id of its name in the tree, so its masks depend neither on the order forward
// calls the layers nor on other layers being added or removed.
void seed_dropout(Module& model, uint64_t seed, uint32_t rank,
                  DropoutKeying keying = DropoutKeying::kPerRank);
// Every Dropout in the model, in registration (state_dict) order.
std::vector<Dropout*> dropout_layers(Module& model);
// Sets every Dropout's first global row (kPerSample keying): the rank's shard offset in the batch.
void set_dropout_first_global_row(Module& model, int64_t row);

}  // namespace lockstep
