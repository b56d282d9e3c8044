// A model's state_dict as a safetensors file under PyTorch's keys and dtypes, both ways: what
// torch.save(model.state_dict()) would hold, in the format safetensors.torch.save_file writes, and
// torch's nn.Module.load_state_dict(strict=True) checks on the way in.
//
// Dtypes: BatchNorm's num_batches_tracked (a key ending in "num_batches_tracked") is I64, as torch
// holds it (lockstep keeps the count in a float, exact to 2^24); every other entry is F32. Reading,
// float tensors must be F32: F16, BF16 and F64 files are refused naming the key and the dtype
// (convert with .float() before saving), so a load never rounds silently.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/safetensors/safetensors.h"

namespace lockstep::safetensors {

// True for the keys torch stores as int64: "num_batches_tracked" and "*.num_batches_tracked".
bool is_count_key(const std::string& key);

// The state_dict (CPU tensors, state_dict order) as a file; metadata {"format": "pt"}, as
// safetensors.torch writes. A num_batches_tracked that is not a whole number in [0, 2^53] throws
// Error naming the key and the value.
File from_state_dict(const std::vector<NamedTensor>& state);

struct LoadOptions {
  // A BatchNorm num_batches_tracked absent from the file is set to 0 with a warning, as torch 1.13's
  // load_state_dict does silently; false (default): an error naming the key.
  bool fill_num_batches_tracked = false;
  std::string option_name = "fill_num_batches_tracked";  // named in the error that suggests it
};

// Copies the file's tensors into the live state_dict (CPU or CUDA tensors, in place), after
// checking keys and shapes one by one: every problem is one line naming `file` and
//   the missing key ("missing key \"fc.bias\" (shape [10])", and how many more are missing),
//   the unexpected key, or the key whose shape differs ("shape [10, 64] in the file, [10, 128] in
//   the model"), or a dtype other than F32 (I64 for num_batches_tracked), or a NaN or Inf value
//   (the key and the first bad flat index).
// Keys that all carry DDP's "module." prefix (a state_dict of a DistributedDataParallel model) are
// recognised: the prefix is stripped, as torch.nn.modules.utils.consume_prefix_in_state_dict_if_present
// does, and note() says so; when only some keys carry it and keys do not match, the error names the
// prefix (how many keys carry it, and one of them). Nothing is copied unless every check passes.
void load_into(const File& f, const std::string& file, const std::vector<std::pair<std::string, Tensor*>>& state,
               const LoadOptions& options, const std::function<void(const std::string&)>& note);

}  // namespace lockstep::safetensors
