// The shared oneDNN CPU engine, created on first use.
#include "runtime/dnnl_engine.h"

namespace lockstep {

dnnl::engine& dnnl_cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

}  // namespace lockstep
