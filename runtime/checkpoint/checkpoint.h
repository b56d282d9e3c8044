// Atomic checkpoints: a checkpoint is a directory run_dir/checkpoints/ckpt-<step, 9 digits>/ that
// appears whole or not at all (written under a temporary name, fsynced, renamed into place), and
// is verified file by file against its MANIFEST (size and CRC-32) before any tensor is parsed.
// The format is proto/checkpoint.proto. Tensors are CPU float32, little-endian.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proto/checkpoint.pb.h"
#include "runtime/tensor.h"

namespace lockstep {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

struct Checkpoint {
  proto::CheckpointState state;
  std::vector<NamedTensor> model;      // state_dict order (parameters and buffers)
  std::vector<NamedTensor> optimizer;  // optimizer state tensors, in the optimizer's order
  // Buffers that are rank-local (BatchNorm running statistics under eval_buffers AVERAGE without
  // SyncBatchNorm): ranks 1..N-1's, named "rank<r>/<state_dict name>"; rank 0's are in `model`.
  // Empty (and no rank_buffers.pb) when every rank holds rank 0's. Resumed on another number of
  // ranks, every rank gets their mean over the saved ranks (Note [elastic resume]).
  std::vector<NamedTensor> rank_buffers;
};

// Writes run_dir/checkpoints/ckpt-<state.step>/ atomically and returns its path. Every file goes
// into ckpt-<step>.tmp-<pid> and is fsynced, MANIFEST last; the directory is fsynced, renamed into
// place (atomically exchanged with an existing checkpoint of the same step, which is then removed)
// and the parent fsynced. Then only the newest `keep` checkpoints are kept (keep <= 0 keeps all).
// On failure the temporary directory is removed, existing checkpoints are untouched, and Error
// names the checkpoint, the file and the OS error:
//   "checkpoint runs/x/checkpoints/ckpt-000000468: writing model.pb: No space left on device".
// One writer per run directory (rank 0), one write at a time: temporary directories whose pid is
// not alive on this host, or are this process's own, are taken for a crashed writer's and removed.
std::string write_checkpoint(const std::string& run_dir, const Checkpoint& c, int keep);

// Verifies MANIFEST's CRC, then every listed file's size and CRC-32, then parses. Error names the
// checkpoint directory, the file at fault and what is wrong (truncated, CRC mismatch, missing,
// unparsable).
Checkpoint read_checkpoint(const std::string& dir);

// Checkpoint directories (ckpt-<digits>) under run_dir/checkpoints, highest step first, damaged
// ones included (one without MANIFEST is damaged: a writer renames only complete ones into place).
// Temporary *.tmp-* directories are ignored.
std::vector<std::string> list_checkpoints(const std::string& run_dir);

// The newest checkpoint that reads back valid, with its directory. Each damaged one met on the way
// is reported through warn("checkpoint DIR is damaged (...); trying the previous one") and
// skipped. std::nullopt when none is valid.
std::optional<std::pair<std::string, Checkpoint>> latest_valid_checkpoint(
    const std::string& run_dir, const std::function<void(const std::string&)>& warn);

// Copies checkpoint tensors into live ones (CPU or CUDA) in place, so views of them stay valid.
// Names, order and shapes must match; Error names `what` ("model", "optimizer") and the tensor.
void copy_tensors(const std::vector<NamedTensor>& from,
                  const std::vector<std::pair<std::string, Tensor*>>& to, const std::string& what);
// CPU copies of live tensors, detached from them (training may go on while they are written).
std::vector<NamedTensor> snapshot_tensors(const std::vector<std::pair<std::string, Tensor*>>& from);

}  // namespace lockstep
