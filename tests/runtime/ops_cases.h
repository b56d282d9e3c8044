// The op cases of tests/golden/gen_ops.py, by name: what each computes from its inputs. Shared by
// the golden replay (ops_test.cc) and the finite-difference check (ops_gradcheck_test.cc).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "runtime/ops.h"

namespace lockstep::testing {

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

inline const std::map<std::string, OpFn>& op_cases() {
  static const std::map<std::string, OpFn> cases = [] {
    std::map<std::string, OpFn> c;
    using V = const std::vector<Tensor>&;
    for (const char* form : {"same", "scalar", "scalar0d", "channel", "bias", "both", "left"}) {
      c[std::string("add.") + form] = [](V x) { return x[0] + x[1]; };
      c[std::string("sub.") + form] = [](V x) { return sub(x[0], x[1]); };
      c[std::string("mul.") + form] = [](V x) { return x[0] * x[1]; };
    }
    c["mul_float"] = [](V x) { return mul(x[0], -1.5f); };
    for (const char* form : {"2d", "3d", "3d2d", "k1"}) c[std::string("matmul.") + form] = [](V x) { return matmul(x[0], x[1]); };
    c["reshape"] = [](V x) { return reshape(x[0], {4, -1}); };
    c["view"] = [](V x) { return view(x[0], {3, 2, 4}); };
    c["flatten.1"] = [](V x) { return flatten(x[0]); };
    c["flatten.2"] = [](V x) { return flatten(x[0], 2); };
    c["flatten.mid"] = [](V x) { return flatten(x[0], 1, 2); };
    c["cat.dim0"] = [](V x) { return cat(x, 0); };
    c["cat.dim1"] = [](V x) { return cat(x, 1); };
    c["cat.last"] = [](V x) { return cat(x, -1); };
    c["sum.all"] = [](V x) { return sum(x[0]); };
    c["sum.dim1"] = [](V x) { return sum(x[0], {1}); };
    c["sum.hw_keep"] = [](V x) { return sum(x[0], {2, 3}, true); };
    c["sum.neg"] = [](V x) { return sum(x[0], {-1, 0}); };
    c["sum.empty_dims"] = [](V x) { return sum(x[0], {}); };
    c["mean.all"] = [](V x) { return mean(x[0]); };
    c["mean.dim1"] = [](V x) { return mean(x[0], {1}); };
    c["mean.hw_keep"] = [](V x) { return mean(x[0], {2, 3}, true); };
    c["mean.neg"] = [](V x) { return mean(x[0], {-1, 0}); };
    c["mean.empty_dims"] = [](V x) { return mean(x[0], {}); };
    const std::map<std::string, OpFn> acts = {
        {"relu", [](V x) { return relu(x[0]); }},
        {"leaky_relu", [](V x) { return leaky_relu(x[0]); }},
        {"leaky_relu.slope", [](V x) { return leaky_relu(x[0], 0.2f); }},
        {"gelu.none", [](V x) { return gelu(x[0]); }},
        {"gelu.tanh", [](V x) { return gelu(x[0], "tanh"); }},
        {"silu", [](V x) { return silu(x[0]); }},
        {"sigmoid", [](V x) { return sigmoid(x[0]); }},
        {"tanh", [](V x) { return lockstep::tanh(x[0]); }},
    };
    for (const auto& [name, fn] : acts) {
      c[name] = fn;
      c[name + ".special"] = fn;  // NaN, infinities, zeros, tails
    }
    return c;
  }();
  return cases;
}

}  // namespace lockstep::testing
