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
  int world_size = 0;      // the job's ranks, when known (the caller's, else the files' otherData); 0: unknown
  std::vector<int> missing;  // ranks below world_size with no file: the timeline lacks them
  std::vector<int> ignored;  // files of ranks >= world_size (an earlier, larger job's): not merged
};

// "ranks 1, 3" / "rank 0", for warnings about missing or ignored rank files.
std::string rank_list(const std::vector<int>& ranks);

// One line per problem of a merge (missing ranks, ignored stale files); empty when it is complete.
std::vector<std::string> merge_warnings(const TraceMergeResult& m);

// Reads every rank-N.json of trace_dir (non-numeric names are ignored) and writes out_path
// atomically. Throws Error naming the file when trace_dir holds no rank file, or when a file is not
// a trace-event JSON object ("RUN_DIR/trace/rank-1.json: line 2, column 1: not valid JSON ...").
// `world_size` > 0: the job's ranks (lockstep train passes its own); 0: taken from the files
// (rank 0's otherData.world_size, else the largest any file names). Files of ranks >= the world
// size are ignored; ranks below it with no file are listed in `missing`. A file that is not a
// regular file (a FIFO) is refused, never opened.
TraceMergeResult merge_trace_files(const std::string& trace_dir, const std::string& out_path, int world_size = 0);

// merge_trace_files(RUN_DIR/trace, RUN_DIR/trace.json, world_size).
TraceMergeResult merge_trace(const std::string& run_dir, int world_size = 0);

}  // namespace lockstep
