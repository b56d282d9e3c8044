// `lockstep export RUN_DIR|CHECKPOINT_DIR --safetensors FILE`: the model's state_dict of a
// checkpoint (a run directory's newest valid one, or the one given) as a safetensors file under
// PyTorch's keys and dtypes (runtime/safetensors/state_dict_file.h), written atomically. Optimizer
// and RNG state stay in the checkpoint: export is for models.
#include <cstdio>
#include <filesystem>
#include <string>

#include "launcher/cli.h"
#include "launcher/commands/commands.h"
#include "runtime/check.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/checkpoint_format.h"
#include "runtime/checkpoint/user_file.h"
#include "runtime/safetensors/state_dict_file.h"

namespace lockstep {
namespace {

constexpr const char* kUsage = "lockstep export RUN_DIR|CHECKPOINT_DIR --safetensors FILE";

// The checkpoint to export: `path` itself when it holds a MANIFEST, else the newest valid one of
// the run directory `path`.
std::pair<std::string, Checkpoint> checkpoint_at(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  LOCKSTEP_FAIL_IF(fs::is_regular_file(path, ec))
      << path << ": is a file, not a run or checkpoint directory; usage: " << kUsage;
  const std::string kind = checkpoint_io::non_regular_kind(path);
  LOCKSTEP_FAIL_IF(!kind.empty() && kind != "a directory")
      << path << ": is " << kind << ", not a run or checkpoint directory; usage: " << kUsage;
  LOCKSTEP_FAIL_IF(!fs::is_directory(path, ec)) << path << ": no such directory; usage: " << kUsage;
  if (fs::exists(fs::path(path) / checkpoint_format::kManifestFile, ec)) return {path, read_checkpoint(path)};
  const fs::path ckpts = fs::path(path) / "checkpoints";
  const bool run_dir = fs::is_directory(ckpts, ec) || fs::exists(fs::path(path) / "job.textproto", ec) ||
                       fs::exists(fs::path(path) / "metrics.jsonl", ec) || fs::exists(fs::path(path) / ".lock", ec);
  LOCKSTEP_FAIL_IF(!run_dir) << path << ": neither a checkpoint (no " << checkpoint_format::kManifestFile
                             << ") nor a run directory (no checkpoints/)";
  LOCKSTEP_FAIL_IF(!fs::is_directory(ckpts, ec) || fs::is_empty(ckpts, ec))
      << "run directory " << path << " has no checkpoint yet";
  auto latest = latest_valid_checkpoint(path, [](const std::string& w) {
    std::fprintf(stderr, "lockstep export: %s\n", w.c_str());
  });
  LOCKSTEP_FAIL_IF(!latest) << path << ": the run directory holds no valid checkpoint";
  return std::move(*latest);
}

int run(int argc, char** argv) {
  std::string from, out;
  cli::CommandLine cl(std::string("usage: ") + kUsage + "\n", std::string("; usage: ") + kUsage);
  cl.refuse_empty_values();
  cl.text("--safetensors", out);
  cl.positional("from", from);
  if (!cl.parse(argc, argv)) return 0;  // --help
  LOCKSTEP_FAIL_IF(from.empty()) << "no run directory or checkpoint given; usage: " << kUsage;
  LOCKSTEP_FAIL_IF(out.empty()) << "no output given (--safetensors FILE); usage: " << kUsage;
  checkpoint_io::check_output_file("--safetensors ", out);  // before any work: Note [user-named outputs]
  const auto [dir, ckpt] = checkpoint_at(from);
  if (!ckpt.rank_buffers.empty())
    std::fprintf(stderr,
                 "lockstep export: %s holds per-rank BatchNorm statistics (eval_buffers AVERAGE); exporting rank "
                 "0's, as the model state of the checkpoint\n",
                 dir.c_str());
  safetensors::File f = safetensors::from_state_dict(ckpt.model);
  f.metadata["lockstep_step"] = std::to_string(ckpt.state.step());
  if (ckpt.state.has_job()) f.metadata["lockstep_job"] = ckpt.state.job().name();
  safetensors::write_file(out, f);
  std::printf("exported %zu tensors of %s (step %llu) to %s\n", f.tensors.size(), dir.c_str(),
              static_cast<unsigned long long>(ckpt.state.step()), out.c_str());
  return 0;
}

const commands::Registrar reg("export", kUsage, run);

}  // namespace
}  // namespace lockstep
