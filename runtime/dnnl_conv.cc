// DnnlConv: oneDNN convolution primitives (2.6 API) plus the reorders between the caller's plain
// NCHW (or NHWC) / OIHW tensors and the layouts oneDNN prefers. Everything that depends only on the shape
// (primitive descriptors, primitives, reorders) is built in the constructor; a call only wraps the
// caller's pointers. Blocked copies that live within one call sit in per-thread grow-only scratch
// buffers, so a network's layers share them instead of each holding activation-sized buffers.
#include "runtime/dnnl_conv.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <oneapi/dnnl/dnnl.hpp>

#include "runtime/check.h"
#include "runtime/dnnl_engine.h"

namespace lockstep {

namespace {

using md = dnnl::memory::desc;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// Per-thread scratch slots, one per role, so the copies alive at the same time never alias.
enum Slot { kSrc, kSrcW, kDst, kDiffDst, kDiffDstW, kWeights, kDiffWeights, kDiffBias, kScratchpad, kSlots };

float* scratch(Slot slot, size_t bytes) {
  struct Buf {
    float* p = nullptr;
    size_t bytes = 0;
    ~Buf() { std::free(p); }
  };
  thread_local std::array<Buf, kSlots> bufs;
  Buf& b = bufs[slot];
  if (b.bytes < bytes) {
    std::free(b.p);
    b.bytes = (bytes + 63) / 64 * 64;
    b.p = static_cast<float*>(std::aligned_alloc(64, b.bytes));
    LOCKSTEP_CHECK(b.p) << "DnnlConv: out of memory for " << b.bytes << " bytes of scratch";
  }
  return b.p;
}

// A primitive's scratchpad, described by its primitive descriptor, in the shared slot.
dnnl::memory scratchpad(const md& desc) {
  return dnnl::memory(desc, dnnl_cpu_engine(), scratch(kScratchpad, std::max<size_t>(desc.get_size(), 64)));
}

// A move between the caller's layout and oneDNN's; a no-op when they agree.
struct Edge {
  md from, to;
  dnnl::reorder r;
  bool same = true;
  Edge() = default;
  Edge(const md& f, const md& t) : from(f), to(t), same(f == t) {
    if (!same) r = dnnl::reorder(dnnl::reorder::primitive_desc(dnnl_cpu_engine(), f, dnnl_cpu_engine(), t));
  }
  void run(dnnl::stream& s, dnnl::memory f, dnnl::memory t) const { r.execute(s, f, t); }
  // `data` (in `from`) as memory in `to`: the caller's buffer itself, or a copy in scratch `slot`.
  dnnl::memory in(const float* data, Slot slot, dnnl::stream& s) const {
    dnnl::memory src(from, dnnl_cpu_engine(), const_cast<float*>(data));
    if (same) return src;
    dnnl::memory dst(to, dnnl_cpu_engine(), scratch(slot, to.get_size()));
    r.execute(s, src, dst);
    return dst;
  }
};

}  // namespace

struct DnnlConv::Impl {
  DnnlConvShape s;
  int64_t oh, ow;
  dnnl::stream strm{dnnl_cpu_engine()};
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_backward_data::primitive_desc bwd_d_pd;
  dnnl::convolution_backward_weights::primitive_desc bwd_w_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_d;
  dnnl::convolution_backward_weights bwd_w;
  // user -> oneDNN: src (forward), src (backward-weights), weights (forward and backward-data),
  // diff_dst (backward-data and backward-weights); oneDNN -> user: dst, diff_src, diff_weights.
  Edge src, src_w, wei, wei_d, ddst, ddst_w, dst, dsrc, dwei;
  md user_bias;
  dnnl::memory kept;  // the input in bwd_w_pd's src layout, when that is not the caller's
  bool has_kept = false;
};

DnnlConv::DnnlConv(const DnnlConvShape& s) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.s = s;
  const int64_t span = s.dil * (s.k - 1) + 1;
  m.oh = (s.h + 2 * s.pad - span) / s.stride + 1;
  m.ow = (s.w + 2 * s.pad - span) / s.stride + 1;
  const dnnl::memory::dims src_dims{s.n, s.c_in, s.h, s.w}, dst_dims{s.n, s.c_out, m.oh, m.ow};
  const dnnl::memory::dims wei_dims =
      s.groups == 1 ? dnnl::memory::dims{s.c_out, s.c_in, s.k, s.k}
                    : dnnl::memory::dims{s.groups, s.c_out / s.groups, s.c_in / s.groups, s.k, s.k};
  const dnnl::memory::dims strides{s.stride, s.stride}, dil{s.dil - 1, s.dil - 1}, pad{s.pad, s.pad};
  const tag act = s.channels_last ? tag::nhwc : tag::nchw;
  const md user_src(src_dims, dt::f32, act), user_dst(dst_dims, dt::f32, act);
  const md user_wei(wei_dims, dt::f32, s.groups == 1 ? tag::oihw : tag::goihw);
  m.user_bias = md({s.c_out}, dt::f32, tag::x);
  // oneDNN's own layouts (nChw16c on AVX-512) plus reorders at the edges: with NCHW activations it
  // falls back to its GEMM convolution and ResNet-20 trained 2.7x slower. NHWC activations are
  // given to oneDNN as they are: its nhwc convolutions match the blocked ones, and no reorder runs.
  // Under bf16 the inputs of every pass (src, weights, diff_dst) are bf16 and its outputs f32, so
  // the edge reorders into and out of those layouts are also the dtype conversions.
  const tag any_act = s.channels_last ? tag::nhwc : tag::any;
  const dt in_dt = s.dtype == Precision::kBF16 ? dt::bf16 : dt::f32;
  const md any_src(src_dims, in_dt, any_act);
  const md any_dst(dst_dims, in_dt, any_act);  // diff_dst's dtype; dst itself is f32
  const md any_wei(wei_dims, in_dt, tag::any);
  const md f32_src(src_dims, dt::f32, any_act), f32_dst(dst_dims, dt::f32, any_act);
  const md f32_wei(wei_dims, dt::f32, tag::any);
  const md no_bias;
  // Each primitive's scratchpad (AMX backward-weights transposes whole activations into it) comes
  // from one per-thread slot that every convolution shares, not from a buffer per primitive.
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  try {
    auto& e = dnnl_cpu_engine();
    m.fwd_pd = dnnl::convolution_forward::primitive_desc(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                        any_src, any_wei, s.bias ? m.user_bias : no_bias, f32_dst, strides, dil,
                                        pad, pad),
        attr, e);
    m.bwd_d_pd = dnnl::convolution_backward_data::primitive_desc(
        dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, f32_src, any_wei, any_dst,
                                              strides, dil, pad, pad),
        attr, e, m.fwd_pd);
    m.bwd_w_pd = dnnl::convolution_backward_weights::primitive_desc(
        dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, any_src, f32_wei,
                                                 s.bias ? m.user_bias : no_bias, any_dst, strides, dil, pad,
                                                 pad),
        attr, e, m.fwd_pd);
    m.fwd = dnnl::convolution_forward(m.fwd_pd);
    m.bwd_d = dnnl::convolution_backward_data(m.bwd_d_pd);
    m.bwd_w = dnnl::convolution_backward_weights(m.bwd_w_pd);
    m.src = Edge(user_src, m.fwd_pd.src_desc());
    m.src_w = Edge(user_src, m.bwd_w_pd.src_desc());
    m.wei = Edge(user_wei, m.fwd_pd.weights_desc());
    m.wei_d = Edge(user_wei, m.bwd_d_pd.weights_desc());
    m.ddst = Edge(user_dst, m.bwd_d_pd.diff_dst_desc());
    m.ddst_w = Edge(user_dst, m.bwd_w_pd.diff_dst_desc());
    m.dst = Edge(m.fwd_pd.dst_desc(), user_dst);
    m.dsrc = Edge(m.bwd_d_pd.diff_src_desc(), user_src);
    m.dwei = Edge(m.bwd_w_pd.diff_weights_desc(), user_wei);
  } catch (const dnnl::error& err) {
    LOCKSTEP_CHECK(false) << "DnnlConv: oneDNN has no convolution for input (" << s.n << ", " << s.c_in << ", "
                          << s.h << ", " << s.w << "), " << s.c_out << " outputs, k=" << s.k << " in "
                          << precision_name(s.dtype) << ": " << err.what();
  }
}

