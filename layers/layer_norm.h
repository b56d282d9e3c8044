// LayerNorm, as torch.nn.LayerNorm(normalized_shape, eps, elementwise_affine): normalises each
// sample over its last dims with that sample's own mean and biased variance. No running
// statistics and no communication: train and eval mode compute the same thing.
// x: (..., *normalized_shape) -> y: same shape; weight, bias: normalized_shape (weight 1, bias 0
// initially). Forward keeps the per-row mean and 1/sqrt(var + eps) (plus the input, which the
// previous layer holds anyway) for a fused backward.
#pragma once

#include <tuple>
#include <utility>

#include <vector>

#include "layers/layer.h"

namespace lockstep {

class LayerNorm : public Layer {
 public:
  explicit LayerNorm(Shape normalized_shape, float eps = 1e-5f, bool elementwise_affine = true);
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;
  void reset_parameters(Philox& rng, uint32_t& slot) override;  // weight 1, bias 0: draws nothing

 protected:
  std::any take_saved() override { return std::make_tuple(std::exchange(x_, Tensor()), std::exchange(mean_, std::vector<float>()), std::exchange(rstd_, std::vector<float>())); }
  void restore_saved(std::any s) override { std::tie(x_, mean_, rstd_) = std::any_cast<std::tuple<Tensor, std::vector<float>, std::vector<float>>>(std::move(s)); }

 private:
  Shape shape_;
  int64_t features_;  // numel of normalized_shape: one row
  float eps_;
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
  Tensor x_;               // saved input
  std::vector<float> mean_, rstd_;  // per row, of the saved forward
};

}  // namespace lockstep
