// Reading a job file: protobuf text format parsed with file:line:column errors, then semantic
// checks that name the field at fault, all before any training starts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proto/job.pb.h"
#include "runtime/precision.h"

namespace lockstep {

// The allowed range of every numeric job field (and of the command-line options that override
// them). Lower bounds are in the checks; these are the upper ones, far above any sensible job but
// low enough that no product or unit conversion downstream overflows.
namespace job_limits {
inline constexpr int64_t kMaxFeatures = int64_t{1} << 24;  // features, channels, one input dimension
inline constexpr int64_t kMaxWindow = 1024;                // kernel sizes, strides, padding
inline constexpr int64_t kMaxEpochs = 1000000;             // epochs and every epoch count of the plan
inline constexpr int64_t kMaxBatch = int64_t{1} << 24;     // samples in one global batch
inline constexpr int32_t kMaxThreads = 1024;
inline constexpr int32_t kMaxCropPadding = 64;             // data.augment.random_crop_padding, pixels
inline constexpr int32_t kMaxPrefetch = 64;                // data.prefetch_batches
inline constexpr int32_t kMaxKeep = 1000000;               // phases.keep_checkpoints
inline constexpr float kMaxRate = 1e4f;                    // lr, weight decay, gamma, eta_min
inline constexpr float kMaxNorm = 1e6f;                    // |data.mean|, data.std
inline constexpr float kMinStd = 1e-6f;
inline constexpr float kMinBucketMb = 0.001f;              // distributed.bucket_mb, chunk_mb: about 1 KiB
inline constexpr uintmax_t kMaxJobFileBytes = 16u << 20;   // a job file
inline constexpr float kMaxBucketMb = 65536.f;             // 64 GiB
inline constexpr float kMinSeconds = 0.01f;                // timeouts and intervals
inline constexpr float kMaxHeartbeatS = 3600.f;            // control.heartbeat_interval_s
inline constexpr float kMaxSeconds = 7 * 86400.f;          // timeouts: a week
inline constexpr int64_t kMaxSteps = int64_t{1} << 40;     // optimizer-step counts of a schedule
inline constexpr int64_t kMaxAccumulate = 65536;           // accumulate_steps
inline constexpr double kMaxClip = 1e6;                    // clip_grad.max_norm, clip_grad.clip_value
inline constexpr double kMaxDivFactor = 1e12;              // schedule.one_cycle.*div_factor
inline constexpr int64_t kMaxTraceSteps = 100000;          // steps in trace's range
inline constexpr int64_t kMaxTraceEvents = 10000000;       // trace.max_events
}  // namespace job_limits

// Throws lockstep::Error "PATH:LINE:COL: ..." on a syntax or type error, "PATH: field: ..." on a
// bad value.
proto::JobSpec load_job(const std::string& path);
// The syntax alone (a regular file of at most kMaxJobFileBytes); for commands that apply
// command-line overrides before validate_job / check_job_for_launch.
proto::JobSpec parse_job(const std::string& path);
// The semantic checks alone (also used on specs built in code). Fields are named by their full
// path, the value and the allowed range, e.g.
// "PATH: model.layers[3].conv2d.out_channels: must be positive, got -4 (allowed: (0, 16777216])".
// NaN and infinities are refused everywhere.
void validate_job(const proto::JobSpec& job, const std::string& path);
// Every check a launch makes before any worker starts: validate_job, then the checks that need the
// world size (batch_size >= world_size and a multiple of it, naming batch_size and the world size),
// then that this CPU runs the job's precision ("PATH: precision: BF16 needs a CPU with AVX-512 ...",
// runtime/precision.h), then the model is built once to check layer shapes (the error names the layer), then the data
// set's headers and labels (check_data in launcher/data_check.h). Throws Error "PATH: field: why",
// always one line.
void check_job_for_launch(const proto::JobSpec& job, const std::string& path, int world_size);

// The job's precision field as the kernels' autocast precision.
Precision precision_of(const proto::JobSpec& job);

// The k of the job's top-k eval accuracies: eval.top_k, or [5] when unset and the model has more
// than 5 classes (torchvision's Acc@5), else none.
std::vector<int64_t> eval_top_k(const proto::JobSpec& job);

// Heartbeat settings of a job (control { }), defaults filled in.
struct Heartbeat {
  double interval_s = 0.5;
  double timeout_s = 10.0;
  double startup_s = 600.0;  // registration to the end of start-up
  double straggler_factor = 1.5;    // control.straggler_factor
  int straggler_window_steps = 20;  // control.straggler_window_steps
};
Heartbeat heartbeat_of(const proto::JobSpec& job);

}  // namespace lockstep
