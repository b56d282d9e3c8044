// SelfCommunicator: size-1 collectives; the sum, average, max and min of one rank is its own value.
#include "comm/self/self_communicator.h"

#include <algorithm>

#include "runtime/check.h"

namespace lockstep {

Work SelfCommunicator::all_reduce(std::span<float>, ReduceOp) {
  next_seq();
  return Work();
}

Work SelfCommunicator::all_reduce(std::span<double>, ReduceOp) {
  next_seq();
  return Work();
}

Work SelfCommunicator::all_reduce_bf16(std::span<BFloat16>, ReduceOp op) {
  LOCKSTEP_CHECK(op == ReduceOp::kSum || op == ReduceOp::kAverage) << "all_reduce_bf16: sum or average only";
  next_seq();
  return Work();
}

Work SelfCommunicator::broadcast(std::span<std::byte>, int root) {
  LOCKSTEP_CHECK(root == 0) << "broadcast root " << root << " of 1 rank";
  next_seq();
  return Work();
}

Work SelfCommunicator::all_gather(std::span<const float> in, std::span<float> out) {
  LOCKSTEP_CHECK(out.size() == in.size())
      << "all_gather: out holds " << out.size() << " floats, needs 1 x " << in.size();
  next_seq();
  if (in.data() != out.data()) std::copy(in.begin(), in.end(), out.begin());
  return Work();
}

Work SelfCommunicator::all_gather(std::span<const std::byte> in, std::span<std::byte> out) {
  LOCKSTEP_CHECK(out.size() == in.size())
      << "all_gather: out holds " << out.size() << " bytes, needs 1 x " << in.size();
  next_seq();
  if (in.data() != out.data()) std::copy(in.begin(), in.end(), out.begin());
  return Work();
}

Work SelfCommunicator::barrier() {
  next_seq();
  return Work();
}

}  // namespace lockstep
