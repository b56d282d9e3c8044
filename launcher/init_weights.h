// model.init_from: a job's initial weights from a safetensors state_dict (proto/job.proto,
// runtime/safetensors/state_dict_file.h), loaded into the freshly built model before the ranks sync.
#pragma once

#include <functional>
#include <string>

#include "layers/module.h"
#include "proto/job.pb.h"

namespace lockstep {

// Loads job.model().init_from (a no-op when unset) into every parameter and buffer of `model`,
// checked key by key. note() gets the notes and warnings (DDP prefix stripped, num_batches_tracked
// filled under model.init_from_fill_num_batches_tracked); may be empty. Throws Error, one line:
// "model.init_from: w.safetensors: missing key \"fc.bias\" (shape [10] in the model)".
void load_init_from(const proto::JobSpec& job, Module& model, const std::function<void(const std::string&)>& note);

}  // namespace lockstep
