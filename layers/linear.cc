// Linear forward/backward on the kernel library's GEMM (fp32) or oneDNN's bf16 matmul (autocast).
#include "layers/linear.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "layers/init.h"
#include "runtime/autograd.h"
#include "runtime/check.h"
#include "runtime/gemm.h"
#include "runtime/grad_mode.h"
#include "runtime/precision.h"

namespace lockstep {

Linear::Linear(int64_t in, int64_t out, bool bias) : in_(in), out_(out) {
  LOCKSTEP_FAIL_IF(in <= 0 || out <= 0) << "Linear(" << in << "->" << out << "): sizes must be positive";
  weight_ = &register_parameter("weight", Tensor::zeros({out, in}));
  if (bias) bias_ = &register_parameter("bias", Tensor::zeros({out}));
}

std::string Linear::describe() const {
  std::ostringstream os;
  os << "Linear(" << in_ << "->" << out_ << ")";
  return os.str();
}

// kaiming_uniform_(a=sqrt(5)) reduces to U(-1/sqrt(in), 1/sqrt(in)); the bias uses the same bound.
void Linear::reset_parameters(Philox& rng, uint32_t& slot) {
  float bound = 1.f / std::sqrt(static_cast<float>(in_));
  fill_uniform(weight_->value, bound, rng, slot++);
  if (bias_) fill_uniform(bias_->value, bound, rng, slot++);
}

Shape Linear::output_shape(const Shape& in) const {
  LOCKSTEP_FAIL_IF(in.size() != 2 || in[1] != in_)
      << describe() << ": expected input (N, " << in_ << "), got " << shape_str(in);
  return {in[0], out_};
}

std::shared_ptr<DnnlLinear> Linear::bf16_for(int64_t n) {
  for (auto& b : mms_)
    if (b.n == n) return b.mm;
  constexpr size_t kMaxShapes = 4;  // training batch, last batch, eval batch
  if (mms_.size() == kMaxShapes) mms_.erase(mms_.begin());  // a saved forward keeps its own alive
  mms_.push_back({n, DnnlLinear::create({.n = n, .in = in_, .out = out_, .bias = bias_ != nullptr})});
  return mms_.back().mm;
}

// About 256 KiB of dW per block (a multiple of 16 rows): large enough that each block's GEMM still
// runs at full speed, small enough that a 1.6 MB weight gradient goes out in about six pieces.
int64_t Linear::weight_row_block() const {
  constexpr int64_t kBlockFloats = int64_t{1} << 16;
  const int64_t rows = (kBlockFloats / in_ + 15) / 16 * 16;
  return std::max<int64_t>(16, rows);
}

Tensor Linear::forward_impl(const Tensor& x) {
  output_shape(x.shape());
  const int n = static_cast<int>(x.dim(0));
  Tensor y = Tensor::empty({n, out_});
  x_ = Tensor();
  xb_ = Bf16Matrix{};
  saved_mm_.reset();
  if (autocast_precision() == Precision::kBF16) {
    if (auto mm = bf16_for(n)) {
      const bool save = grad_enabled();
      xb_ = mm->forward(x.data(), weight_->value.data(), bias_ ? bias_->value.data() : nullptr, y.data(), save);
      if (save) saved_mm_ = std::move(mm);
      return y;
    }
  }
  if (bias_) {
    for (int i = 0; i < n; ++i) std::copy_n(bias_->value.data(), out_, y.data() + i * out_);
  }
  gemm(false, true, n, out_, in_, 1.f, x.data(), in_, weight_->value.data(), in_, bias_ ? 1.f : 0.f,
       y.data(), out_);
  x_ = grad_enabled() ? x : Tensor();
  return y;
}

Tensor Linear::backward(const Tensor& dy) {
  require_saved(x_.defined() || saved_mm_);
  const int n = static_cast<int>(saved_mm_ ? xb_.rows : x_.dim(0));
  LOCKSTEP_CHECK(dy.numel() == n * out_) << describe() << ": grad " << shape_str(dy.shape());
  // Parameter gradients first, each declared final as soon as it is (grad_final: the reducer may
  // start all-reducing it while the rest runs), then dx. The order changes no value.
  if (bias_) {  // db (out) += sum over rows of dy, in fp32 in both precisions
    float* db = bias_->grad.data();
    for (int i = 0; i < n; ++i)
      for (int64_t j = 0; j < out_; ++j) db[j] += dy[i * out_ + j];
    grad_final(*bias_);
  }
  Tensor dx;
  if (needs_input_grad()) dx = Tensor::empty({n, in_});
  if (saved_mm_) {  // bf16: dW += bf16(dy)^T bf16(x), dx = bf16(dy) bf16(W), both in f32
    saved_mm_->backward(xb_, dy.data(), weight_->value.data(), dx.defined() ? dx.data() : nullptr,
                        weight_->grad.data());
    grad_final(*weight_);
  } else {
    // dW (out, in) += dy^T (out, N) x (N, in): in blocks of rows when the reducer listens for them,
    // each reported final as it is done, so its all-reduce overlaps the next block.
    const int64_t block = grad_rows_wanted(*weight_) ? weight_row_block() : out_;
    for (int64_t r0 = 0; r0 < out_; r0 += block) {
      const int64_t rows = std::min(block, out_ - r0);
      gemm(true, false, static_cast<int>(rows), in_, n, 1.f, dy.data() + r0, out_, x_.data(), in_, 1.f,
           weight_->grad.data() + r0 * in_, in_);
      if (r0 + rows < out_) grad_rows_final(*weight_, r0 + rows);
    }
    grad_final(*weight_);
    // dx (N, in) = dy (N, out) W (out, in)
    if (dx.defined())
      gemm(false, false, n, in_, out_, 1.f, dy.data(), out_, weight_->value.data(), in_, 0.f, dx.data(), in_);
  }
  x_ = Tensor();
  xb_ = Bf16Matrix{};
  saved_mm_.reset();
  return dx;
}

}  // namespace lockstep