DnnlConv::~DnnlConv() = default;

std::unique_ptr<DnnlConv> DnnlConv::create(const DnnlConvShape& s) {
  try {
    return std::make_unique<DnnlConv>(s);
  } catch (const Error&) {
    return nullptr;
  }
}

const DnnlConvShape& DnnlConv::shape() const { return impl_->s; }
int64_t DnnlConv::oh() const { return impl_->oh; }
int64_t DnnlConv::ow() const { return impl_->ow; }
bool DnnlConv::has_kept_input() const { return impl_->has_kept; }

void DnnlConv::forward(const float* x, const float* w, const float* b, float* y, bool keep_input) {
  Impl& m = *impl_;
  auto& e = dnnl_cpu_engine();
  m.has_kept = false;
  m.kept = dnnl::memory();
  dnnl::memory src;
  if (keep_input && !m.src_w.same && m.s.dtype == Precision::kFP32) {
    // Backward-weights reads the input in its own layout: keep that copy, and let forward read it
    // too when the layouts agree (they do on AVX-512), saving a reorder. Under bf16 nothing is
    // kept: the caller keeps its fp32 input alive anyway, so a bf16 copy would only add memory
    // (bf16 training must not need more than fp32); backward converts it again instead.
    m.kept = dnnl::memory(m.src_w.to, e);
    m.src_w.run(m.strm, dnnl::memory(m.src_w.from, e, const_cast<float*>(x)), m.kept);
    m.has_kept = true;
    src = m.src_w.to == m.src.to ? m.kept : m.src.in(x, kSrc, m.strm);
  } else {
    src = m.src.in(x, kSrc, m.strm);
  }
  dnnl::memory wei = m.wei.in(w, kWeights, m.strm);
  dnnl::memory dst = m.dst.same ? dnnl::memory(m.dst.from, e, y)
                                : dnnl::memory(m.dst.from, e, scratch(kDst, m.dst.from.get_size()));
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}};
  if (m.s.bias) args[DNNL_ARG_BIAS] = dnnl::memory(m.user_bias, e, const_cast<float*>(b));
  args[DNNL_ARG_SCRATCHPAD] = scratchpad(m.fwd_pd.scratchpad_desc());
  m.fwd.execute(m.strm, args);
  if (!m.dst.same) m.dst.run(m.strm, dst, dnnl::memory(m.dst.to, e, y));
  m.strm.wait();
}

