// Moving tensors between a live model/optimizer and a Checkpoint: snapshots are detached CPU
// copies; restoring copies in place (CPU or CUDA) so views of the live tensors stay valid.
#include <cstring>

#include "runtime/check.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/device.h"

namespace lockstep {

void copy_tensors(const std::vector<NamedTensor>& from,
                  const std::vector<std::pair<std::string, Tensor*>>& to, const std::string& what) {
  LOCKSTEP_FAIL_IF(from.size() != to.size())
      << what << ": the checkpoint has " << from.size() << " tensors, this run has " << to.size();
  // Everything is checked before anything is copied, so a mismatch leaves the live tensors alone.
  for (size_t i = 0; i < from.size(); ++i) {
    const std::string& name = to[i].first;
    LOCKSTEP_FAIL_IF(from[i].name != name) << what << ": tensor " << i << " is '" << from[i].name
                                           << "' in the checkpoint, '" << name << "' in this run";
    const Tensor* live = to[i].second;
    LOCKSTEP_FAIL_IF(live == nullptr || !live->defined()) << what << " '" << name << "': no live tensor";
    LOCKSTEP_FAIL_IF(from[i].tensor.shape() != live->shape())
        << what << " '" << name << "': shape " << shape_str(from[i].tensor.shape())
        << " in the checkpoint, " << shape_str(live->shape()) << " in this run";
    LOCKSTEP_FAIL_IF(from[i].tensor.device() != Device::kCPU)
        << what << " '" << name << "': checkpoint tensor is not on the CPU";
  }
  for (size_t i = 0; i < from.size(); ++i) {
    Tensor& live = *to[i].second;
    const size_t bytes = static_cast<size_t>(live.numel()) * sizeof(float);
    if (bytes == 0) continue;
    if (live.device() == Device::kCPU) {
      std::memcpy(live.data(), from[i].tensor.data(), bytes);
    } else {
      cuda_copy_to_device(live.data(), from[i].tensor.data(), bytes);
    }
  }
}

std::vector<NamedTensor> snapshot_tensors(const std::vector<std::pair<std::string, Tensor*>>& from) {
  std::vector<NamedTensor> out;
  out.reserve(from.size());
  for (const auto& [name, t] : from) {
    LOCKSTEP_FAIL_IF(t == nullptr || !t->defined()) << "snapshot of '" << name << "': no tensor";
    // to() returns the tensor itself when it is already on the CPU; clone() detaches it.
    out.push_back({name, t->device() == Device::kCPU ? t->clone() : t->to(Device::kCPU)});
  }
  return out;
}

}  // namespace lockstep
