// Joins the ranks' timelines (RUN_DIR/trace/rank-N.json, runtime/trace_recorder.h) into one
// Chrome trace-event file, RUN_DIR/trace.json: every rank's events (pid = rank, so one process per
// rank in Perfetto and chrome://tracing), "displayTimeUnit": "ms", and otherData with the ranks
// merged and the spans they dropped. `lockstep launch` and `lockstep train` (rank 0) call it at the
// end of a traced job; `lockstep trace-merge RUN_DIR` does it for workers started without launch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lockstep {

struct TraceMergeResult {
  std::string path;        // the merged file
  std::vector<int> ranks;  // merged, ascending
  int64_t events = 0;      // trace events written, metadata included
  int64_t dropped = 0;     // spans the ranks could not keep (TraceSpec.max_events)
};

// Reads every rank-N.json of trace_dir (non-numeric names are ignored) and writes out_path
// atomically. Throws Error naming the file when trace_dir holds no rank file, or when a file is not
// a trace-event JSON object ("RUN_DIR/trace/rank-1.json: not JSON: ... at byte 12").
TraceMergeResult merge_trace_files(const std::string& trace_dir, const std::string& out_path);

// merge_trace_files(RUN_DIR/trace, RUN_DIR/trace.json).
TraceMergeResult merge_trace(const std::string& run_dir);

}  // namespace lockstep
