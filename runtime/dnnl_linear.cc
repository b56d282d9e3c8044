// DnnlLinear: oneDNN matmul primitives (2.6 API) for y = x W^T + b and its two backward GEMMs, in
// plain row-major layouts (oneDNN's brgemm matmul takes them as they are, transposed views
// included), plus the f32 -> bf16 reorders at the edge. Built once per shape; a call wraps pointers.
#include "runtime/dnnl_linear.h"

#include <unordered_map>
#include <oneapi/dnnl/dnnl.hpp>

#include "runtime/check.h"
#include "runtime/dnnl_engine.h"

namespace lockstep {

namespace {

using md = dnnl::memory::desc;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

std::shared_ptr<uint16_t[]> bf16_buffer(int64_t n) { return std::shared_ptr<uint16_t[]>(new uint16_t[n]); }

// f32 `from` -> bf16 `to` through reorder r (round to nearest even).
void convert(const dnnl::reorder& r, dnnl::stream& s, const md& from, const float* src, const md& to, uint16_t* dst) {
  dnnl::memory f(from, dnnl_cpu_engine(), const_cast<float*>(src)), t(to, dnnl_cpu_engine(), dst);
  r.execute(s, f, t);
}

}  // namespace

struct DnnlLinear::Impl {
  DnnlLinearShape s;
  dnnl::stream strm{dnnl_cpu_engine()};
  // f32 -> bf16, same layout: x (N, in), w (out, in), dy (N, out).
  md x32, x16, w32, w16, dy32, dy16;
  dnnl::reorder to16_x, to16_w, to16_dy;
  md wt16, bias, y32, dyt16, dx32, dw32;
  dnnl::matmul fwd, bwd_d, bwd_w;
};

DnnlLinear::DnnlLinear(const DnnlLinearShape& s) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.s = s;
  auto& e = dnnl_cpu_engine();
  m.x32 = md({s.n, s.in}, dt::f32, tag::ab);
  m.x16 = md({s.n, s.in}, dt::bf16, tag::ab);
  m.w32 = md({s.out, s.in}, dt::f32, tag::ab);
  m.w16 = md({s.out, s.in}, dt::bf16, tag::ab);
  m.dy32 = md({s.n, s.out}, dt::f32, tag::ab);
  m.dy16 = md({s.n, s.out}, dt::bf16, tag::ab);
  m.wt16 = md({s.in, s.out}, dt::bf16, tag::ba);    // W^T (in, out): the (out, in) buffer transposed
  m.dyt16 = md({s.out, s.n}, dt::bf16, tag::ba);    // dy^T (out, N): the (N, out) buffer transposed
  m.bias = md({1, s.out}, dt::f32, tag::ab);
  m.y32 = md({s.n, s.out}, dt::f32, tag::ab);
  m.dx32 = md({s.n, s.in}, dt::f32, tag::ab);
  m.dw32 = md({s.out, s.in}, dt::f32, tag::ab);
  try {
    m.to16_x = dnnl::reorder(dnnl::reorder::primitive_desc(e, m.x32, e, m.x16));
    m.to16_w = dnnl::reorder(dnnl::reorder::primitive_desc(e, m.w32, e, m.w16));
    m.to16_dy = dnnl::reorder(dnnl::reorder::primitive_desc(e, m.dy32, e, m.dy16));
    // y (N, out) = x (N, in) W^T (in, out) + b
    m.fwd = dnnl::matmul(dnnl::matmul::primitive_desc(
        s.bias ? dnnl::matmul::desc(m.x16, m.wt16, m.bias, m.y32) : dnnl::matmul::desc(m.x16, m.wt16, m.y32), e));
    // dx (N, in) = dy (N, out) W (out, in)
    m.bwd_d = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(m.dy16, m.w16, m.dx32), e));
    // dW (out, in) += dy^T (out, N) x (N, in): the sum post-op adds to the f32 gradient in place.
    dnnl::post_ops accumulate;
    accumulate.append_sum(1.f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(accumulate);
    m.bwd_w = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(m.dyt16, m.x16, m.dw32), attr, e));
  } catch (const dnnl::error& err) {
    LOCKSTEP_CHECK(false) << "DnnlLinear: oneDNN has no bf16 matmul for (" << s.n << ", " << s.in << ") -> ("
                          << s.n << ", " << s.out << "): " << err.what();
  }
}

DnnlLinear::~DnnlLinear() = default;

std::unique_ptr<DnnlLinear> DnnlLinear::create(const DnnlLinearShape& s) {
  try {
    return std::make_unique<DnnlLinear>(s);
  } catch (const Error&) {
    return nullptr;
  }
}

const DnnlLinearShape& DnnlLinear::shape() const { return impl_->s; }

Bf16Matrix DnnlLinear::forward(const float* x, const float* w, const float* b, float* y, bool keep_input) {
  Impl& m = *impl_;
  auto& e = dnnl_cpu_engine();
  Bf16Matrix kept{bf16_buffer(m.s.n * m.s.in), m.s.n, m.s.in};
  auto w16 = bf16_buffer(m.s.out * m.s.in);
  dnnl::memory x16(m.x16, e, kept.data.get()), wt16(m.wt16, e, w16.get());
  convert(m.to16_x, m.strm, m.x32, x, m.x16, kept.data.get());
  convert(m.to16_w, m.strm, m.w32, w, m.w16, w16.get());
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, x16}, {DNNL_ARG_WEIGHTS, wt16}, {DNNL_ARG_DST, dnnl::memory(m.y32, e, y)}};
  if (m.s.bias) args[DNNL_ARG_BIAS] = dnnl::memory(m.bias, e, const_cast<float*>(b));
  m.fwd.execute(m.strm, args);
  m.strm.wait();
  return keep_input ? kept : Bf16Matrix{};
}

void DnnlLinear::backward(const Bf16Matrix& x, const float* dy, const float* w, float* dx, float* dw) {
  Impl& m = *impl_;
  auto& e = dnnl_cpu_engine();
  LOCKSTEP_CHECK(x.defined() && x.rows == m.s.n && x.cols == m.s.in)
      << "DnnlLinear::backward: no (" << m.s.n << ", " << m.s.in << ") bf16 input kept by forward";
  auto dy16 = bf16_buffer(m.s.n * m.s.out);
  convert(m.to16_dy, m.strm, m.dy32, dy, m.dy16, dy16.get());
  if (dx) {
    auto w16 = bf16_buffer(m.s.out * m.s.in);
    convert(m.to16_w, m.strm, m.w32, w, m.w16, w16.get());
    m.bwd_d.execute(m.strm, {{DNNL_ARG_SRC, dnnl::memory(m.dy16, e, dy16.get())},
                             {DNNL_ARG_WEIGHTS, dnnl::memory(m.w16, e, w16.get())},
                             {DNNL_ARG_DST, dnnl::memory(m.dx32, e, dx)}});
  }
  m.bwd_w.execute(m.strm, {{DNNL_ARG_SRC, dnnl::memory(m.dyt16, e, dy16.get())},
                           {DNNL_ARG_WEIGHTS, dnnl::memory(m.x16, e, x.data.get())},
                           {DNNL_ARG_DST, dnnl::memory(m.dw32, e, dw)}});
  m.strm.wait();
}

}  // namespace lockstep
