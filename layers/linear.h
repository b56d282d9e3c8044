// Linear: y = x W^T + b, as torch.nn.Linear.
// x: (N, in) -> y: (N, out); weight: (out, in); bias: (out)
// fp32: the kernel library's GEMM. Under AutocastGuard(kBF16) (runtime/precision.h), as
// torch.autocast("cpu", dtype=torch.bfloat16) runs linear: oneDNN matmul (runtime/dnnl_linear.h)
// with x, W and dy rounded to bf16, fp32 accumulation, fp32 y, dx and dW; the bias and its
// gradient stay fp32; the input is saved for backward in bf16. Backward runs in the dtype its
// forward ran. Where oneDNN has no bf16 matmul (below AVX-512) it runs in fp32.
#pragma once

#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "layers/layer.h"
#include "runtime/dnnl_linear.h"

namespace lockstep {

class Linear : public Layer {
 public:
  Linear(int64_t in, int64_t out, bool bias = true);
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;
  void reset_parameters(class Philox& rng, uint32_t& slot) override;

 protected:
  std::any take_saved() override {
    return std::make_tuple(std::exchange(x_, Tensor()), std::exchange(xb_, Bf16Matrix{}),
                           std::exchange(saved_mm_, {}));
  }
  void restore_saved(std::any s) override {
    using Saved = std::tuple<Tensor, Bf16Matrix, std::shared_ptr<DnnlLinear>>;
    std::tie(x_, xb_, saved_mm_) = std::any_cast<Saved>(std::move(s));
  }

 private:
  int64_t in_, out_;
  Parameter* weight_;
  Parameter* bias_ = nullptr;
  // The bf16 matmuls for (N, in_, out_), built on first use for a few batch sizes at most; a null
  // one marks a shape oneDNN refused (fp32 GEMM instead).
  std::shared_ptr<DnnlLinear> bf16_for(int64_t n);
  int64_t weight_row_block() const;  // rows of dW per block when its rows are reported

  Tensor x_;           // fp32 forward: saved input, (N, in)
  Bf16Matrix xb_;      // bf16 forward: saved input in bf16, (N, in)
  std::shared_ptr<DnnlLinear> saved_mm_;  // the matmul the last recorded bf16 forward ran
  struct Built {
    int64_t n;
    std::shared_ptr<DnnlLinear> mm;
  };
  std::vector<Built> mms_;
};

}  // namespace lockstep
