// The timeline of a job (proto TraceSpec, README "Timeline (trace.json)"): the `--trace STEPS`
// option of `lockstep train` and `lockstep launch`, and each rank's recorder writing
// RUN_DIR/trace/rank-N.json (runtime/trace_recorder.h). launcher/trace_merge.h joins the files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "proto/job.pb.h"
#include "runtime/trace_recorder.h"

namespace lockstep {

// `--trace STEPS`: "N" records optimizer steps 1..N, "A:B" steps A..B (1 <= A <= B), into
// job.trace. Throws Error "--trace: ..." naming the value.
void apply_trace_option(proto::JobSpec& job, const std::string& value);

// RUN_DIR/trace, where every rank writes rank-N.json.
std::string trace_dir(const std::string& run_dir);

// This rank's recorder for a validated job, writing trace_dir(run_dir)/rank-<rank>.json; null when
// job.trace is off. `world_size` (0: unknown) goes into the file, so a merge can name missing ranks.
// A rank-<rank>.json left by an earlier job is removed here, before the job's first step: a rank
// whose new file then cannot be written leaves none, never a stale one that a merge would join.
std::unique_ptr<TraceRecorder> make_trace_recorder(const proto::JobSpec& job, int rank, const std::string& run_dir,
                                                   int world_size = 0);

// "" when the trace range first..last lies inside the steps a run trains (from..total, 1-based
// optimizer steps; from > total: none, the job is complete); else the warning to print at the
// run's start: "trace range 100:120 lies outside this run's steps 1..16; no timeline will be
// written", or, overlapping in part, "... reaches past ...; only those are traced".
std::string trace_range_warning(uint64_t first, uint64_t last, uint64_t from, uint64_t total);

}  // namespace lockstep