void DnnlConv::backward(const float* x, const float* dy, const float* w, float* dx, float* dw, float* db) {
  Impl& m = *impl_;
  auto& e = dnnl_cpu_engine();
  dnnl::memory ddst = m.ddst.in(dy, kDiffDst, m.strm);
  if (dx) {
    dnnl::memory wei = m.wei_d.in(w, kWeights, m.strm);
    dnnl::memory dsrc = m.dsrc.same ? dnnl::memory(m.dsrc.from, e, dx)
                                    : dnnl::memory(m.dsrc.from, e, scratch(kSrc, m.dsrc.from.get_size()));
    m.bwd_d.execute(m.strm, {{DNNL_ARG_DIFF_DST, ddst},
                             {DNNL_ARG_WEIGHTS, wei},
                             {DNNL_ARG_DIFF_SRC, dsrc},
                             {DNNL_ARG_SCRATCHPAD, scratchpad(m.bwd_d_pd.scratchpad_desc())}});
    if (!m.dsrc.same) m.dsrc.run(m.strm, dsrc, dnnl::memory(m.dsrc.to, e, dx));
  }
  dnnl::memory ddst_w = m.ddst_w.to == m.ddst.to ? ddst : m.ddst_w.in(dy, kDiffDstW, m.strm);
  dnnl::memory src = m.has_kept ? m.kept : m.src_w.in(x, kSrcW, m.strm);
  // oneDNN overwrites its gradients; the caller's accumulate, so compute into scratch and add.
  const size_t nw = m.dwei.to.get_size() / sizeof(float);
  float* dw_user = scratch(kDiffWeights, m.dwei.to.get_size());
  dnnl::memory dwei(m.dwei.from, e, m.dwei.same ? dw_user : scratch(kDst, m.dwei.from.get_size()));
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddst_w},
                                             {DNNL_ARG_DIFF_WEIGHTS, dwei}};
  float* db_tmp = m.s.bias ? scratch(kDiffBias, m.user_bias.get_size()) : nullptr;
  if (m.s.bias) args[DNNL_ARG_DIFF_BIAS] = dnnl::memory(m.user_bias, e, db_tmp);
  args[DNNL_ARG_SCRATCHPAD] = scratchpad(m.bwd_w_pd.scratchpad_desc());
  m.bwd_w.execute(m.strm, args);
  if (!m.dwei.same) m.dwei.run(m.strm, dwei, dnnl::memory(m.dwei.to, e, dw_user));
  m.strm.wait();
#pragma omp simd
  for (size_t i = 0; i < nw; ++i) dw[i] += dw_user[i];
  if (m.s.bias)
    for (int64_t c = 0; c < m.s.c_out; ++c) db[c] += db_tmp[c];
  m.kept = dnnl::memory();
  m.has_kept = false;
}

}  // namespace lockstep
