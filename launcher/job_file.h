// Reading a job file: protobuf text format parsed with file:line:column errors, then semantic
// checks that name the field at fault, all before any training starts.
#pragma once

#include <string>

#include "proto/job.pb.h"

namespace lockstep {

// Throws lockstep::Error "PATH:LINE:COL: ..." on a syntax or type error, "PATH: field: ..." on a
// bad value.
proto::JobSpec load_job(const std::string& path);
// The semantic checks alone (also used on specs built in code). Fields are named by their full
// path, e.g. "PATH: model.layers[3].conv2d.out_channels: must be positive, got -4".
void validate_job(const proto::JobSpec& job, const std::string& path);
// Every check a launch makes before any worker starts: validate_job, then the checks that need the
// world size (batch_size >= world_size and a multiple of it, naming batch_size and the world size),
// then the model is built once to check layer shapes (the error names the layer). Throws Error
// "PATH: field: why", always one line.
void check_job_for_launch(const proto::JobSpec& job, const std::string& path, int world_size);

// Heartbeat settings of a job (control { }), defaults filled in.
struct Heartbeat {
  double interval_s = 0.5;
  double timeout_s = 10.0;
};
Heartbeat heartbeat_of(const proto::JobSpec& job);

}  // namespace lockstep
