// model.init_from (see init_weights.h).
#include "launcher/init_weights.h"

#include "runtime/check.h"
#include "runtime/safetensors/state_dict_file.h"

namespace lockstep {

void load_init_from(const proto::JobSpec& job, Module& model, const std::function<void(const std::string&)>& note) {
  const std::string& path = job.model().init_from();
  if (path.empty()) return;
  const safetensors::LoadOptions options{
      .fill_num_batches_tracked = job.model().init_from_fill_num_batches_tracked(),
      .option_name = "model.init_from_fill_num_batches_tracked"};
  try {
    safetensors::load_into(safetensors::read_file(path), path, model.state_dict(), options, note);
  } catch (const Error& e) {
    throw Error(std::string("model.init_from: ") + e.what());
  }
}

}  // namespace lockstep
