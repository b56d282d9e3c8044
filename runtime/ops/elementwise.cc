// add, sub, mul with NumPy broadcasting, and their backward (gradients summed over broadcast dims).
#include <utility>

#include "runtime/autograd.h"
#include "runtime/ops.h"
#include "runtime/ops/op_util.h"

namespace lockstep {
namespace ops_detail {

Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {  // i counts from the last dim
    const int64_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    const int64_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    LOCKSTEP_FAIL_IF(da != db && da != 1 && db != 1)
        << op << ": shapes " << shape_str(a) << " and " << shape_str(b) << " do not broadcast";
    out[rank - 1 - i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> s(out.size(), 0);
  int64_t stride = 1;
  for (size_t i = 0; i < in.size(); ++i) {  // i counts from the last dim
    const size_t di = in.size() - 1 - i, dout = out.size() - 1 - i;
    s[dout] = in[di] == 1 && out[dout] != 1 ? 0 : stride;
    stride *= in[di];
  }
  return s;
}

Tensor sum_to(const Tensor& g, const Shape& out, const Shape& in) {
  if (in == out) return g.reshape(in);  // a channels_last g of shape `in` stays as it is
  std::vector<double> acc(static_cast<size_t>(shape_numel(in)), 0.0);
  const std::vector<int64_t> s = broadcast_strides(in, out);
  const float* gp = g.data();
  for_each_broadcast(out, s, s, [&](int64_t i, int64_t j, int64_t) { acc[j] += gp[i]; });
  Tensor r = Tensor::empty(in);
  for (size_t j = 0; j < acc.size(); ++j) r[static_cast<int64_t>(j)] = static_cast<float>(acc[j]);
  return r;
}

}  // namespace ops_detail

namespace {
using namespace ops_detail;

enum class Arith { kAdd, kSub, kMul };

Tensor arith(const char* op, Arith kind, const Tensor& a_in, const Tensor& b_in) {
  check_input(op, a_in);
  check_input(op, b_in);
  const Shape out_shape = broadcast_shape(op, a_in.shape(), b_in.shape());
  // Note [memory format]: operands of one shape and one format are combined storage to storage and
  // the output keeps their format; otherwise (broadcasting, or mixed formats) both are read as
  // contiguous, as torch's TensorIterator falls back to for mixed formats.
  const bool same = a_in.shape() == b_in.shape() && a_in.memory_format() == b_in.memory_format();
  const Tensor a = same ? a_in : a_in.contiguous(), b = same ? b_in : b_in.contiguous();
  Tensor out = Tensor::empty(out_shape, same ? a.memory_format() : MemoryFormat::kContiguous);
  const float* x = a.data();
  const float* y = b.data();
  float* o = out.data();
  if (a.shape() == b.shape()) {
    const int64_t n = out.numel();
    switch (kind) {
      case Arith::kAdd: for (int64_t i = 0; i < n; ++i) o[i] = x[i] + y[i]; break;
      case Arith::kSub: for (int64_t i = 0; i < n; ++i) o[i] = x[i] - y[i]; break;
      case Arith::kMul: for (int64_t i = 0; i < n; ++i) o[i] = x[i] * y[i]; break;
    }
  } else {
    const auto sa = broadcast_strides(a.shape(), out_shape), sb = broadcast_strides(b.shape(), out_shape);
    switch (kind) {
      case Arith::kAdd: for_each_broadcast(out_shape, sa, sb, [&](int64_t i, int64_t p, int64_t q) { o[i] = x[p] + y[q]; }); break;
      case Arith::kSub: for_each_broadcast(out_shape, sa, sb, [&](int64_t i, int64_t p, int64_t q) { o[i] = x[p] - y[q]; }); break;
      case Arith::kMul: for_each_broadcast(out_shape, sa, sb, [&](int64_t i, int64_t p, int64_t q) { o[i] = x[p] * y[q]; }); break;
    }
  }
  if (!should_record({&a, &b})) return out;

  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  const Shape sa = a.shape(), sb = b.shape();
  if (kind != Arith::kMul) {
    // d(a +- b) = g, -g: only the broadcast reduction.
    return record(op, out, {a, b}, [=](const Tensor& g) -> std::vector<Tensor> {
      Tensor ga, gb;
      if (need_a) ga = sum_to(g, out_shape, sa);
      if (need_b) {
        gb = sum_to(g, out_shape, sb).clone();
        if (kind == Arith::kSub)
          for (float& v : gb.span()) v = -v;
      }
      return {ga, gb};
    });
  }
  // d(a * b) = g * b, g * a, each reduced to its input's shape: save the other factor only.
  Tensor keep_a = need_b ? a.detach() : Tensor(), keep_b = need_a ? b.detach() : Tensor();
  return record(op, out, {a, b}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor ga, gb;
    const float* gp = g.data();
    if (sa == sb) {  // g, a and b in one format (the engine hands g over in the output's)
      const int64_t n = g.numel();
      if (need_a) {
        ga = Tensor::empty(sa, g.memory_format());
        for (int64_t i = 0; i < n; ++i) ga[i] = gp[i] * keep_b[i];
      }
      if (need_b) {
        gb = Tensor::empty(sb, g.memory_format());
        for (int64_t i = 0; i < n; ++i) gb[i] = gp[i] * keep_a[i];
      }
      return {ga, gb};
    }
    const auto st_a = broadcast_strides(sa, out_shape), st_b = broadcast_strides(sb, out_shape);
    // Products formed in float as torch does (g * b), then reduced in double.
    auto product_sum = [&](const Shape& in, const std::vector<int64_t>& st_in, const Tensor& other,
                           const std::vector<int64_t>& st_other) {
      std::vector<double> acc(static_cast<size_t>(shape_numel(in)), 0.0);
      const float* op_ = other.data();
      for_each_broadcast(out_shape, st_in, st_other,
                         [&](int64_t i, int64_t p, int64_t q) { acc[p] += gp[i] * op_[q]; });
      Tensor r = Tensor::empty(in);
      for (size_t j = 0; j < acc.size(); ++j) r[static_cast<int64_t>(j)] = static_cast<float>(acc[j]);
      return r;
    };
    if (need_a) ga = product_sum(sa, st_a, keep_b, st_b);
    if (need_b) gb = product_sum(sb, st_b, keep_a, st_a);
    return {ga, gb};
  });
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return arith("add", Arith::kAdd, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return arith("sub", Arith::kSub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return arith("mul", Arith::kMul, a, b); }

Tensor mul(const Tensor& a, float s) {
  ops_detail::check_input("mul", a);
  Tensor out = Tensor::empty(a.shape(), a.memory_format());
  const float* x = a.data();
  float* o = out.data();
  for (int64_t i = 0; i < out.numel(); ++i) o[i] = x[i] * s;
  if (!should_record({&a})) return out;
  const Shape shape = a.shape();
  return record("mul", out, {a}, [shape, s](const Tensor& g) -> std::vector<Tensor> {
    Tensor ga = Tensor::empty(shape, g.memory_format());
    const float* gp = g.data();
    for (int64_t i = 0; i < ga.numel(); ++i) ga[i] = gp[i] * s;
    return {ga};
  });
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator*(const Tensor& a, float s) { return mul(a, s); }
Tensor operator*(float s, const Tensor& a) { return mul(a, s); }

}  // namespace lockstep
