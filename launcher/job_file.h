// Reading a job file: protobuf text format parsed with file:line:column errors, then semantic
// checks that name the field at fault, all before any training starts.
#pragma once

#include <string>

#include "proto/job.pb.h"

namespace lockstep {

// Throws lockstep::Error "PATH:LINE:COL: ..." on a syntax or type error, "PATH: field: ..." on a
// bad value.
proto::JobSpec load_job(const std::string& path);
// The semantic checks alone (also used on specs built in code).
void validate_job(const proto::JobSpec& job, const std::string& path);

}  // namespace lockstep
