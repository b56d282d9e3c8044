// What `lockstep launch` does with a traced job's timeline around the attempts: keeps an earlier
// attempt's RUN_DIR/trace.json when a resume traces again, and at the end merges what the ranks
// wrote, naming the ranks that wrote nothing (killed, or failed before the range).
#pragma once

#include <string>

namespace lockstep {

// A resumed, traced launch: an earlier RUN_DIR/trace.json becomes RUN_DIR/trace.N.json (the
// smallest N >= 1 not taken), said in one line, so the new timeline replaces nothing.
void keep_previous_trace(const std::string& run_dir);

// Merges RUN_DIR/trace/rank-N.json into RUN_DIR/trace.json and says so in one line on stderr,
// naming the ranks in [0, world) that wrote no file; when no rank wrote one, says that instead.
// Throws Error (from the merge) naming a file that is not a timeline.
void report_merged_trace(const std::string& run_dir, int world);

}  // namespace lockstep
