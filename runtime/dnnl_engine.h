// The process's one oneDNN CPU engine, shared by every oneDNN primitive lockstep builds
// (convolution, matmul, reorders) so their memory objects can be passed between them.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

namespace lockstep {

dnnl::engine& dnnl_cpu_engine();

}  // namespace lockstep
