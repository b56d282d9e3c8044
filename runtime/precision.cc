// Autocast precision: the thread-local state behind AutocastGuard.
#include "runtime/precision.h"

#include <oneapi/dnnl/dnnl.hpp>

#include "runtime/dnnl_engine.h"

namespace lockstep {

namespace {
thread_local Precision current = Precision::kFP32;
}  // namespace

const char* precision_name(Precision p) { return p == Precision::kBF16 ? "BF16" : "FP32"; }

Precision autocast_precision() { return current; }

std::string cpu_isa_name() {
  using isa = dnnl::cpu_isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case isa::sse41: return "sse41";
    case isa::avx: return "avx";
    case isa::avx2: return "avx2";
    case isa::avx2_vnni: return "avx2_vnni";
    case isa::avx512_mic: return "avx512_mic";
    case isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case isa::avx512_core: return "avx512_core";
    case isa::avx512_core_vnni: return "avx512_core_vnni";
    case isa::avx512_core_bf16: return "avx512_core_bf16";
    case isa::avx512_core_amx: return "avx512_core_amx";
    default: return "none (no SSE4.1)";
  }
}

namespace {

// Whether oneDNN creates a bf16 -> f32 matmul and convolution on this CPU (once per process: the
// ISA oneDNN uses is fixed at its first use).
bool onednn_has_bf16() {
  static const bool has = [] {
    using md = dnnl::memory::desc;
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    try {
      dnnl::engine& e = dnnl_cpu_engine();
      dnnl::matmul::primitive_desc mm(
          dnnl::matmul::desc(md({4, 8}, dt::bf16, tag::ab), md({8, 4}, dt::bf16, tag::ab), md({4, 4}, dt::f32, tag::ab)),
          e);
      dnnl::convolution_forward::primitive_desc conv(
          dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                          md({2, 16, 8, 8}, dt::bf16, tag::any), md({16, 16, 3, 3}, dt::bf16, tag::any),
                                          md({2, 16, 8, 8}, dt::f32, tag::any), {1, 1}, {1, 1}, {1, 1}),
          e);
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return has;
}

}  // namespace

std::string precision_unsupported(Precision p) {
  if (p == Precision::kFP32 || onednn_has_bf16()) return "";
  return std::string(precision_name(p)) +
         " needs a CPU with AVX-512 (oneDNN ISA avx512_core or newer); this CPU's is " + cpu_isa_name();
}

AutocastGuard::AutocastGuard(Precision p) : previous_(current) { current = p; }
AutocastGuard::~AutocastGuard() { current = previous_; }

}  // namespace lockstep
