// The rules for a file a user names on the command line or in a job: one for files lockstep reads
// (model.init_from, export's checkpoint, report's run files, trace rank files, job files), one for
// files it writes (export --safetensors, report -o, trace.json). Every error is one line naming the
// path and what is wrong, never a temporary file's name.
//
// Note [user-named outputs]: lockstep writes a user-named output atomically (a temporary file
// renamed over the target). A rename replaces whatever the target was: a device node (/dev/full,
// /dev/null), a FIFO, or one of a run directory's own files (its metrics, job file, result, trace,
// a checkpoint's model.pb). So an output is checked first, by canonical path: an existing target
// must be a regular file, its directory must exist, and it must not be a file a run directory (or a
// checkpoint) holds for itself: its named files, events files, an earlier timeline (trace.N.json),
// and any existing *.jsonl (a metrics file, whatever name its job gave it).
#pragma once

#include <string>
#include <vector>

namespace lockstep::checkpoint_io {

// Whether a file name is trace.N.json (N digits): an earlier attempt's timeline, which a resumed or
// repeated traced launch keeps in its run directory.
bool is_kept_trace(const std::string& name);

// "" when `path` does not exist or is a regular file (after links); else what it is: "a directory",
// "a FIFO", "a character device", "a block device", "a socket".
std::string non_regular_kind(const std::string& path);

// Throws Error "<label>PATH: is a FIFO, not a regular file" when `path` exists and is not a regular
// file, so that opening it can never block (a FIFO) or read a device. A missing file passes: the
// caller says "no such file" in its own words. `label` prefixes the path ("model.init_from: ").
void check_input_file(const std::string& label, const std::string& path);

// Throws Error "<label>PATH: ..." unless `path` may be replaced by a new regular file (Note
// [user-named outputs]). `allowed_own` names one run-directory file the caller owns and may
// replace (report's "report.html"); `extra_own` adds files of the run at hand (a metrics file set
// in the job).
void check_output_file(const std::string& label, const std::string& path, const std::string& allowed_own = "",
                       const std::vector<std::string>& extra_own = {});

}  // namespace lockstep::checkpoint_io
