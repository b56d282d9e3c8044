// The report page: one self-contained HTML file (no script, no external resource; a Content
// Security Policy forbids fetching anything) with the job, the world size, the run's state, the
// final figures, charts (loss, accuracy, learning rate, samples/s, per-rank step time and exposed
// communication, gradient norm when clipping is on) as inline SVG, the per-rank times of the
// newest epoch, the checkpoints and the job spec as text.
#pragma once

#include <string>

#include "launcher/report/run_record.h"

namespace lockstep::report {

// `generated_at`: shown as the page's time of writing (e.g. "2026-11-30 22:41:07 UTC").
std::string render_report(const RunRecord& run, const std::string& generated_at);

}  // namespace lockstep::report
